"""check_three_copies: is every byte of the live data kept in enough fresh, complete copies?

arguments -> survey (sources.manifest: probe each tree, stream sorted manifests of the source
and every copy, merge them in one pass, sha256 a random sample) -> judge each copy (age,
missing, differing, extra) -> count the good copies, a filesystem or host once -> the rules
(at least --min-copies, at least one --offsite) -> status line, a row per copy, perfdata.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import re
import time

import nagiosplugin
from nagiosplugin import Critical, Ok, Unknown, Warn

from osop_checks import address, cli, fanout, plugin, proc, runtime, text, units
from osop_checks.sources import manifest, ssh

NAME = "THREE_COPIES"
LOCAL_HOST = "this host"


def build_parser():
    parser = cli.Parser(
        NAME, "check_three_copies",
        "Checks that the live data (--source) is kept in at least --min-copies fresh and\n"
        "complete copies, local or over ssh, one of them off-site. A copy's age comes from a\n"
        "stamp file its sync job writes, or else from the oldest change in the source that the\n"
        "copy does not have yet. Copies on one filesystem or host count once. Never writes to\n"
        "a copy.",
        examples=[
            "check_three_copies --source /data1 --copy data2=/data2 "
            "--copy office=backup@office-pc:/srv/copies/data1 "
            "--copy offsite=backup@vault.example.org:/srv/data1 --offsite offsite "
            "--ssh-identity /var/lib/nagios/.ssh/id_ed25519 "
            "--ssh-known-hosts /etc/osop-checks/known_hosts -w 26h -c 50h",
            "check_three_copies --source /data1 --copy data2=/data2 "
            "--copy offsite=ssh://backup@vault:2222/srv/data1 --offsite offsite "
            "--min-copies 2 --stamp .last-sync --verify-sample 20",
            "check_three_copies --source /data1 --copy data2=/data2 "
            "--copy office=backup@office-pc:/srv/copies/data1 "
            "--copy offsite=backup@vault.example.org:/srv/data1 --offsite offsite "
            "--sleeping offsite --canary docs/.canary",
            "check_three_copies --source /srv/www --copy usb=/mnt/usb/www "
            "--copy nas=nas:/backup/www --min-copies 2 --missing-critical 10 "
            "--missing-warning 0 --settle 2h",
            "check_three_copies --source /data1 --copy data2=/data2 "
            "--copy vm=ssh://backup@[2001:db8::7]:2222/srv/data1 --min-copies 2",
        ],
        behind_the_scenes=[
            "each tree (the source and every copy) is listed on the side that holds it, with",
            "  sh -c '... find -H ROOT -mindepth 1 -printf \"%y\\t%s\\t%T@\\t%P\\0\" |",
            "  LC_ALL=C sort -z -t \"<tab>\" -k4 -S 8M | tr ...' (the source adds %C@, its",
            "  ctime, first);",
            "remote trees through ssh -o BatchMode=yes -o StrictHostKeyChecking=yes (key only,",
            "no password prompt), after one short ssh per copy: test -d, stat -c %d (its",
            "filesystem) and stat -c %Y STAMP; the sorted listings are merged in one pass",
            "(memory stays small however large the trees); --verify-sample runs",
            "sha256sum -z on the same N random files on the source and each copy.",
            "Only reads: nothing is written to a copy (sort's temporary files go to $TMPDIR).",
            "Writes one state file (--state-file) after every run that surveyed the source:",
            "per tree its entry, file and byte counts and per top-level name, per copy its",
            "last verification, the canaries' sha256 and held alarms; never a manifest.",
        ])
    what = parser.add_argument_group("what to check")
    what.add_argument("--source", kind=cli.PATH, required=True, type=location_type, metavar="PATH",
                      help="the live data the copies must hold: an absolute path (or "
                           "[user@]host:/path)")
    what.add_argument("--copy", kind=cli.PATH, action="append", required=True, type=copy_type,
                      metavar="NAME=LOCATION", dest="copies",
                      help="a copy: a name for the output and an absolute local path, "
                           "[user@]host:/path or ssh://[user@]host[:port]/path; an IPv6 "
                           "address in brackets: backup@[2001:db8::7]:/srv (repeatable)")
    what.add_argument("--offsite", kind=cli.PLAIN, action="append", default=[], metavar="NAME",
                      help="this copy is off-site; at least one off-site copy must be ok "
                           "(repeatable; without it the off-site rule is not checked)")
    what.add_argument("--min-copies", kind=cli.PLAIN,
                      type=cli.count_type(1), default=3, metavar="N",
                      help="at least this many copies must be ok, a filesystem or host "
                           "counted once (default: 3)")
    # --stamp and --canary are paths relative to other options' locations (relative_to: their
    # dest): osop-checks-api admits them where the location joined with them stays within
    # the allowed paths
    stamp = what.add_argument(
        "--stamp", kind=cli.PATH, metavar="NAME",
        help="a file that the sync job writes into each copy when it has finished (relative "
             "to the copy): its mtime is the copy's age, and what changed in the source "
             "before it must be in the copy. Without it the age is that of the oldest change "
             "in the source the copy does not have yet")
    stamp.relative_to = "copies"
    what.add_argument("--settle", kind=cli.PLAIN, type=cli.duration_type(0), metavar="DURATION",
                      help="a change the copy does not have yet is pending (shown, not a "
                           "defect) while younger than this (default: the -w age, so a "
                           "nightly mirror is OK all day; with --stamp: what changed after "
                           "the stamp)")
    what.add_argument("--sleeping", kind=cli.PLAIN, action="append", default=[], metavar="NAME",
                      help="this copy's host is off outside its backup window: while it "
                           "cannot be reached it is judged by its last verification (state "
                           "file), ok while that is within -w (repeatable)")
    what.add_argument("--verify-sample", kind=cli.PLAIN, type=cli.count_type(0, 10000), default=0,
                      metavar="N",
                      help="also compare the sha256 of N random files of the source with "
                           "each copy's (catches a change that kept size and mtime; "
                           "default: 0, off)")
    loss = parser.add_argument_group(
        "a loss that spreads (compared with the last run, kept in the state file)")
    percent = cli.quantity_type(units.PERCENT, 0, 100)
    for flag, default, words in (
            ("--shrink-warning", "10%", "WARNING when the source or a copy lost at least "
                                        "this share of its entries or bytes since the "
                                        "last run"),
            ("--shrink-critical", "25%", "the same, CRITICAL"),
            ("--churn-warning", "30%", "WARNING when at least this share of the source's "
                                       "files changed (mtime) within --churn-window: a "
                                       "wave of rewritten files"),
            ("--churn-critical", "60%", "the same, CRITICAL")):
        loss.add_argument(flag, kind=cli.PLAIN,
                          type=percent, default=percent(default), metavar="PCT",
                          help="%s (default: %s%%%%)" % (words, default.rstrip("%")))
    loss.add_argument("--churn-window", kind=cli.PLAIN, type=cli.duration_type(0), default=86400,
                      metavar="DURATION",
                      help="churn counts the files changed within this long, or since the "
                           "last run when that was longer ago, never before the first run "
                           "or the last --accept-changes: a wave spread over many runs adds "
                           "up (default: 24h)")
    canary = loss.add_argument(
        "--canary", kind=cli.PATH, action="append", default=[], type=canary_type,
        metavar="PATH",
        help="a file kept for this purpose (relative to the source): it must have the same "
             "sha256 in the source and every reachable copy, the same as at the last run; "
             "else CRITICAL (repeatable)")
    canary.relative_to = "source"
    loss.add_argument("--alarm-hold", kind=cli.PLAIN, type=cli.duration_type(0), default=86400,
                      metavar="DURATION",
                      help="a shrink, churn or canary alarm stays for this long after it "
                           "was last seen, so that Icinga's retries make it a hard state "
                           "(default: 24h)")
    # plain: it only makes this run take the trees as they are into the state file, which
    # is the daemon's own (never the caller's) under osop-checks-api
    loss.add_argument("--accept-changes", kind=cli.PLAIN, action="store_true",
                      help="run once by hand, with the service's other arguments, after a "
                           "deliberate deletion or rewrite: take the trees and canaries as "
                           "they are now as the new baseline and clear held alarms (also "
                           "replaces a corrupt state file)")
    loss.add_argument("--state-file", kind=cli.FILE_WRITTEN, type=cli.absolute_path, metavar="PATH",
                      help="where verifications, the trees' counts and alarms are kept; "
                           "its directory must exist (default: three_copies_<hash of "
                           "source and copies>.json in $XDG_STATE_HOME/osop-checks/ or "
                           "/var/tmp/osop-checks-<uid>/, created when missing)")
    thr = parser.add_argument_group("thresholds (per copy)")
    parser.add_thresholds(
        units.DURATION, "26h", "50h", metavar="AGE", group=thr, help=(
            "warn when a copy is older than this (Nagios range; units: %s; default: 26h)"
            % units.DURATION.examples, "a copy older than this is not ok (default: 50h)"))
    counted = {"missing": "source entries a copy lacks",
               "differing": "entries whose type, size, mtime or (sampled) content differ",
               "extra": "entries only in the copy"}
    for what_, default in (("missing", "0"), ("differing", "0"), ("extra", None)):
        thr.add_argument("--%s-warning" % what_, kind=cli.PLAIN, type=cli.range_type(units.COUNT),
                         metavar="RANGE",
                         help="warning threshold on the number of %s" % counted[what_])
        thr.add_argument("--%s-critical" % what_, kind=cli.PLAIN, type=cli.range_type(units.COUNT),
                         metavar="RANGE",
                         help="critical threshold on the number of %s%s" % (
                             counted[what_], " (default: 0, any is not ok, with --stamp or "
                             "--settle; without them the copy's age judges what it lacks%s)"
                             % ("; a sha256 that differs is always CRITICAL"
                                if what_ == "differing" else "") if default else ""))
        parser.add_threshold_pair("--%s-warning" % what_, "--%s-critical" % what_)
    con = parser.add_argument_group("ssh (for [user@]host:/path locations)")
    con.add_argument("--ssh-port", kind=cli.PORT, type=cli.count_type(1, 65535), metavar="PORT",
                     help="port of the remote sshd (default: ssh's own, 22)")
    ssh_file_type = cli.value_type(ssh.check_file_option, "ssh file")
    con.add_argument("--ssh-identity", kind=cli.FILE_READ, metavar="FILE", type=ssh_file_type,
                     help="private key to log in with (only this key is offered)")
    con.add_argument("--ssh-known-hosts", kind=cli.FILE_READ, metavar="FILE", type=ssh_file_type,
                     help="known_hosts file the host keys are checked against, strictly "
                          "(default: ssh's own, ~/.ssh/known_hosts); ssh would split a "
                          "path with a blank and expand '%%' and '~', so none is taken")
    # plain: the login name on a host the location names (checked as a host there); the
    # commands run are the check's own, on paths checked as paths
    con.add_argument("--ssh-user", kind=cli.PLAIN, metavar="USER",
                     help="remote user where the location names none")
    address.add_family_options(con)
    return parser


def location_type(value):
    try:
        return manifest.parse_location(value)
    except manifest.LocationError as exc:
        raise cli.argparse.ArgumentTypeError(str(exc)) from None


location_type.__name__ = "location"


def copy_type(value):
    name, sep, where = str(value).partition("=")
    if not sep:
        raise cli.argparse.ArgumentTypeError(
            "%r is not NAME=LOCATION (e.g. offsite=backup@vault:/srv/data1)" % value)
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", name):
        raise cli.argparse.ArgumentTypeError(
            "copy name %r: use letters, digits, '_', '.', '-'" % name)
    return name, location_type(where)


copy_type.__name__ = "copy"


def canary_type(value):
    """A path relative to the source, inside it."""
    text = str(value)
    parts = text.split("/")
    if not text.strip() or text.startswith("/") or ".." in parts or "\0" in text:
        raise cli.argparse.ArgumentTypeError(
            "%r must be a file inside the source, relative to it (e.g. docs/.canary)" % value)
    path = os.path.normpath(text)
    if path == ".":
        raise cli.argparse.ArgumentTypeError("%r is the source itself, not a file in it"
                                             % value)
    return path


canary_type.__name__ = "path inside the source"


# -- gathering ----------------------------------------------------------------------------

@dataclasses.dataclass
class CopyState:
    """What the survey found for one copy (before judgement)."""
    name: str
    location: manifest.Location
    probe: manifest.Probe | None = None
    unreachable: str | None = None  # ssh's failure, in words
    tally: manifest.Tally | None = None


@dataclasses.dataclass
class Survey:
    """What was found: the trees' probes and tallies, the source's counters (``tree``), and
    the canaries' sha256: {path: {"source": digest or None, copy name: digest or None}}
    (None: missing or unreadable there; only copies that were reached)."""
    source: manifest.Location
    source_probe: manifest.Probe
    copies: list[CopyState]
    now: float
    sampled: int = 0
    tree: manifest.Tree | None = None
    canaries: dict = dataclasses.field(default_factory=dict)


@contextlib.contextmanager
def _listing(location, source, options, errors, key):
    """The manifest stream of one tree; its exit status (a ``proc.CommandError`` when it
    ends) is kept in ``errors[key]`` instead of raised, so that every tree is closed and
    told on its own. A failure of the run itself stands, whatever closing the stream said."""
    pending = None
    try:
        with manifest.listing(location, source=source, options=options) as lines:
            try:
                yield lines
            except BaseException as exc:  # noqa: B902 - re-raised
                pending = exc
                raise
    except BaseException as failure:  # noqa: B902 - re-raised but an exit status
        if pending is not None and failure is not pending:
            raise pending  # noqa: B904 - the run's own failure, not the stream's
        if pending is not None or not isinstance(failure, proc.CommandError):
            raise
        errors[key] = failure


def _what(copy):
    return "copy %s (%s)" % (copy.name, copy.location)


def survey_trees(source, copies, options=ssh.Options(), stamp=None, settle=3600,
                 sample_size=0, now=None, since_run=None, canaries=()):
    """Probe every tree at once, list them all at once, merge the listings; see module.

    A change a copy lacks is pending when younger than ``settle``, or, with ``stamp``, when
    it is later than that copy's stamp (or younger than ``settle``). ``since_run``: the
    start of the churn window, for the source's count of files changed since. ``canaries``: paths to sha256."""
    now = time.time() if now is None else now
    states = [CopyState(name, location) for name, location in copies]
    errors = {}
    with contextlib.ExitStack() as stack:
        listings = {}

        def start(location, key):
            listings[key] = stack.enter_context(
                _listing(location, key == "source", options, errors, key))

        source_probe = _probe_trees(source, states, stamp, options, start)
        order = [i for i in range(len(states)) if i in listings]
        sample = manifest.Sample(sample_size) if sample_size else None
        tree = manifest.Tree(since_run)
        tallies = _compare(listings, order, states, stamp, settle, now, sample, tree)
    if "source" in errors:
        raise _unknown("the source %s" % source, errors["source"])
    _take_tallies(states, order, tallies, errors)
    result = Survey(source, source_probe, states, now, tree=tree)
    paths = sample.paths if sample else []
    result.sampled = len(paths)
    if paths or canaries:
        _verify(result, paths, list(canaries), options)
    return result


