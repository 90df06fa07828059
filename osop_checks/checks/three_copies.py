"""check_three_copies: is every byte of the live data kept in enough fresh, complete copies?

arguments -> survey (sources.manifest: probe each tree, stream sorted manifests of the source
and every copy, merge them in one pass, sha256 a random sample) -> judge each copy (age,
missing, differing, extra) -> count the good copies, a filesystem or host once -> the rules
(at least --min-copies, at least one --offsite) -> status line, a row per copy, perfdata.
"""
from __future__ import annotations

import dataclasses
import re
import threading
import time

import nagiosplugin
from nagiosplugin import Critical, Ok, Unknown, Warn

from osop_checks import cli, proc, runtime, text, units
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
            "check_three_copies --source /srv/www --copy usb=/mnt/usb/www "
            "--copy nas=nas:/backup/www --min-copies 2 --missing-critical 10 "
            "--missing-warning 0 --settle 2h",
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
        ])
    what = parser.add_argument_group("what to check")
    what.add_argument("--source", required=True, type=location_type, metavar="PATH",
                      help="the live data the copies must hold: an absolute path (or "
                           "[user@]host:/path)")
    what.add_argument("--copy", action="append", required=True, type=copy_type,
                      metavar="NAME=LOCATION", dest="copies",
                      help="a copy: a name for the output and an absolute local path, "
                           "[user@]host:/path or ssh://[user@]host[:port]/path (repeatable)")
    what.add_argument("--offsite", action="append", default=[], metavar="NAME",
                      help="this copy is off-site; at least one off-site copy must be ok "
                           "(repeatable; without it the off-site rule is not checked)")
    what.add_argument("--min-copies", type=cli.count_type(1), default=3, metavar="N",
                      help="at least this many copies must be ok, a filesystem or host "
                           "counted once (default: 3)")
    what.add_argument("--stamp", metavar="NAME",
                      help="a file that the sync job writes into each copy when it has "
                           "finished (relative to the copy): its mtime is the copy's age. "
                           "Without it the age is that of the oldest change in the source "
                           "the copy does not have yet")
    what.add_argument("--settle", type=cli.duration_type(0), default=3600,
                      metavar="DURATION",
                      help="changes in the source younger than this do not count, a sync "
                           "may still be on its way (default: 1h)")
    what.add_argument("--verify-sample", type=cli.count_type(0, 10000), default=0,
                      metavar="N",
                      help="also compare the sha256 of N random files of the source with "
                           "each copy's (catches a change that kept size and mtime; "
                           "default: 0, off)")
    thr = parser.add_argument_group("thresholds (per copy)")
    parser.add_thresholds(
        units.DURATION, "26h", "50h", metavar="AGE", group=thr, help=(
            "warn when a copy is older than this (Nagios range; units: %s; default: 26h)"
            % units.DURATION.examples, "a copy older than this is not ok (default: 50h)"))
    counted = {"missing": "source entries a copy lacks",
               "differing": "entries whose type, size, mtime or (sampled) content differ",
               "extra": "entries only in the copy"}
    for what_, default in (("missing", "0"), ("differing", "0"), ("extra", None)):
        thr.add_argument("--%s-warning" % what_, type=cli.range_type(units.COUNT),
                         metavar="RANGE",
                         help="warning threshold on the number of %s" % counted[what_])
        thr.add_argument("--%s-critical" % what_, type=cli.range_type(units.COUNT),
                         default=cli.range_type(units.COUNT)(default) if default else None,
                         metavar="RANGE",
                         help="critical threshold on the number of %s%s" % (
                             counted[what_], " (default: %s: any is not ok)" % default
                             if default else ""))
    con = parser.add_argument_group("ssh (for [user@]host:/path locations)")
    con.add_argument("--ssh-port", type=cli.count_type(1, 65535), metavar="PORT",
                     help="port of the remote sshd (default: ssh's own, 22)")
    con.add_argument("--ssh-identity", metavar="FILE",
                     help="private key to log in with (only this key is offered)")
    con.add_argument("--ssh-known-hosts", metavar="FILE",
                     help="known_hosts file the host keys are checked against, strictly "
                          "(default: ssh's own, ~/.ssh/known_hosts)")
    con.add_argument("--ssh-user", metavar="USER",
                     help="remote user where the location names none")
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
    source: manifest.Location
    source_probe: manifest.Probe
    copies: list[CopyState]
    now: float
    sampled: int = 0


