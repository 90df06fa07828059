"""check_three_copies: is every byte of the live data kept in enough fresh, complete copies?

arguments -> gather: the last run's state file, and the survey (sources.manifest: probe each
tree, stream sorted manifests of the source and every copy, merge them in one pass, sha256 a
random sample) -> judge_survey, pure: judge_copy for each copy (age, missing, differing,
extra; a sleeping copy by its last verification), the good copies counted a host once, the
rules (at least --min-copies, at least one --offsite), a loss that spreads (shrink, churn,
canaries, held alarms) -> a plugin.Verdict: status line, a row per copy, perfdata, and the
state file written once the output is rendered.
"""
from __future__ import annotations

import collections
import contextlib
import functools
import os
import re
import time

import nagiosplugin
from nagiosplugin import Critical, Ok, Unknown, Warn

from osop_checks import cli, fanout, plugin, runtime, text, units
from osop_checks.record import Record
from osop_checks.sources import manifest

# address, proc and sources.ssh are imported where a remote tree or a failure needs them: a
# run over small local trees needs none of them (nor subprocess), see sources.manifest.

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
            "  find -H ROOT -mindepth 1 -printf \"%y\\t%s\\t%T@\\t%P\\0\" |",
            "  LC_ALL=C sort -z -t \"<tab>\" -k4 -S 8M | tr ... (the source adds %C@, its",
            "  ctime, first): piped by the check for a local tree, in sh -c over ssh for a",
            "  remote one; a local tree of at most 2,000 entries is walked by the check",
            "  itself instead (os.scandir, lstat: the same records; -vv says so);",
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
    ssh_file_type = cli.value_type(_ssh_file, "ssh file")
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
    cli.add_family_options(con)
    return parser


def _ssh_file(path):
    from osop_checks.sources import ssh

    return ssh.check_file_option(path)


def parse_copy(value):
    """``NAME=LOCATION`` as (name, manifest location)."""
    name, sep, where = str(value).partition("=")
    if not sep:
        raise ValueError("%r is not NAME=LOCATION (e.g. offsite=backup@vault:/srv/data1)" % value)
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", name):
        raise ValueError("copy name %r: use letters, digits, '_', '.', '-'" % name)
    return name, manifest.parse_location(where)


def parse_canary(value):
    """A path relative to the source, inside it."""
    text = str(value)
    parts = text.split("/")
    if not text.strip() or text.startswith("/") or ".." in parts or "\0" in text:
        raise ValueError(
            "%r must be a file inside the source, relative to it (e.g. docs/.canary)" % value)
    path = os.path.normpath(text)
    if path == ".":
        raise ValueError("%r is the source itself, not a file in it" % value)
    return path


location_type = cli.value_type(manifest.parse_location, "location")
copy_type = cli.value_type(parse_copy, "copy")
canary_type = cli.value_type(parse_canary, "path inside the source")


# -- gathering ----------------------------------------------------------------------------

# Records: osop_checks.record (no dataclasses, a cost at every start).
class CopyState(Record):
    """What the survey found for one copy (before judgement): its manifest.Location, its
    manifest.Probe, ssh's failure in words (``unreachable``), its manifest.Tally."""

    def __init__(self, name, location, probe=None, unreachable=None, tally=None):
        self.name = name
        self.location = location
        self.probe = probe
        self.unreachable = unreachable
        self.tally = tally


class Survey(Record):
    """What was found: the trees' probes and tallies, the source's counters (``tree``), and
    the canaries' sha256: {path: {"source": digest or None, copy name: digest or None}}
    (None: missing or unreadable there; only copies that were reached)."""

    def __init__(self, source, source_probe, copies, now, sampled=0, tree=None,
                 canaries=None):
        self.source = source  # manifest.Location
        self.source_probe = source_probe  # manifest.Probe
        self.copies = copies  # [CopyState]
        self.now = now
        self.sampled = sampled
        self.tree = tree  # manifest.Tree
        self.canaries = canaries if canaries is not None else {}


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
        from osop_checks import proc

        if pending is not None or not isinstance(failure, proc.CommandError):
            raise
        errors[key] = failure