def _probe_trees(source, states, stamp, options, start):
    """Probe the source and every copy at once (``state.probe`` or ``state.unreachable``),
    and ``start(location, key)`` the listing of each tree found while the other probes
    still run; the source's probe, or UNKNOWN when the source cannot be surveyed."""
    def look(location, stamp_name, key):
        found = manifest.probe(location, stamp_name, options)
        if found.state == "ok":
            start(location, key)
        return found

    calls = [lambda: look(source, None, "source")]
    calls += [(lambda s=s, i=i: look(s.location, stamp, i)) for i, s in enumerate(states)]
    answers = fanout.run_all(calls)
    (source_probe, failure) = answers[0]
    if failure is not None:
        raise _unknown("the source %s" % source, failure)
    if source_probe.state != "ok":
        raise nagiosplugin.CheckError("the source %s %s" % (
            source, _PROBE_WORDS[source_probe.state]))
    for state, (found, failure) in zip(states, answers[1:]):
        if isinstance(failure, ssh.SshError) and failure.kind != "unknown host":
            state.unreachable = failure.kind
        elif failure is not None:
            raise _unknown(_what(state), failure)
        else:
            state.probe = found
            if found.state == "unreadable":
                raise nagiosplugin.CheckError("cannot read %s: permission denied" %
                                              _what(state))
    return source_probe