def _parallel(calls):
    """Run the callables in threads (their subprocesses run meanwhile); return a list of
    (result, exception) in the same order."""
    results = [(None, None)] * len(calls)

    def run(index, call):
        try:
            results[index] = (call(), None)
        except BaseException as exc:  # noqa: B902 - handed to the caller
            results[index] = (None, exc)

    threads = [threading.Thread(target=run, args=(i, c), daemon=True)
               for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


class _Listing:
    """An open manifest stream whose end (and exit status) is collected later."""

    def __init__(self, location, source, options):
        self.manager = manifest.listing(location, source=source, options=options)
        self.lines = self.manager.__enter__()
        self.error = None

    def close(self, exc=None):
        try:
            if exc is None:
                self.manager.__exit__(None, None, None)
            else:
                self.manager.__exit__(type(exc), exc, exc.__traceback__)
        except proc.CommandError as failure:
            self.error = failure
        except BaseException:  # noqa: B902 - the exception we were given, re-raised
            if exc is None:
                raise


def _what(copy):
    return "copy %s (%s)" % (copy.name, copy.location)


def survey_trees(source, copies, options=ssh.Options(), stamp=None, settle=3600,
                 sample_size=0, now=None):
    """Probe every tree at once, list them all at once, merge the listings; see module."""
    now = time.time() if now is None else now
    states = [CopyState(name, location) for name, location in copies]
    listings = {}

    def look(location, stamp_name, key):
        found = manifest.probe(location, stamp_name, options)
        if found.state == "ok":  # start listing while the other probes still run
            listings[key] = _Listing(location, key == "source", options)
        return found

    try:
        calls = [lambda: look(source, None, "source")]
        calls += [(lambda s=s, i=i: look(s.location, stamp, i))
                  for i, s in enumerate(states)]
        answers = _parallel(calls)
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
        order = [i for i in range(len(states)) if i in listings]
        sample = manifest.Sample(sample_size) if sample_size else None
        tallies = manifest.compare(
            listings["source"].lines, [listings[i].lines for i in order], now=now,
            settle=settle, ignore=[stamp] if stamp else (), sample=sample)
    except BaseException as exc:
        for listing in listings.values():
            listing.close(exc)
        raise
    for listing in listings.values():
        listing.close()
    if listings["source"].error:
        raise _unknown("the source %s" % source, listings["source"].error)
    for i, tally in zip(order, tallies):
        state = states[i]
        error = listings[i].error
        if isinstance(error, ssh.SshError):
            state.unreachable = error.kind
        elif error is not None:
            raise _unknown(_what(state), error)
        else:
            state.tally = tally
    result = Survey(source, source_probe, states, now)
    if sample and sample.paths:
        result.sampled = len(sample.paths)
        _verify(result, sample.paths, options)
    return result


_PROBE_WORDS = {"missing": "does not exist", "notdir": "is not a directory",
                "unreadable": "cannot be read (permission denied)"}


def _unknown(what, failure):
    """An expected failure as one UNKNOWN line naming the tree; anything else unchanged."""
    if isinstance(failure, (nagiosplugin.CheckError, OSError)):
        return nagiosplugin.CheckError("%s: %s" % (what, runtime._describe(failure)))
    return failure


def _verify(result, paths, options):
    """sha256 of the sampled files on the source and on each copy that has them alike."""
    checked = [s for s in result.copies if s.tally is not None]
    calls = [lambda: manifest.checksums(result.source, paths, options)]
    wanted = {}
    for state in checked:
        wanted[state.name] = [p for p in paths if p not in state.tally.sampled_bad]
        calls.append(lambda s=state: manifest.checksums(s.location, wanted[s.name], options))
    answers = _parallel(calls)
    source_hashes, failure = answers[0]
    if failure is not None:
        raise _unknown("sha256sum on the source", failure)
    for state, (hashes, failure) in zip(checked, answers[1:]):
        if isinstance(failure, ssh.SshError):
            state.unreachable = failure.kind
            state.tally = None
            continue
        if failure is not None:
            raise _unknown("sha256sum on %s" % _what(state), failure)
        for path in wanted[state.name]:
            if path in source_hashes and path in hashes:
                state.tally.verified += 1
                if hashes[path] != source_hashes[path]:
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
    group: str | None = None  # set when counted together with another copy
    on_source: bool = False  # on the source's own filesystem: no copy at all

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


def limit_text(rng):
    """A range's bound in the unit it was most likely written in: 180000 -> '50h'."""
    value = rng.end if rng.end != float("inf") else rng.start
    if value in (float("inf"), float("-inf")):
        return str(rng)
    value = int(value)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if value and value % size == 0:
            return "%d%s" % (value // size, unit)
    return "%ds" % value


def _breach(value, warning, critical):
    if critical is not None and not critical.match(value):
        return Critical, critical
    if warning is not None and not warning.match(value):
        return Warn, warning
    return Ok, None


def _worse(a, b):
    return a if a.code >= b.code else b


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
    if limits.stamp:
        if probe is None or probe.stamp_mtime is None:
            judged.state = Critical
            judged.reasons.append("%s has no stamp file %s" % (name, limits.stamp))
        else:
            judged.age, judged.age_from = max(0.0, now - probe.stamp_mtime), "stamp"
    elif tally is not None:
        judged.age_from = "manifest"
        judged.age = 0.0 if tally.oldest_change is None else max(
            0.0, now - tally.oldest_change)
    if judged.age is not None:
        state, rng = _breach(judged.age, *limits.age)
        if state != Ok:
            judged.state = _worse(judged.state, state)
            judged.reasons.append("%s is %s old (%s %s)" % (
                name, units.format_duration(judged.age),
                "limit" if state == Critical else "warning", limit_text(rng)))
    if tally is not None:
        for what, verb in (("missing", "lacks"), ("differing", "differs in"),
                           ("extra", "has extra")):
            count = getattr(tally, what)
            state, rng = _breach(count, *getattr(limits, what))
            if state != Ok:
                judged.state = _worse(judged.state, state)
                example = tally.examples[what][0] if tally.examples[what] else ""
                judged.reasons.append("%s %s %d entr%s%s" % (
                    name, verb, count, "y" if count == 1 else "ies",
                    " (e.g. %s)" % example if example else ""))
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
            m.group = names
    return notes, list(groups.values())


def _and(names):
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


# -- nagiosplugin: resource, contexts, summary ----------------------------------------------

class Copies(nagiosplugin.Resource):
    """The survey judged: a 'copies_ok' metric for the rules, and per copy its age,
    missing and differing counts (perfdata)."""

    def __init__(self, survey, limits, offsite, min_copies):
        self.survey = survey
        self.limits = limits
        self.min_copies = min_copies
        self.judged = [judge(c, c.name in offsite, limits, survey.now) for c in survey.copies]
        self.notes, self.groups = group(self.judged, survey.source_probe, survey.source)
        self.ok_groups = [g for g in self.groups if any(m.ok for m in g)]
        self.offsite_rule = bool(offsite)
        self.offsite_ok = any(j.ok and j.offsite for j in self.judged)

    def probe(self):
        yield nagiosplugin.Metric("copies_ok", len(self.ok_groups), min=0,
                                  max=len(self.groups), context="copies")
        for item in self.judged:
            tally = item.copy.tally
            label = text.label(item.name)
            if item.age is not None:
                yield nagiosplugin.Metric(label + "_age", int(item.age), "s", min=0,
                                          context="age")
            if tally is not None:
                yield nagiosplugin.Metric(label + "_missing", tally.missing, min=0,
                                          context="missing")
                yield nagiosplugin.Metric(label + "_differing", tally.differing, min=0,
                                          context="differing")


class Rules(nagiosplugin.Context):
    """At least --min-copies good copies (a group once) and an off-site one: else CRITICAL;
    a copy with a problem beyond that: WARNING."""

    def __init__(self):
        super().__init__("copies")

    def evaluate(self, metric, resource):
        if metric.value < resource.min_copies:
            state = Critical
        elif resource.offsite_rule and not resource.offsite_ok:
            state = Critical
        elif any(j.state != Ok for j in resource.judged):
            state = Warn
        else:
            state = Ok
        return nagiosplugin.Result(state, metric=metric)

    def performance(self, metric, resource):
        return nagiosplugin.Performance(
            "copies_ok", metric.value, "", None,
            nagiosplugin.Range("%d:" % resource.min_copies), 0, metric.max)


class PerfOnly(nagiosplugin.Context):
    """Perfdata with the thresholds of one quantity; the judgement is the Rules'."""

    def __init__(self, name, warning, critical):
        super().__init__(name)
        self.warning = warning
        self.critical = critical

    def evaluate(self, metric, resource):
        return nagiosplugin.Result(Ok, metric=metric)

    def performance(self, metric, resource):
        return nagiosplugin.Performance(metric.name, metric.value, metric.uom, self.warning,
                                        self.critical, metric.min, metric.max)


class Report(nagiosplugin.Summary):
    def _head(self, resource):
        return "%d of %d cop%s ok" % (len(resource.ok_groups), len(resource.groups),
                                      "y" if len(resource.groups) == 1 else "ies")

    def ok(self, results):
        resource = results.first_significant.resource
        ages = [(j.age, j.name) for j in resource.judged if j.age is not None]
        tail = ""
        if ages:
            age, name = max(ages)
            tail = ", all in sync" if age == 0 else ", oldest %s %s" % (
                name, units.format_duration(age))
        return self._head(resource) + tail

    def problem(self, results):
        resource = results.first_significant.resource
        reasons = []
        rank = {Critical: 0, Unknown: 1, Warn: 2}
        bad = sorted((j for j in resource.judged if j.state != Ok),
                     key=lambda j: rank.get(j.state, 3))
        for item in bad:
            reasons.extend(item.reasons)
        if len(resource.ok_groups) < resource.min_copies:
            reasons.extend(resource.notes)
        if resource.offsite_rule and not resource.offsite_ok:
            reasons.append("no off-site copy ok")
        head = self._head(resource)
        if len(resource.ok_groups) < resource.min_copies:
            head += " (at least %d needed)" % resource.min_copies
        return head + (": " + ", ".join(reasons) if reasons else "")

    def verbose(self, results):
        resource = results.first_significant.resource
        lines = []
        for item in resource.judged:
            lines.append(row(item, resource.survey))
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
        lines.extend(resource.notes)
        if resource.offsite_rule:
            lines.append("off-site: %s" % ", ".join(
                "%s (%s)" % (j.name, "ok" if j.ok else "not ok")
                for j in resource.judged if j.offsite))
        else:
            lines.append("off-site rule not checked (no --offsite)")
        return lines


def row(item, survey):
    """The long-output line of one copy: state, age, counts, where."""
    copy = item.copy
    cells = ["%s: %s" % (item.name, str(item.state).upper())]
    if copy.unreachable:
        cells.append("unreachable (%s)" % copy.unreachable)
    elif copy.probe is not None and copy.probe.state != "ok":
        cells.append(_PROBE_WORDS.get(copy.probe.state, copy.probe.state))
    if item.age is not None:
        if item.age_from == "stamp":
            cells.append("age %s (stamp)" % units.format_duration(item.age))
        elif item.age == 0:
            cells.append("in sync")
        else:
            cells.append("age %s (oldest change it lacks)" % units.format_duration(item.age))
    tally = copy.tally
    if tally is not None:
        cells.append("missing %d, differing %d, extra %d, equal %d" % (
            tally.missing, tally.differing, tally.extra, tally.equal))
        if tally.settling:
            cells.append("%d settling" % tally.settling)
        if survey.sampled:
            cells.append("sha256 %d of %d sampled files checked" % (
                tally.verified, survey.sampled))
    cells.append(("off-site " if item.offsite else "") + str(copy.location))
    if item.on_source:
        cells.append("on the source's filesystem")
    if item.group:
        cells.append("counted once with %s" % item.group)
    return ", ".join(cells)


def build_check(args, survey=survey_trees):
    names = [name for name, _where in args.copies]
    duplicate = sorted({n for n in names if names.count(n) > 1})
    if duplicate:
        raise cli.UsageError("copy name %s given twice" % duplicate[0])
    unknown = [n for n in args.offsite if n not in names]
    if unknown:
        raise cli.UsageError("--offsite %s names no --copy (copies: %s)" % (
            unknown[0], ", ".join(names)))
    if args.min_copies > len(names):
        raise cli.UsageError("--min-copies %d but only %d --copy given" % (
            args.min_copies, len(names)))
    if args.stamp and (args.stamp.startswith("/") or ".." in args.stamp.split("/")):
        raise cli.UsageError("--stamp %s must be a path inside the copy" % args.stamp)
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
    options = ssh.Options(port=args.ssh_port, identity=args.ssh_identity,
                          known_hosts=args.ssh_known_hosts, user=args.ssh_user)
    found = survey(args.source, args.copies, options, stamp=args.stamp,
                   settle=args.settle, sample_size=args.verify_sample)
    limits = Limits((args.warning, args.critical),
                    (args.missing_warning, args.missing_critical),
                    (args.differing_warning, args.differing_critical),
                    (args.extra_warning, args.extra_critical), args.stamp)
    return nagiosplugin.Check(
        Copies(found, limits, set(args.offsite), args.min_copies),
        Rules(),
        PerfOnly("age", args.warning, args.critical),
        PerfOnly("missing", args.missing_warning, args.missing_critical),
        PerfOnly("differing", args.differing_warning, args.differing_critical),
        Report())


def main(argv=None):
    runtime.main(NAME, build_parser, build_check, argv)