def _what(copy):
    return "copy %s (%s)" % (copy.name, copy.location)


def survey_trees(source, copies, options=None, stamp=None, settle=3600,
                 sample_size=0, now=None, since_run=None, canaries=()):
    """Probe every tree at once, list them all at once, merge the listings; see module.

    A change a copy lacks is pending when younger than ``settle``, or, with ``stamp``, when
    it is later than that copy's stamp (or younger than ``settle``). ``since_run``: the
    start of the churn window, for the source's count of files changed since.
    ``canaries``: paths to sha256. ``options``: ssh.Options (None: ssh's own)."""
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
        if _over_ssh(failure) and failure.kind != "unknown host":
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
        if _over_ssh(error):
            state.unreachable = error.kind
        elif error is not None:
            raise _unknown(_what(state), error)
        else:
            state.tally = tally


def _over_ssh(failure):
    """Whether ``failure`` is ssh's own (a copy unreachable): sources.ssh imported only to
    tell, since a run over local trees needs it for nothing else."""
    if failure is None:
        return False
    from osop_checks.sources import ssh

    return isinstance(failure, ssh.SshError)


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
        if _over_ssh(failure):
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


# -- judging: one copy, then the whole run (pure: plain data in, a plugin.Verdict out) ------

class Limits(collections.namedtuple(
        "Limits", "age missing differing extra stamp offsite sleeping min_copies shrink churn "
        "hold accept churn_since",
        defaults=((None, None), (None, None), (None, None), (None, None), None, frozenset(),
                  frozenset(), 3, (10, 25), (30, 60), 86400, False, None))):
    """What a survey is judged against. Per copy: the age (-w/-c: (warning, critical) ranges
    in seconds), the missing, differing and extra counts (the same), the stamp file, which
    copies are off-site and which sleep. The run: --min-copies, and a loss that spreads
    (compared with the last run): the shrink and churn shares ((warning, critical) in
    percent), how long an alarm is held after it was last seen (seconds), --accept-changes
    (a new baseline, no held alarms), and the start of the churn window (``churn_since``:
    churn counts the files changed after it; None on a first run)."""
    __slots__ = ()


class Judged(Record):
    """One copy judged (judge_copy): its state, why (short phrases), its age and how long ago
    it was last verified (perfdata), and, for a sleeping copy judged by its last
    verification, that in words."""

    def __init__(self, copy, offsite, state=Ok, reasons=None, age=None, age_from="",
                 on_source=False, verified_age=None, asleep=""):
        self.copy = copy  # CopyState
        self.offsite = offsite
        self.state = state
        self.reasons = reasons if reasons is not None else []
        self.age = age
        self.age_from = age_from  # "stamp" or "manifest"
        self.on_source = on_source  # on the source's own filesystem: no copy at all
        self.verified_age = verified_age  # since the copy was last reached and compared
        self.asleep = asleep

    @property
    def name(self):
        return self.copy.name

    @property
    def ok(self):
        return self.state in (Ok, Warn)

    @property
    def words(self):
        """The copy's state in a few words, for the state file: "in sync", "ok, 5h
        behind", or the state and its reasons."""
        if self.state == Ok:
            return "in sync" if not self.age else "ok, %s behind" % units.format_duration(
                self.age)
        return text.oneline("%s: %s" % (str(self.state).upper(), "; ".join(self.reasons)),
                            limit=400)


# ssh failures that mean "the host is off" (not a wrong key, a refused login ...)
ASLEEP_KINDS = ("timeout", "connection refused", "unreachable")
STATE_OF = {0: Ok, 1: Warn, 2: Critical, 3: Unknown}