def _compare(listings, order, states, stamp, settle, now, sample, tree):
    """Merge the source's listing with those of the copies in ``order``: a Tally each."""
    since = [None] * len(order)
    if stamp:
        since = [None if states[i].probe.stamp_mtime is None
                 else min(states[i].probe.stamp_mtime, now - settle) for i in order]
    return manifest.compare(
        listings["source"], [listings[i] for i in order], now=now, settle=settle,
        ignore=[stamp] if stamp else (), sample=sample, since=since, source_tree=tree)


def _take_tallies(states, order, tallies, errors):
    """Each listed copy's tally, or unreachable when its listing failed over ssh."""
    for i, tally in zip(order, tallies):
        state, error = states[i], errors.get(i)
        if isinstance(error, ssh.SshError):
            state.unreachable = error.kind
        elif error is not None:
            raise _unknown(_what(state), error)
        else:
            state.tally = tally


_PROBE_WORDS = {"missing": "does not exist", "notdir": "is not a directory",
                "unreadable": "cannot be read (permission denied)"}


def _unknown(what, failure):
    """An expected failure as one UNKNOWN line naming the tree; anything else unchanged."""
    if isinstance(failure, (nagiosplugin.CheckError, OSError)):
        return nagiosplugin.CheckError("%s: %s" % (what, runtime._describe(failure)))
    return failure


def _verify(result, paths, canaries, options):
    """sha256 of the sampled files on the source and on each copy that has them alike, and
    of the canaries everywhere."""
    checked = [s for s in result.copies if s.tally is not None]
    calls = [lambda: manifest.checksums(result.source, list(paths) + canaries, options)]
    wanted = {}
    for state in checked:
        wanted[state.name] = [p for p in paths if p not in state.tally.sampled_bad]
        calls.append(lambda s=state: manifest.checksums(
            s.location, wanted[s.name] + canaries, options))
    answers = fanout.run_all(calls)
    source_hashes, failure = answers[0]
    if failure is not None:
        raise _unknown("sha256sum on the source", failure)
    result.canaries = {c: {"source": source_hashes.get(c)} for c in canaries}
    for state, (hashes, failure) in zip(checked, answers[1:]):
        if isinstance(failure, ssh.SshError):
            state.unreachable = failure.kind
            state.tally = None
            continue
        if failure is not None:
            raise _unknown("sha256sum on %s" % _what(state), failure)
        for canary in canaries:
            result.canaries[canary][state.name] = hashes.get(canary)
        for path in wanted[state.name]:
            if path in source_hashes and path in hashes:
                state.tally.verified += 1
                if hashes[path] != source_hashes[path]:
                    state.tally.content += 1
                    state.tally.note("differing", path, None, "content differs (sha256)")


# -- judging ------------------------------------------------------------------------------

@dataclasses.dataclass
class Judged:
    """One copy judged: its state, why (short phrases), and the numbers for perfdata."""
    copy: CopyState
    offsite: bool
    state: nagiosplugin.state.ServiceState = Ok
    reasons: list[str] = dataclasses.field(default_factory=list)
    age: float | None = None
    age_from: str = ""
    group: str | None = None  # the copies it is counted together with ("usb and usb2")
    on_source: bool = False  # on the source's own filesystem: no copy at all
    verified_age: float | None = None  # since the copy was last reached and compared
    asleep: str = ""  # a sleeping copy judged by its last verification: in words

    @property
    def name(self):
        return self.copy.name

    @property
    def ok(self):
        return self.state in (Ok, Warn)