def judge_copy(copy, survey, limits, record=None):
    """The state of one copy and the words for it, from what ``survey`` found of it, the
    ``limits`` and its last verification ``record`` (the state file's: a dict with time,
    state and verdict; None: never verified). A sleeping copy that cannot be reached is
    judged by that record, which must be within the age limits; a copy on the source's own
    filesystem is not ok."""
    name, now, probe, tally = copy.name, survey.now, copy.probe, copy.tally
    state, reasons, asleep = Ok, [], ""
    age, age_from = copy_age(copy, limits.stamp, now)
    verified = 0.0 if not copy.unreachable else \
        None if record is None else max(0.0, now - record["time"])
    if copy.unreachable and name in limits.sleeping and copy.unreachable in ASLEEP_KINDS:
        if record is None:
            state = Critical
            asleep = "%s asleep and never verified yet (unreachable: %s)" % (
                name, copy.unreachable)
            reasons.append(asleep)
        else:
            state = STATE_OF.get(record["state"], Unknown)
            ago = units.format_duration(verified)
            if state != Ok:  # "CRITICAL 2h ago: offsite lacks ..."
                head, colon, tail = record["verdict"].partition(":")
                asleep = "%s asleep, last verified %s %s ago%s%s" % (name, head, ago, colon,
                                                                     tail)
                reasons.append(asleep)
            else:
                asleep = "%s asleep, last verified %s %s ago" % (name, record["verdict"], ago)
            late = plugin.state_of(verified, *limits.age)
            if late != Ok:
                state = plugin.most_significant(state, late)
                reasons.append("%s not verified for %s: did the box wake up?" % (name, ago))
    elif copy.unreachable:
        state = Critical
        reasons.append("%s is unreachable: %s" % (name, copy.unreachable))
    elif probe is not None and probe.state != "ok":
        state = Critical
        reasons.append("%s %s" % (name, _PROBE_WORDS.get(probe.state, probe.state)))
    else:
        if limits.stamp and age is None:
            state = Critical
            reasons.append("%s has no stamp file %s" % (name, limits.stamp))
        if age is not None:
            old = plugin.state_of(age, *limits.age)
            if old != Ok:
                state = plugin.most_significant(state, old)
                bound = "limit %s" % units.range_text(limits.age[1], units.DURATION) \
                    if old == Critical else \
                    "warning %s" % units.range_text(limits.age[0], units.DURATION)
                if age_from == "stamp":
                    reasons.append("%s is %s old (%s)" % (name, units.format_duration(age),
                                                          bound))
                else:  # the copy lacks a change that old: behind, or it lost an old entry
                    reasons.append("%s lacks a change from %s ago (%s)" % (
                        name, units.format_duration(age), bound))
        if tally is not None:
            for what, verb in (("missing", "lacks"), ("differing", "differs in"),
                               ("extra", "has extra")):
                count, limit = getattr(tally, what), getattr(limits, what)
                found = plugin.state_of(count, *limit)
                if what == "differing" and tally.content and found == Ok and \
                        limit == (None, None):
                    found = Critical  # same size and mtime, other content: never pending
                if found != Ok:
                    state = plugin.most_significant(state, found)
                    example = tally.examples[what][0] if tally.examples[what] else ""
                    reasons.append("%s %s %d entr%s%s" % (
                        name, verb, count, plugin.plural(count, "y", "ies"),
                        " (e.g. %s)" % example if example else ""))
    on_source = probe is not None and probe.device is not None and \
        (_host(copy.location), probe.device) == (_host(survey.source),
                                                 survey.source_probe.device)
    if on_source and state in (Ok, Warn):
        state = Critical
        reasons.append("%s is on the same filesystem as the source" % name)
    return Judged(copy, name in limits.offsite, state, reasons, age, age_from, on_source,
                  verified, asleep)