@dataclasses.dataclass
class Limits:
    age: tuple  # (warning, critical) ranges in seconds
    missing: tuple
    differing: tuple
    extra: tuple
    stamp: str | None = None


def _breach(value, warning, critical):
    if critical is not None and not critical.match(value):
        return Critical, critical
    if warning is not None and not warning.match(value):
        return Warn, warning
    return Ok, None


def _worse(a, b):
    return a if a.code >= b.code else b


def copy_age(copy, stamp, now):
    """(age in seconds, "stamp" or "manifest") of a copy that was reached: its stamp's, or
    that of the oldest change it lacks; (None, "") when it has none to tell."""
    probe = copy.probe
    if copy.unreachable or (probe is not None and probe.state != "ok"):
        return None, ""
    if stamp:
        if probe is None or probe.stamp_mtime is None:
            return None, ""
        return max(0.0, now - probe.stamp_mtime), "stamp"
    tally = copy.tally
    if tally is None:
        return None, ""
    return (0.0 if tally.oldest_change is None else max(0.0, now - tally.oldest_change),
            "manifest")


def last_verification(previous, name):
    """The copy ``name``'s last verification in the state file ``previous`` (a dict with
    time, state, verdict), or None: never verified, or no state yet."""
    return (((previous or {}).get("copies") or {}).get(name) or {}).get("verified")


def verified_age(copy, previous, now):
    """How long ago the copy was last reached and compared: 0 now, else since the
    verification in the state file ``previous`` (None: never)."""
    if not copy.unreachable:
        return 0.0
    record = last_verification(previous, copy.name)
    return None if record is None else max(0.0, now - record["time"])


def churn_share(survey, previous):
    """The share (%) of the source's files changed in the churn window; None on a first run
    (no tree in ``previous``) or without files."""
    tree = survey.tree
    before = ((previous or {}).get("source") or {}).get("tree")
    if not before or tree is None or not tree.files:
        return None
    return 100.0 * tree.changed / tree.files


def judge(copy, offsite, limits, now):
    """The state of one copy and the reasons for it."""
    judged = Judged(copy, offsite)
    name = copy.name
    if copy.unreachable:
        judged.state = Critical
        judged.reasons.append("%s is unreachable: %s" % (name, copy.unreachable))
        return judged
    probe = copy.probe
    if probe is not None and probe.state != "ok":
        judged.state = Critical
        judged.reasons.append("%s %s" % (name, _PROBE_WORDS.get(probe.state, probe.state)))
        return judged
    tally = copy.tally
    judged.age, judged.age_from = copy_age(copy, limits.stamp, now)
    if limits.stamp and judged.age is None:
        judged.state = Critical
        judged.reasons.append("%s has no stamp file %s" % (name, limits.stamp))
    if judged.age is not None:
        state, rng = _breach(judged.age, *limits.age)
        if state != Ok:
            judged.state = _worse(judged.state, state)
            bound = "%s %s" % ("limit" if state == Critical else "warning",
                               units.range_text(rng, units.DURATION))
            if judged.age_from == "stamp":
                judged.reasons.append("%s is %s old (%s)" % (
                    name, units.format_duration(judged.age), bound))
            else:  # the copy lacks a change that old: behind, or it lost an old entry
                judged.reasons.append("%s lacks a change from %s ago (%s)" % (
                    name, units.format_duration(judged.age), bound))
    if tally is not None:
        for what, verb in (("missing", "lacks"), ("differing", "differs in"),
                           ("extra", "has extra")):
            count = getattr(tally, what)
            state, rng = _breach(count, *getattr(limits, what))
            if what == "differing" and tally.content and state == Ok and \
                    getattr(limits, what) == (None, None):
                state = Critical  # same size and mtime, other content: never pending
            if state != Ok:
                judged.state = _worse(judged.state, state)
                example = tally.examples[what][0] if tally.examples[what] else ""
                judged.reasons.append("%s %s %d entr%s%s" % (
                    name, verb, count, plugin.plural(count, "y", "ies"),
                    " (e.g. %s)" % example if example else ""))
    return judged


# ssh failures that mean "the host is off" (not a wrong key, a refused login ...)
ASLEEP_KINDS = ("timeout", "connection refused", "unreachable")
STATE_OF = {0: Ok, 1: Warn, 2: Critical, 3: Unknown}


def verdict(judged):
    """A copy's verdict in a few words, for the state file: "in sync", "ok, 5h behind",
    or the state and its reasons."""
    if judged.state == Ok:
        if not judged.age:
            return "in sync"
        return "ok, %s behind" % units.format_duration(judged.age)
    return text.oneline("%s: %s" % (str(judged.state).upper(), "; ".join(judged.reasons)),
                        limit=400)


def judge_asleep(judged, record, limits, now):
    """An unreachable sleeping copy, judged by its last verification ``record`` (a dict
    with time, state, verdict; None: never verified)."""
    name, why = judged.name, judged.copy.unreachable
    judged.reasons = []
    if record is None:
        judged.state = Critical
        judged.asleep = "%s asleep and never verified yet (unreachable: %s)" % (name, why)
        judged.reasons.append(judged.asleep)
        return judged
    age = max(0.0, now - record["time"])
    judged.verified_age = age
    then = STATE_OF.get(record["state"], Unknown)
    words = record["verdict"]
    if then != Ok:
        words = "%s %s ago" % (words.split(":", 1)[0], units.format_duration(age)) + \
            (":" + words.split(":", 1)[1] if ":" in words else "")
    else:
        words = "%s %s ago" % (words, units.format_duration(age))
    judged.asleep = "%s asleep, last verified %s" % (name, words)
    judged.state = then
    if then != Ok:
        judged.reasons.append(judged.asleep)
    state, rng = _breach(age, *limits.age)
    if state != Ok:
        judged.state = _worse(judged.state, state)
        judged.reasons.append("%s not verified for %s: did the box wake up?" % (
            name, units.format_duration(age)))
    return judged


def group(judged, source_probe, source):
    """Copies on one filesystem or host count once; a copy on the source's own filesystem
    does not count at all. Sets ``group`` on the judged copies; returns the notes and the
    groups (lists of judged copies)."""
    def host(location):
        return location.host.lower() if location.remote else LOCAL_HOST

    notes = []
    source_fs = (host(source), source_probe.device)
    groups = {}
    for item in judged:
        location = item.copy.location
        probe = item.copy.probe
        if probe is not None and probe.device is not None and \
                (host(location), probe.device) == source_fs:
            item.on_source = True
            if item.ok:
                item.state = Critical
                item.reasons.append("%s is on the same filesystem as the source" % item.name)
        groups.setdefault(host(location), []).append(item)
    for members in groups.values():
        if len(members) < 2:
            continue
        devices = {m.copy.probe.device for m in members
                   if m.copy.probe is not None and m.copy.probe.device is not None}
        names = _and([m.name for m in members])
        where = members[0].copy.location
        if len(devices) == 1 and all(m.copy.probe and m.copy.probe.device is not None
                                     for m in members):
            notes.append("%s are on the same filesystem, counted once" % names)
        else:
            notes.append("%s are on the same host (%s), counted once" % (
                names, where.host if where.remote else LOCAL_HOST))
        for m in members:
            m.group = _and([other.name for other in members if other is not m])
    return notes, list(groups.values())


def _and(names):
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


# -- a loss that spreads: compared with the last run (the state file) ----------------------

STATE_VERSION = 1


@dataclasses.dataclass
class LossRules:
    shrink: tuple  # (warning, critical) shares in percent
    churn: tuple
    hold: float  # seconds an alarm is held after it was last seen
    accept: bool = False  # --accept-changes: a new baseline, no held alarms
    churn_since: float | None = None  # churn counts the files changed after this


@dataclasses.dataclass
class Alarm:
    """A shrink, churn or canary alarm; ``held``: raised by an earlier run, not this one."""
    key: str
    state: nagiosplugin.state.ServiceState
    text: str
    since: float
    seen: float
    held: bool = False

    def to_json(self):
        return {"key": self.key, "state": self.state.code, "text": self.text,
                "since": self.since, "seen": self.seen}


def clock(when, now):
    """A past time as the admin reads it: '03:10' within the last 20 hours, else dated."""
    fmt = "%H:%M" if 0 <= now - when < 20 * 3600 else "%Y-%m-%d %H:%M"
    return time.strftime(fmt, time.localtime(when))


def read_state(data):
    """The previous run's state checked for shape (raises ValueError saying what is wrong);
    a state written by this check is returned unchanged."""
    def need(ok, what):
        if not ok:
            raise ValueError(what)

    def number(value):
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    def tree(value, where):
        need(isinstance(value, dict) and all(number(value.get(k)) for k in (
            "time", "entries", "files", "bytes")), "%s: no counts" % where)
        need(isinstance(value.get("top"), dict) and all(
            isinstance(v, list) and len(v) == 2 and all(map(number, v))
            for v in value["top"].values()), "%s: top-level counts" % where)
        need(isinstance(value.get("other"), list) and len(value["other"]) == 2,
             "%s: other counts" % where)

    need(data.get("version") == STATE_VERSION, "version %r, not %d" % (
        data.get("version"), STATE_VERSION))
    need(data.get("baseline") is None or number(data["baseline"]), "baseline")
    source = data.get("source")
    need(isinstance(source, dict), "no source")
    if source.get("tree") is not None:
        tree(source["tree"], "source")
    copies = data.get("copies")
    need(isinstance(copies, dict), "no copies")
    for name, entry in copies.items():
        need(isinstance(entry, dict), "copy %s" % name)
        if entry.get("tree") is not None:
            tree(entry["tree"], "copy %s" % name)
        record = entry.get("verified")
        if record is not None:
            need(isinstance(record, dict) and number(record.get("time")) and
                 record.get("state") in STATE_OF and isinstance(record.get("verdict"), str),
                 "copy %s: verification" % name)
    canaries = data.get("canaries")
    need(isinstance(canaries, dict) and all(isinstance(v, str) for v in canaries.values()),
         "canaries")
    alarms = data.get("alarms")
    need(isinstance(alarms, list) and all(
        isinstance(a, dict) and isinstance(a.get("key"), str) and a.get("state") in (1, 2)
        and isinstance(a.get("text"), str) and number(a.get("since")) and
        number(a.get("seen")) for a in alarms), "alarms")
    return data


def shrink(name, before, after, rules, now, key=None):
    """An Alarm when the tree ``name`` lost at least a threshold share of its entries or
    bytes since ``before`` (a stored tree) to ``after`` (a manifest.Tree); else None."""
    worst = None
    for index, what in ((0, "entries"), (1, "bytes")):
        was, now_ = before[what], getattr(after, what)
        if was > 0 and now_ < was:
            share = 100.0 * (was - now_) / was
            if worst is None or share > worst[0]:
                worst = (share, index, what)
    if worst is None:
        return None
    share, index, what = worst
    state = Critical if share >= rules.shrink[1] else Warn if share >= rules.shrink[0] \
        else Ok
    if state == Ok:
        return None
    most, lost = None, 0
    full = len(after.top) >= after.TOP_NAMES
    for top, counts in before["top"].items():
        if full and top not in after.top:
            continue  # may be in the current 'other'
        gone = counts[index] - after.top.get(top, (0, 0))[index]
        if gone > lost:
            most, lost = top, gone
    return Alarm(key or "shrink " + name, state, "%s lost %d%% of its %s since %s%s" % (
        name, int(share), what, clock(before["time"], now),
        " (most in %s)" % most if most else ""), now, now)


def churn(tree, since, rules, now):
    """An Alarm when at least a threshold share of the source's files changed since
    ``since`` (the start of the churn window); else None."""
    if not tree.files:
        return None
    share = 100.0 * tree.changed / tree.files
    state = Critical if share >= rules.churn[1] else Warn if share >= rules.churn[0] \
        else Ok
    if state == Ok or not tree.changed:
        return None
    return Alarm("churn", state, "%d%% of the source's files changed since %s (%d of %d): "
                 "a wave of rewritten files?" % (int(share), clock(since, now), tree.changed,
                                                 tree.files), now, now)


def canary_alarms(found, stored, since, accept, now):
    """CRITICAL Alarms for canaries missing or differing anywhere, or changed since the
    last run (``stored``: {path: sha256}; ``since``: the last run's time)."""
    alarms = []

    def alarm(key, text):
        alarms.append(Alarm(key, Critical, text, now, now))

    for path, where in sorted(found.items()):
        digest = where.get("source")
        if digest is None:
            alarm("canary %s" % path, "canary %s is missing in the source" % path)
        elif stored.get(path) not in (None, digest) and not accept:
            alarm("canary %s" % path, "canary %s changed since %s (sha256)" % (
                path, clock(since, now) if since else "the last run"))
        for name, theirs in sorted(where.items()):
            if name == "source":
                continue
            if theirs is None:
                alarm("canary %s in %s" % (path, name), "canary %s is missing in %s" % (
                    path, name))
            elif digest is not None and theirs != digest:
                alarm("canary %s in %s" % (path, name), "canary %s differs in %s" % (
                    path, name))
    return alarms