def judge_survey(survey, limits, previous=None, save=None):
    """The whole run judged: every copy (judge_copy, a sleeping one by its last verification
    in ``previous``, the last run's state or None), the copies counted once per host (one
    filesystem is one host's), the rules (at least --min-copies ok, one of them off-site:
    else CRITICAL; a copy with a problem beyond that: WARNING), a loss that spreads compared with
    ``previous`` (shrink, churn, canaries; an alarm held for --alarm-hold: its own state),
    the perfdata, and the state to remember: the Verdict's ``save`` is
    ``save(next_state)`` (None without ``save``)."""
    now = survey.now
    judged = [judge_copy(c, survey, limits, last_verification(previous, c.name))
              for c in survey.copies]
    notes, groups = count_once(judged)
    ok_groups = [g for g in groups if any(m.ok for m in g)]
    too_few = len(ok_groups) < limits.min_copies
    no_offsite = bool(limits.offsite) and not any(j.ok and j.offsite for j in judged)
    bad = plugin.worst_first(j for j in judged if j.state != Ok)
    alarms = loss_alarms(survey, previous, limits)
    findings = []
    if too_few:
        findings.append((Critical, "at least %d copies needed" % limits.min_copies))
    if no_offsite:
        findings.append((Critical, "no off-site copy ok"))
    findings += [(Warn, ", ".join(j.reasons)) for j in bad]
    findings += [(a.state, alarm_text(a, now)) for a in alarms]

    head = "%d of %d cop%s ok" % (len(ok_groups), len(groups),
                                  plugin.plural(len(groups), "y", "ies"))
    if not findings:
        summary = head + _all_well(judged)
    else:
        reasons = [alarm_text(a, now) for a in alarms if a.state == Critical]
        reasons += [reason for j in bad for reason in j.reasons]
        reasons += [alarm_text(a, now) for a in alarms if a.state != Critical]
        reasons += notes if too_few else []
        reasons += ["no off-site copy ok"] if no_offsite else []
        reasons += [j.asleep for j in judged if j.asleep and j.state == Ok]
        if too_few:
            head += " (at least %d needed)" % limits.min_copies
        summary = head + (": " + ", ".join(reasons) if reasons else "")

    perfdata = [nagiosplugin.Performance(
        "copies_ok", len(ok_groups), "", None,
        nagiosplugin.Range("%d:" % limits.min_copies), 0, len(groups))]
    for item in judged:
        label, tally = text.label(item.name), item.copy.tally
        if item.age is not None:
            perfdata.append(nagiosplugin.Performance(label + "_age", int(item.age), "s",
                                                     *limits.age, 0, None))
        if tally is not None:
            perfdata.append(nagiosplugin.Performance(label + "_missing", tally.missing,
                                                     None, *limits.missing, 0, None))
            perfdata.append(nagiosplugin.Performance(label + "_differing", tally.differing,
                                                     None, *limits.differing, 0, None))
        if item.verified_age is not None:
            perfdata.append(nagiosplugin.Performance(
                label + "_verified_age", int(item.verified_age), "s", *limits.age, 0, None))
    share = churn_share(survey, previous)
    if share is not None:
        perfdata.append(nagiosplugin.Performance(
            "churn", round(share, 1), "%", nagiosplugin.Range("%g" % limits.churn[0]),
            nagiosplugin.Range("%g" % limits.churn[1]), 0, 100))

    remember = next_state(survey, judged, alarms, previous, limits)
    return plugin.Verdict(
        findings, summary, perfdata, details(survey, judged, notes, alarms, previous, limits),
        save=None if save is None else functools.partial(save, remember))


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


def churn_share(survey, previous):
    """The share (%) of the source's files changed in the churn window; None on a first run
    (no tree in ``previous``) or without files."""
    tree = survey.tree
    before = ((previous or {}).get("source") or {}).get("tree")
    if not before or tree is None or not tree.files:
        return None
    return 100.0 * tree.changed / tree.files


def _host(location):
    return location.host.lower() if location.remote else LOCAL_HOST


def count_once(judged):
    """Copies on one host count once: (the notes saying so, the groups: lists of judged
    copies, one per host)."""
    notes, groups = [], {}
    for item in judged:
        groups.setdefault(_host(item.copy.location), []).append(item)
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
    return notes, list(groups.values())


def counted_with(item, judged):
    """The copies ``item`` is counted once with ("usb and usb2"), or None."""
    others = [j.name for j in judged
              if j is not item and _host(j.copy.location) == _host(item.copy.location)]
    return _and(others) if others else None


def _and(names):
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


# -- a loss that spreads: compared with the last run (the state file) ----------------------

STATE_VERSION = 1


class Alarm(collections.namedtuple("Alarm", "key state text since seen held",
                                   defaults=(False,))):
    """A shrink, churn or canary alarm (its nagiosplugin state, since and last seen as Unix
    times); ``held``: raised by an earlier run, not this one."""
    __slots__ = ()

    def to_json(self):
        return {"key": self.key, "state": self.state.code, "text": self.text,
                "since": self.since, "seen": self.seen}


def clock(when, now):
    """A past time as the admin reads it: '03:10' within the last 20 hours, else dated."""
    fmt = "%H:%M" if 0 <= now - when < 20 * 3600 else "%Y-%m-%d %H:%M"
    return units.format_time(when, fmt)


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


def shrink(name, before, after, limits, now, key=None):
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
    state = Critical if share >= limits.shrink[1] else Warn if share >= limits.shrink[0] \
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


def churn(tree, since, limits, now):
    """An Alarm when at least a threshold share of the source's files changed since
    ``since`` (the start of the churn window); else None."""
    if not tree.files:
        return None
    share = 100.0 * tree.changed / tree.files
    state = Critical if share >= limits.churn[1] else Warn if share >= limits.churn[0] \
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


def loss_alarms(survey, previous, limits):
    """The shrink, churn and canary alarms of this run beside those still held from
    ``previous`` (the last run's state; None on a first run), worst first: an alarm seen
    again keeps the time it was raised, and a smaller loss on top does not soften it."""
    now = survey.now
    last = previous or {"source": {}, "copies": {}, "canaries": {}, "alarms": []}
    before = last["source"].get("tree")
    current = []
    if not limits.accept and before and survey.tree is not None:
        current.append(shrink("source", before, survey.tree, limits, now))
        current.append(churn(survey.tree, limits.churn_since or before["time"], limits, now))
    for copy in survey.copies:
        earlier = (last["copies"].get(copy.name) or {}).get("tree")
        if not limits.accept and earlier and copy.tally is not None:
            current.append(shrink(copy.name, earlier, copy.tally.tree, limits, now,
                                  key="shrink copy " + copy.name))
    current.extend(canary_alarms(survey.canaries, last["canaries"],
                                 before["time"] if before else None, limits.accept, now))
    held = {} if limits.accept else {
        a["key"]: Alarm(a["key"], STATE_OF[a["state"]], a["text"], a["since"], a["seen"],
                        True)
        for a in last["alarms"] if now - a["seen"] < limits.hold}
    for alarm in current:
        if alarm is None:
            continue
        old = held.get(alarm.key)
        if old is not None and old.state.code > alarm.state.code:
            held[alarm.key] = old._replace(seen=alarm.seen)
        elif old is not None:
            held[alarm.key] = alarm._replace(since=min(old.since, alarm.since))
        else:
            held[alarm.key] = alarm
    return sorted(held.values(), key=lambda a: (-a.state.code, a.since, a.key))


def next_state(survey, judged, alarms, previous, limits):
    """The state to write: this run's counts and verifications, the rest carried from
    ``previous``."""
    now = survey.now
    last = previous or {"source": {}, "copies": {}, "canaries": {}}
    copies = {}
    for item in judged:
        old = last["copies"].get(item.name) or {}
        entry = {"location": str(item.copy.location), "tree": old.get("tree"),
                 "verified": old.get("verified")}
        if not item.copy.unreachable:
            entry["verified"] = {"time": now, "state": item.state.code,
                                 "verdict": item.words}
        if item.copy.tally is not None:
            entry["tree"] = dict(item.copy.tally.tree.to_json(), time=now)
        copies[item.name] = entry
    canaries = {} if limits.accept else dict(last.get("canaries") or {})
    for path, where in survey.canaries.items():
        if where.get("source") is not None:
            canaries[path] = where["source"]
    source_tree = last["source"].get("tree")
    if survey.tree is not None:
        source_tree = dict(survey.tree.to_json(), time=now)
    baseline = last.get("baseline")
    if previous is None or limits.accept or not isinstance(baseline, (int, float)):
        baseline = now
    return {"version": STATE_VERSION, "run": now, "baseline": baseline,
            "source": {"location": str(survey.source), "tree": source_tree},
            "copies": copies, "canaries": canaries,
            "alarms": [a.to_json() for a in alarms]}


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
    from osop_checks import state as state_files

    identity = [str(source)] + ["%s=%s" % (n, w) for n, w in sorted(
        (n, str(w)) for n, w in copies)]
    return state_files.default_path("three_copies", identity=identity, environ=environ, uid=uid)