class Memory:
    """The previous run's state, what this run found beside it, and the next state."""

    def __init__(self, survey, judged, previous, rules, sleeping, limits):
        self.survey = survey
        self.rules = rules
        self.previous = previous
        self.first_run = previous is None
        now = survey.now
        previous = previous or {"source": {}, "copies": {}, "canaries": {}, "alarms": []}
        copies = previous["copies"]
        for item in judged:
            if item.name in sleeping and item.copy.unreachable in ASLEEP_KINDS:
                judge_asleep(item, last_verification(previous, item.name), limits, now)
            else:
                item.verified_age = verified_age(item.copy, previous, now)
        self.judged = judged
        before = previous["source"].get("tree")
        self.since = before["time"] if before else None
        current = []
        if not rules.accept and before and survey.tree is not None:
            current.append(shrink("source", before, survey.tree, rules, now))
            current.append(churn(survey.tree, rules.churn_since or before["time"], rules,
                                 now))
        for item in judged:
            tally = item.copy.tally
            before = (copies.get(item.name) or {}).get("tree")
            if not rules.accept and before and tally is not None:
                current.append(shrink(item.name, before, tally.tree, rules, now,
                                      key="shrink copy " + item.name))
        current.extend(canary_alarms(survey.canaries, previous["canaries"], self.since,
                                     rules.accept, now))
        held = {} if rules.accept else {
            a["key"]: Alarm(a["key"], STATE_OF[a["state"]], a["text"], a["since"], a["seen"],
                            True)
            for a in previous["alarms"] if now - a["seen"] < rules.hold}
        for alarm in current:
            if alarm is None:
                continue
            old = held.get(alarm.key)
            if old is not None and old.state.code > alarm.state.code:
                old.seen = alarm.seen  # a smaller loss on top does not soften the alarm
                continue
            if old is not None:
                alarm.since = min(old.since, alarm.since)
            held[alarm.key] = alarm
        self.alarms = sorted(held.values(), key=lambda a: (-a.state.code, a.since, a.key))

    @property
    def state(self):
        worst = Ok
        for alarm in self.alarms:
            worst = _worse(worst, alarm.state)
        return worst

    def churn_share(self):
        return churn_share(self.survey, self.previous)

    def next_state(self):
        """The state to write: this run's counts and verifications, the rest carried."""
        survey, now = self.survey, self.survey.now
        previous = self.previous or {"source": {}, "copies": {}, "canaries": {}}
        copies = {}
        for item in self.judged:
            old = previous["copies"].get(item.name) or {}
            entry = {"location": str(item.copy.location), "tree": old.get("tree"),
                     "verified": old.get("verified")}
            if not item.copy.unreachable:
                entry["verified"] = {"time": now, "state": item.state.code,
                                     "verdict": verdict(item)}
            if item.copy.tally is not None:
                entry["tree"] = dict(item.copy.tally.tree.to_json(), time=now)
            copies[item.name] = entry
        canaries = {} if self.rules.accept else dict(previous.get("canaries") or {})
        for path, where in survey.canaries.items():
            if where.get("source") is not None:
                canaries[path] = where["source"]
        source_tree = previous["source"].get("tree")
        if survey.tree is not None:
            source_tree = dict(survey.tree.to_json(), time=now)
        baseline = previous.get("baseline")
        if self.first_run or self.rules.accept or not isinstance(baseline, (int, float)):
            baseline = now
        return {"version": STATE_VERSION, "run": now, "baseline": baseline,
                "source": {"location": str(survey.source), "tree": source_tree},
                "copies": copies, "canaries": canaries,
                "alarms": [a.to_json() for a in self.alarms]}


def churn_start(previous, window, now):
    """Since when churn counts changed files: the last run, or ``window`` ago when that is
    earlier (a wave spread over many runs adds up), but never before the baseline (the first
    run or the last --accept-changes). None on a first run."""
    last = (((previous or {}).get("source") or {}).get("tree") or {}).get("time")
    if last is None:
        return None
    start = min(last, now - window)
    baseline = previous.get("baseline")
    return max(start, baseline) if baseline is not None else start


def default_state_file(source, copies, environ=None, uid=None):
    """three_copies_<hash>.json in the default state directory: the hash of the source and
    the copies, so two services of one host never share a state."""
    import hashlib

    from osop_checks import state

    key = "\n".join([str(source)] + ["%s=%s" % (n, w) for n, w in sorted(
        (n, str(w)) for n, w in copies)])
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return state.default_path("three_copies", digest, environ, uid)


# -- nagiosplugin: resource, contexts, summary ----------------------------------------------

class Judgement:
    """The survey judged against the limits and the last run: each copy's state and
    reasons, the groups counted once, the loss alarms (``memory``), the rules' inputs."""

    def __init__(self, survey, limits, offsite, min_copies, sleeping=(), previous=None,
                 rules=None):
        self.survey = survey
        self.min_copies = min_copies
        self.judged = [judge(c, c.name in offsite, limits, survey.now) for c in survey.copies]
        self.memory = Memory(survey, self.judged, previous, rules or LossRules(
            (10, 25), (30, 60), 86400), set(sleeping), limits)
        self.notes, self.groups = group(self.judged, survey.source_probe, survey.source)
        self.ok_groups = [g for g in self.groups if any(m.ok for m in g)]
        self.offsite_rule = bool(offsite)
        self.offsite_ok = any(j.ok and j.offsite for j in self.judged)

    @property
    def state(self):
        """At least --min-copies good copies (a group once) and an off-site one: else
        CRITICAL; a copy with a problem beyond that: WARNING; a loss alarm: its own."""
        if len(self.ok_groups) < self.min_copies:
            state = Critical
        elif self.offsite_rule and not self.offsite_ok:
            state = Critical
        elif any(j.state != Ok for j in self.judged):
            state = Warn
        else:
            state = Ok
        return _worse(state, self.memory.state)


class Verdict(nagiosplugin.Result):
    """The Result of the rules, with the judgement the Summary and the state file read."""

    def __new__(cls, judgement, metric):
        result = super().__new__(cls, judgement.state, None, metric)
        result.judgement = judgement
        return result


class Copies(nagiosplugin.Resource):
    """The survey as metrics: 'copies_ok' (the survey itself, which the rules judge), and
    per copy its age, missing and differing counts and how long ago it was verified, and
    the source's churn (perfdata)."""

    def __init__(self, survey, previous=None, stamp=None):
        self.survey = survey
        self.previous = previous
        self.stamp = stamp

    def probe(self):
        survey, now = self.survey, self.survey.now
        yield nagiosplugin.Metric("copies_ok", survey, context="copies")
        for copy in survey.copies:
            tally = copy.tally
            label = text.label(copy.name)
            age, _source = copy_age(copy, self.stamp, now)
            if age is not None:
                yield nagiosplugin.Metric(label + "_age", int(age), "s", min=0,
                                          context="age")
            if tally is not None:
                yield nagiosplugin.Metric(label + "_missing", tally.missing, min=0,
                                          context="missing")
                yield nagiosplugin.Metric(label + "_differing", tally.differing, min=0,
                                          context="differing")
            verified = verified_age(copy, self.previous, now)
            if verified is not None:
                yield nagiosplugin.Metric(label + "_verified_age", int(verified), "s", min=0,
                                          context="age")
        share = churn_share(survey, self.previous)
        if share is not None:
            yield nagiosplugin.Metric("churn", round(share, 1), "%", min=0, max=100,
                                      context="churn")


class Rules(nagiosplugin.Context):
    """Judges the survey (``Judgement``): the copies, the groups, the rules, the alarms."""

    def __init__(self, limits, offsite, min_copies, sleeping, rules):
        super().__init__("copies")
        self.limits, self.offsite, self.min_copies = limits, set(offsite), min_copies
        self.sleeping, self.rules = sleeping, rules
        self._judged = None  # (survey, its Judgement)

    def judge(self, metric, resource):
        """The Judgement of the survey, made once: evaluate and performance both read it."""
        survey = metric.value
        if self._judged is None or self._judged[0] is not survey:
            self._judged = (survey, Judgement(survey, self.limits, self.offsite,
                                              self.min_copies, self.sleeping,
                                              resource.previous, self.rules))
        return self._judged[1]

    def evaluate(self, metric, resource):
        return Verdict(self.judge(metric, resource), metric)

    def performance(self, metric, resource):
        judgement = self.judge(metric, resource)
        return nagiosplugin.Performance(
            "copies_ok", len(judgement.ok_groups), "", None,
            nagiosplugin.Range("%d:" % self.min_copies), 0, len(judgement.groups))


def save_state(store, path, results):
    """The state file written from the rules' judgement (``store.save``), when the survey was
    judged (plugin.Remembering calls it after the run)."""
    verdict = results["copies_ok"] if "copies_ok" in results else None
    if isinstance(verdict, Verdict):
        store.save(path, verdict.judgement.memory.next_state())


def alarm_text(alarm, now):
    if not alarm.held:
        return alarm.text
    return "%s (alarm held since %s)" % (alarm.text, clock(alarm.since, now))


class Report(nagiosplugin.Summary):
    def _head(self, judgement):
        return "%d of %d cop%s ok" % (len(judgement.ok_groups), len(judgement.groups),
                                      plugin.plural(len(judgement.groups), "y", "ies"))

    def ok(self, results):
        judgement = results["copies_ok"].judgement
        ages = [(j.age, j.name, j) for j in judgement.judged if j.age is not None]
        tail = ""
        if ages:
            age, name, item = max(ages, key=lambda a: a[:2])
            tail = ", all in sync" if age == 0 else ", oldest %s %s" % (
                name, units.format_duration(age))
            pending = item.copy.tally.pending if item.copy.tally is not None else 0
            if pending:
                tail += " (%d change%s pending)" % (pending, plugin.plural(pending))
        for item in judgement.judged:
            if item.asleep:
                tail += ", " + item.asleep
        return self._head(judgement) + tail

    def problem(self, results):
        judgement = results["copies_ok"].judgement
        reasons = [alarm_text(a, judgement.survey.now) for a in judgement.memory.alarms
                   if a.state == Critical]
        bad = plugin.worst_first(j for j in judgement.judged if j.state != Ok)
        for item in bad:
            reasons.extend(item.reasons)
        reasons.extend(alarm_text(a, judgement.survey.now) for a in judgement.memory.alarms
                       if a.state != Critical)
        if len(judgement.ok_groups) < judgement.min_copies:
            reasons.extend(judgement.notes)
        if judgement.offsite_rule and not judgement.offsite_ok:
            reasons.append("no off-site copy ok")
        head = self._head(judgement)
        if len(judgement.ok_groups) < judgement.min_copies:
            head += " (at least %d needed)" % judgement.min_copies
        for item in judgement.judged:
            if item.asleep and item.state == Ok:
                reasons.append(item.asleep)
        return head + (": " + ", ".join(reasons) if reasons else "")

    def verbose(self, results):
        judgement = results["copies_ok"].judgement
        memory, now = judgement.memory, judgement.survey.now
        lines = []
        for item in judgement.judged:
            lines.append(row(item, judgement.survey))
            tally = item.copy.tally
            if tally is not None:
                for what in ("missing", "differing", "extra"):
                    examples = tally.examples[what]
                    count = getattr(tally, what)
                    if examples:
                        more = count - len(examples)
                        lines.append("%s %s: %s%s" % (
                            item.name, what, ", ".join(examples),
                            " (and %d more)" % more if more > 0 else ""))
        lines.extend(judgement.notes)
        if judgement.offsite_rule:
            lines.append("off-site: %s" % ", ".join(
                "%s (%s)" % (j.name, "ok" if j.ok else "not ok")
                for j in judgement.judged if j.offsite))
        else:
            lines.append("off-site rule not checked (no --offsite)")
        tree = judgement.survey.tree
        if tree is not None:
            churned = ""
            if memory.since is not None:
                churned = ", %d changed since %s (%.1f%%)" % (
                    tree.changed, clock(memory.since, now), memory.churn_share() or 0)
            lines.append("source: %d entries, %d files, %s%s" % (
                tree.entries, tree.files, units.format_size(tree.bytes), churned))
        for path, where in sorted(judgement.survey.canaries.items()):
            lines.append("canary %s: %s" % (path, ", ".join(
                "%s %s" % (name, digest[:12] if digest else "missing")
                for name, digest in where.items())))
        for alarm in memory.alarms:
            lines.append("%s: %s (raised %s, held until %s after it was last seen, or a "
                         "run with --accept-changes)" % (
                             str(alarm.state).upper(), alarm.text, clock(alarm.since, now),
                             units.format_duration(memory.rules.hold)))
        if memory.rules.accept:
            lines.append("changes accepted: the trees and canaries as they are now are the "
                         "new baseline, held alarms cleared")
        elif memory.first_run:
            lines.append("first run: baseline recorded (shrink, churn and canary changes "
                         "are judged from the next run on)")
        return lines