# -- the words: the status line's tail, a row per copy, the long output ----------------------

def alarm_text(alarm, now):
    if not alarm.held:
        return alarm.text
    return "%s (alarm held since %s)" % (alarm.text, clock(alarm.since, now))


def _all_well(judged):
    """The status line's tail when all is well: the oldest copy, what it has pending, and
    the sleeping copies' last verification."""
    ages = [(j.age, j.name, j) for j in judged if j.age is not None]
    tail = ""
    if ages:
        age, name, item = max(ages, key=lambda a: a[:2])
        tail = ", all in sync" if age == 0 else ", oldest %s %s" % (
            name, units.format_duration(age))
        pending = item.copy.tally.pending if item.copy.tally is not None else 0
        if pending:
            tail += " (%d change%s pending)" % (pending, plugin.plural(pending))
    for item in judged:
        if item.asleep:
            tail += ", " + item.asleep
    return tail


def details(survey, judged, notes, alarms, previous, limits):
    """The long output: a row per copy with examples of what differs, the groups, the
    off-site rule, the source's counts, the canaries, the alarms, the baseline."""
    now = survey.now
    lines = []
    for item in judged:
        lines.append(row(item, survey, counted_with(item, judged)))
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
    lines.extend(notes)
    if limits.offsite:
        lines.append("off-site: %s" % ", ".join(
            "%s (%s)" % (j.name, "ok" if j.ok else "not ok") for j in judged if j.offsite))
    else:
        lines.append("off-site rule not checked (no --offsite)")
    tree = survey.tree
    if tree is not None:
        churned = ""
        before = ((previous or {}).get("source") or {}).get("tree")
        if before:
            churned = ", %d changed since %s (%.1f%%)" % (
                tree.changed, clock(before["time"], now), churn_share(survey, previous) or 0)
        lines.append("source: %d entries, %d files, %s%s" % (
            tree.entries, tree.files, units.format_size(tree.bytes), churned))
    for path, where in sorted(survey.canaries.items()):
        lines.append("canary %s: %s" % (path, ", ".join(
            "%s %s" % (name, digest[:12] if digest else "missing")
            for name, digest in where.items())))
    for alarm in alarms:
        lines.append("%s: %s (raised %s, held until %s after it was last seen, or a "
                     "run with --accept-changes)" % (
                         str(alarm.state).upper(), alarm.text, clock(alarm.since, now),
                         units.format_duration(limits.hold)))
    if limits.accept:
        lines.append("changes accepted: the trees and canaries as they are now are the "
                     "new baseline, held alarms cleared")
    elif previous is None:
        lines.append("first run: baseline recorded (shrink, churn and canary changes "
                     "are judged from the next run on)")
    return lines


def row(item, survey, counted_with=None):
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
    if counted_with:
        cells.append("counted once with %s" % counted_with)
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
            from osop_checks import address

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
        from osop_checks import state as state_files

        store = state_files
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
    options = None  # trees all local: no ssh
    if any(where.remote for where in [args.source] + [w for _name, w in args.copies]):
        from osop_checks.sources import ssh

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
                    (args.extra_warning, args.extra_critical), args.stamp,
                    frozenset(args.offsite), frozenset(args.sleeping), args.min_copies,
                    (args.shrink_warning, args.shrink_critical),
                    (args.churn_warning, args.churn_critical), args.alarm_hold,
                    args.accept_changes, churn_since)
    return judge_survey(found, limits, previous, functools.partial(store.save, path))


def main(argv=None):
    runtime.main(NAME, build_parser, build_check, argv)