def row(item, survey):
    """The long-output line of one copy: state, age, counts, where."""
    copy = item.copy
    cells = ["%s: %s" % (item.name, str(item.state).upper())]
    if copy.unreachable:
        cells.append("unreachable" if copy.unreachable == "unreachable" else
                     "unreachable (%s)" % copy.unreachable)
    elif copy.probe is not None and copy.probe.state != "ok":
        cells.append(_PROBE_WORDS.get(copy.probe.state, copy.probe.state))
    if item.asleep:
        cells.append(item.asleep[len(item.name) + 1:])  # the row starts with the name
    if item.age is not None:
        if item.age_from == "stamp":
            cells.append("age %s (stamp)" % units.format_duration(item.age))
        elif item.age == 0:
            cells.append("in sync")
        else:
            oldest = copy.tally.oldest_path if copy.tally else None
            cells.append("age %s (oldest change it lacks%s)" % (
                units.format_duration(item.age), ": %s" % oldest if oldest else ""))
    tally = copy.tally
    if tally is not None:
        cells.append("missing %d, differing %d, extra %d, equal %d" % (
            tally.missing, tally.differing, tally.extra, tally.equal))
        if tally.pending:
            cells.append("%d pending" % tally.pending)
        if survey.sampled:
            cells.append("sha256 %d of %d sampled files checked" % (
                tally.verified, survey.sampled))
    cells.append(("off-site " if item.offsite else "") + str(copy.location))
    if item.on_source:
        cells.append("on the source's filesystem")
    if item.group:
        cells.append("counted once with %s" % item.group)
    return ", ".join(cells)


def _upper(rng):
    """The upper end of a threshold range (seconds), or None when it has none."""
    if rng is None:
        return None
    for value in (rng.end, rng.start):
        if value not in (float("inf"), float("-inf")) and value > 0:
            return value
    return None


def build_check(args, survey=survey_trees, store=None):
    """``store``: the state module (load, save, ensure_dir) or a stand-in for tests."""
    names = [name for name, _where in args.copies]
    duplicate = sorted({n for n in names if names.count(n) > 1})
    if duplicate:
        raise cli.UsageError("copy name %s given twice" % duplicate[0])
    for flag, given in (("--offsite", args.offsite), ("--sleeping", args.sleeping)):
        unknown = [n for n in given if n not in names]
        if unknown:
            raise cli.UsageError("%s %s names no --copy (copies: %s)" % (
                flag, unknown[0], ", ".join(names)))
    for name, where in args.copies:
        if where.host is not None:
            try:
                address.check_family(where.host, args.family)
            except ValueError as exc:
                raise cli.UsageError("--copy %s: %s" % (name, exc)) from None
    if args.min_copies > len(names):
        raise cli.UsageError("--min-copies %d but only %d --copy given" % (
            args.min_copies, len(names)))
    if args.stamp and (args.stamp.startswith("/") or ".." in args.stamp.split("/")):
        raise cli.UsageError("--stamp %s must be a path inside the copy" % args.stamp)
    for low, high in (("shrink", args.shrink_warning), ("churn", args.churn_warning)):
        if high > getattr(args, low + "_critical"):
            raise cli.UsageError("--%s-warning %g%% is above --%s-critical %g%%" % (
                low, high, low, getattr(args, low + "_critical")))
    for flag, path in (("--ssh-identity", args.ssh_identity),
                       ("--ssh-known-hosts", args.ssh_known_hosts)):
        # ssh itself would blame the host ("host key not known") for a file it cannot read
        if path:
            try:
                with open(path, "rb"):
                    pass
            except OSError as exc:
                raise nagiosplugin.CheckError("cannot read the %s file %s: %s" % (
                    flag, path, (exc.strerror or str(exc)).lower())) from None
    if store is None:
        from osop_checks import state as store
    path = args.state_file or default_state_file(args.source, args.copies)
    store.ensure_dir(path, create=not args.state_file)
    previous = store.load(path, reset="remove it, or run once with --accept-changes",
                          discard_corrupt=args.accept_changes)
    if previous is not None:
        try:
            previous = read_state(previous)
        except (ValueError, TypeError, AttributeError) as exc:
            if not args.accept_changes:
                raise nagiosplugin.CheckError(
                    "the state file %s is not a state of check_three_copies (%s); it is not "
                    "trusted (remove it, or run once with --accept-changes)" % (path, exc)) \
                    from None
            previous = None
    # Pending: with --stamp what changed after the stamp (or within an explicit --settle);
    # without it what is younger than --settle, by default the warning age.
    explicit = args.settle is not None
    if explicit:
        settle = args.settle
    elif args.stamp:
        settle = 0
    else:
        settle = _upper(args.warning) or _upper(args.critical) or 0
    # Without a known last sync (--stamp) or an explicit --settle, an entry is lacked past
    # the settle window only when the copy is past -w already: the age judges it.
    zero = cli.range_type(units.COUNT)("0") if (args.stamp or explicit) else None
    for what in ("missing", "differing"):
        warning = getattr(args, what + "_warning")
        if zero and warning is not None and getattr(args, what + "_critical") is None \
                and units.never_fires(warning, zero, units.COUNT):
            raise cli.UsageError(
                "--%s-warning %s can never fire: every value it warns about is critical by "
                "--%s-critical 0 (the default with --stamp or --settle) already" % (
                    what, units.range_text(warning, units.COUNT), what))
    options = ssh.Options(port=args.ssh_port, identity=args.ssh_identity,
                          known_hosts=args.ssh_known_hosts, user=args.ssh_user,
                          family=args.family)
    now = time.time()  # one clock for the churn window and the survey
    churn_since = churn_start(previous, args.churn_window, now)
    found = survey(args.source, args.copies, options, stamp=args.stamp,
                   settle=settle, sample_size=args.verify_sample, now=now,
                   since_run=churn_since, canaries=args.canary)
    limits = Limits((args.warning, args.critical),
                    (args.missing_warning, args.missing_critical or zero),
                    (args.differing_warning, args.differing_critical or zero),
                    (args.extra_warning, args.extra_critical), args.stamp)
    rules = LossRules((args.shrink_warning, args.shrink_critical),
                      (args.churn_warning, args.churn_critical), args.alarm_hold,
                      args.accept_changes, churn_since)
    return plugin.Remembering(
        functools.partial(save_state, store, path),
        Copies(found, previous, args.stamp),
        Rules(limits, args.offsite, args.min_copies, args.sleeping, rules),
        plugin.PerfOnly("age", args.warning, args.critical),
        plugin.PerfOnly("missing", limits.missing[0], limits.missing[1]),
        plugin.PerfOnly("differing", limits.differing[0], limits.differing[1]),
        plugin.PerfOnly("churn", nagiosplugin.Range("%g" % args.churn_warning),
                        nagiosplugin.Range("%g" % args.churn_critical)),
        Report())


def main(argv=None):
    runtime.main(NAME, build_parser, build_check, argv)
