"""check_systemd_units: failed units, units that must be active, late timers, system state.

arguments -> systemctl (sources.systemd: list-units, list-timers, is-system-running, show)
-> selection (--type, --include, --exclude, --exclude-unit: the same for every unit type)
-> one Metric per failed unit, per --unit, per judged timer and one for the system state
-> a Context per kind judges it -> the summary names the failed units first.
"""
import time

import nagiosplugin
from nagiosplugin import Critical, Ok, Unknown, Warn

from osop_checks import cli, plugin, runtime, text, units
from osop_checks.sources import systemd

NAME = "SYSTEMD_UNITS"

UNIT_TYPES = ("service", "socket", "target", "device", "mount", "automount", "swap", "timer",
              "path", "slice", "scope")
SEVERITIES = {"ok": Ok, "warning": Warn, "critical": Critical, "unknown": Unknown}
# States of the whole system and what they mean for the check (severity option aside).
BAD_SYSTEM_STATES = ("degraded", "starting", "initializing", "maintenance", "stopping")
SUMMARY_NAMES = 8  # unit names in the status line before "+N more"


def build_parser():
    parser = cli.Parser(
        NAME, "check_systemd_units",
        "Failed systemd units, units that must be active, timers that did not run in time, "
        "and the state of the whole system (systemctl is-system-running).",
        examples=[
            "check_systemd_units",
            "check_systemd_units --exclude '^user@' --exclude-unit lvm2-monitor.service",
            "check_systemd_units -u nginx -u postgresql.service --type service",
            "check_systemd_units --timer-max-age 2d --timer-max-age backup.timer=26h",
            "check_systemd_units --systemctl 'nsenter -t 4242 -a systemctl'",
        ],
        behind_the_scenes=[
            "runs (LC_ALL=C TZ=UTC, no shell, each bounded by --timeout):",
            "  systemctl --no-pager list-units --all --output=json   (systemd >= 246)",
            "  systemctl --no-pager list-units --all --plain         (older: the table, whose",
            "      header must read UNIT LOAD ACTIVE SUB DESCRIPTION, or the check says the",
            "      layout of systemctl output has changed)",
            "  systemctl --no-pager list-timers --all [--output=json]   (with --timer-max-age)",
            "  systemctl --no-pager is-system-running",
            "  systemctl --no-pager show -p Id,LoadState,ActiveState,... -- UNIT...",
            "      (only for failed units, --unit units and, with --timer-max-age, timers)",
            "--systemctl replaces 'systemctl' by a command prefix (split like a shell would,",
            "never run by one). No D-Bus library is needed.",
        ])
    src = parser.add_argument_group("where systemd is asked")
    src.add_argument("--systemctl", kind=cli.PROGRAM, default="systemctl", metavar="COMMAND",
                     help="the systemctl command, with a prefix if needed, e.g. "
                          "'nsenter -t PID -a systemctl' for a container "
                          "(default: systemctl)")
    src.add_argument("--format", kind=cli.PLAIN, choices=("auto", "json", "table"), default="auto",
                     help="read systemctl's JSON or its plain table; auto: JSON where "
                          "systemctl writes it (default: auto)")
    sel = parser.add_argument_group(
        "selection (applied the same way to every unit type, timers included)")
    sel.add_argument("--type", kind=cli.PLAIN, action="append", default=[], type=unit_types,
                     metavar="TYPE[,TYPE]",
                     help="only units of these types (repeatable): %s" % ", ".join(UNIT_TYPES))
    sel.add_argument("-i", "--include", kind=cli.PLAIN,
                     action="append", default=[], type=cli.regex_type,
                     metavar="REGEX",
                     help="only units whose name matches one of these regular expressions "
                          "(repeatable; searched anywhere in the name, anchor with ^ $)")
    sel.add_argument("-e", "--exclude", kind=cli.PLAIN,
                     action="append", default=[], type=cli.regex_type,
                     metavar="REGEX",
                     help="leave out units whose name matches (repeatable)")
    sel.add_argument("--exclude-unit", kind=cli.PLAIN, action="append", default=[], type=unit_name,
                     metavar="UNIT", help="leave out this unit (repeatable; a name without "
                                          "a type means NAME.service)")
    req = parser.add_argument_group("units that must be active")
    req.add_argument("-u", "--unit", kind=cli.PLAIN, action="append", default=[], type=unit_name,
                     metavar="UNIT",
                     help="this unit must be active, CRITICAL otherwise (repeatable); a "
                          "oneshot service that exited successfully and a unit whose start "
                          "condition failed count as fine; not subject to the selection")
    tim = parser.add_argument_group("timers")
    tim.add_argument("--timer-max-age", kind=cli.PLAIN,
                     action="append", default=[], type=timer_max_age,
                     metavar="[TIMER=]DURATION",
                     help="a timer whose last trigger is older than this is late; a timer "
                          "that never triggered is late once it has been active this long "
                          "(repeatable; TIMER=DURATION for one timer, e.g. backup.timer=26h; "
                          "units: %s; default: timers are not judged); a TIMER named here "
                          "that is missing or not active is late too" % units.DURATION.examples)
    sev = parser.add_argument_group("severities")
    sev.add_argument("--failed-severity", kind=cli.PLAIN,
                     choices=("warning", "critical"), default="critical",
                     help="state for a failed unit (default: critical)")
    sev.add_argument("--late-severity", kind=cli.PLAIN,
                     choices=("warning", "critical"), default="warning",
                     help="state for a late timer (default: warning)")
    sev.add_argument("--state-severity", kind=cli.PLAIN, choices=("ok", "warning", "critical"),
                     default="warning",
                     help="state when the system is %s; a 'degraded' caused only by units "
                          "left out by the selection is OK (default: warning)"
                          % "/".join(BAD_SYSTEM_STATES))
    return parser


# -- option types ---------------------------------------------------------------------------

def unit_types(value):
    kinds = [k.strip() for k in str(value).split(",") if k.strip()]
    bad = [k for k in kinds if k not in UNIT_TYPES]
    if not kinds or bad:
        raise cli.argparse.ArgumentTypeError("%r is not a unit type (%s)" % (
            ",".join(bad) or value, ", ".join(UNIT_TYPES)))
    return kinds


unit_types.__name__ = "unit type"


def unit_name(value):
    """A unit name as systemctl takes it; NAME without a known type suffix is NAME.service."""
    value = str(value).strip()
    if not systemd.UNIT_NAME.match(value):
        raise cli.argparse.ArgumentTypeError("%r is not a unit name" % value)
    if value.rsplit(".", 1)[-1] not in UNIT_TYPES:
        value += ".service"
    return value


unit_name.__name__ = "unit name"


def timer_max_age(value):
    """DURATION for every timer, or TIMER=DURATION for one ('.timer' added when missing)."""
    name, sep, duration = str(value).rpartition("=")
    if sep:
        name = name.strip()
        if not systemd.UNIT_NAME.match(name):
            raise cli.argparse.ArgumentTypeError("%r is not a timer name" % name)
        if not name.endswith(".timer"):
            name += ".timer"
    seconds = cli.duration_type(minimum=1)(duration)
    return (name if sep else None), seconds


timer_max_age.__name__ = "timer age"


# -- selection ------------------------------------------------------------------------------

class Selection:
    """Which units the check looks at: the same rule for services, timers and every type."""

    def __init__(self, args):
        self.types = {k for group in args.type for k in group}
        self.include = args.include
        self.exclude = args.exclude
        self.excluded = set(args.exclude_unit)

    def steps(self):
        """The selection's filters in turn: (words when it leaves nothing, test)."""
        if self.types:
            yield ("no unit matches %s" % cli.as_given("--type", sorted(self.types)),
                   lambda name: (name.rsplit(".", 1)[-1] if "." in name else "") in self.types)
        if self.include:
            yield ("no unit matches %s" % cli.as_given("-i", self.include),
                   lambda name: any(r.search(name) for r in self.include))
        if self.exclude:
            yield ("every unit is excluded by %s" % cli.as_given("-e", self.exclude),
                   lambda name: not any(r.search(name) for r in self.exclude))
        if self.excluded:
            yield ("every unit is excluded by %s" % cli.as_given(
                "--exclude-unit", sorted(self.excluded)), lambda name: name not in self.excluded)

    def __call__(self, name):
        return all(test(name) for _words, test in self.steps())

    def nothing_left(self, names):
        """Words naming the filter that leaves none of ``names``; None when some are left."""
        for words, test in self.steps():
            names = [n for n in names if test(n)]
            if not names:
                return words
        return None


class TimerAges:
    """The --timer-max-age values: one for every timer and/or per timer."""

    def __init__(self, values):
        self.default = None
        self.per_timer = {}
        for name, seconds in values:
            if name is None:
                self.default = seconds
            else:
                self.per_timer[name] = seconds

    def __bool__(self):
        return self.default is not None or bool(self.per_timer)

    def __call__(self, name):
        return self.per_timer.get(name, self.default)


# -- evaluation -----------------------------------------------------------------------------

class Units(nagiosplugin.Resource):
    """Turns one systemctl snapshot into metrics: counts for perfdata and one metric per thing
    to judge (its value is the systemd data itself)."""

    def __init__(self, snapshot, selection, required, ages, now):
        self.snapshot = snapshot
        self.selection = selection
        self.required = required
        self.ages = ages
        self.now = now

    def probe(self):
        snap = self.snapshot
        chosen = [u for u in snap.units if self.selection(u.name)]
        failed = [u for u in chosen if u.active == "failed"]
        for unit in failed:
            yield nagiosplugin.Metric(unit.name, (unit, snap.properties.get(unit.name)),
                                      context="failed")
        for name in self.required:
            yield nagiosplugin.Metric(name, snap.properties.get(name), context="required")
        active_units = {u.name for u in snap.units if u.active == "active"}
        timers = [t for t in snap.timers or () if self.selection(t.name)
                  and t.name in active_units]
        timers_total = sum(1 for u in chosen if u.kind == "timer" and u.active == "active")
        late = 0
        judged = []
        for timer in timers:
            if self.ages(timer.name) is not None:
                judged.append((timer.name, timer))
        # a timer named in --timer-max-age that is not an active timer never triggers: late
        active_timers = {t.name for t in timers}
        for name in self.ages.per_timer:
            if name not in active_timers and self.selection(name):
                judged.append((name, None))
        for name, timer in judged:
            value = (timer, snap.properties.get(name), self.ages(name))
            late += is_late(*value, now=self.now)
            yield nagiosplugin.Metric(name, value, context="timer")
        # a degraded system with no failed unit left after the selection is explained away
        all_failed = [u for u in snap.units if u.active == "failed"]
        yield nagiosplugin.Metric("system", (snap.state, len(all_failed), len(failed)),
                                  context="system")
        required_down = sum(1 for name in self.required
                            if not required_fine(snap.properties.get(name)))
        for label, value in (("units_failed", len(failed)),
                             ("units_active", sum(u.active == "active" for u in chosen)),
                             ("units_total", len(chosen)),
                             ("timers_late", late), ("timers_total", timers_total),
                             ("required_not_active", required_down)):
            yield nagiosplugin.Metric(label, value, min=0, context="count")


def is_late(timer, props, max_age, now):
    """Late: the last trigger is older than max_age, or the timer never triggered although
    it has been active for longer than max_age, or it is not an active timer at all."""
    if timer is None:
        return True
    if timer.last is not None:
        return now - timer.last > max_age
    since = props.active_enter if props is not None else None
    return since is not None and now - since > max_age


def required_fine(props):
    if props is None or props.load_state in ("not-found", "masked", "error", "bad-setting"):
        return False
    return (props.active_state in ("active", "reloading", "refreshing")
            or props.exited_successfully or props.condition_failed)


def _when(stamp):
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp))


class FailedUnit(nagiosplugin.Context):
    def __init__(self, severity):
        super().__init__("failed")
        self.severity = severity

    def evaluate(self, metric, resource):
        unit, props = metric.value
        return nagiosplugin.Result(self.severity, "%s failed" % text.oneline(unit.name), metric)


def failed_detail(unit, props):
    parts = []
    if props is not None:
        if props.result and props.result != "success":
            parts.append("result %s" % props.result)
        if props.exit_status:
            parts.append("exit status %d" % props.exit_status)
        if props.exit_time:
            parts.append("at %s" % _when(props.exit_time))
    detail = "%s failed%s" % (unit.name, (" (%s)" % ", ".join(parts)) if parts else "")
    if unit.description and unit.description != unit.name:
        detail += ": " + unit.description
    return detail


class RequiredUnit(nagiosplugin.Context):
    def __init__(self):
        super().__init__("required")

    def evaluate(self, metric, resource):
        props = metric.value
        name = text.oneline(metric.name)
        if props is None:
            return nagiosplugin.Result(Unknown, "%s: systemctl said nothing about it" % name,
                                       metric)
        if props.load_state == "not-found":
            return nagiosplugin.Result(Critical, "%s not found" % name, metric)
        if props.load_state in ("masked", "error", "bad-setting"):
            return nagiosplugin.Result(Critical, "%s is %s" % (name, props.load_state), metric)
        if props.active_state in ("active", "reloading", "refreshing"):
            return nagiosplugin.Result(Ok, "%s is %s (%s)" % (
                name, props.active_state, props.sub_state), metric)
        if props.exited_successfully:
            return nagiosplugin.Result(Ok, "%s ran and exited successfully at %s" % (
                name, _when(props.exit_time)), metric)
        if props.condition_failed:
            return nagiosplugin.Result(Ok, "%s was skipped: its start condition failed "
                                           "at %s" % (name, _when(props.condition_time)),
                                       metric)
        return nagiosplugin.Result(Critical, "%s is %s (%s), must be active" % (
            name, props.active_state or "unknown", props.sub_state or "?"), metric)


class TimerAge(nagiosplugin.Context):
    def __init__(self, severity, now):
        super().__init__("timer")
        self.severity = severity
        self.now = now

    def evaluate(self, metric, resource):
        timer, props, max_age = metric.value
        name = text.oneline(metric.name)
        late = is_late(timer, props, max_age, self.now)
        limit = units.format_duration(max_age)
        if timer is None:
            if props is None or props.load_state == "not-found":
                hint = "%s not found" % name
            else:
                hint = "%s is %s (%s), so it never triggers" % (
                    name, props.active_state or "not active", props.sub_state or "?")
        elif timer.last is not None:
            hint = "%s last triggered %s ago (max %s)" % (
                name, units.format_duration(self.now - timer.last), limit)
        elif props is not None and props.active_enter is not None:
            hint = "%s has never triggered (active for %s, max %s)" % (
                name, units.format_duration(self.now - props.active_enter), limit)
        else:
            hint = "%s has never triggered" % name
        return nagiosplugin.Result(self.severity if late else Ok, hint, metric)


class SystemState(nagiosplugin.Context):
    def __init__(self, severity):
        super().__init__("system")
        self.severity = severity

    def evaluate(self, metric, resource):
        state, failed_all, failed_selected = metric.value
        if state == "running":
            return nagiosplugin.Result(Ok, "system running", metric)
        if state in ("offline", "unknown"):
            return nagiosplugin.Result(Unknown, "system state %s" % state, metric)
        if state == "degraded" and failed_all and not failed_selected:
            return nagiosplugin.Result(
                Ok, "system degraded only by %d unit%s left out by the selection" % (
                    failed_all, plugin.plural(failed_all)), metric)
        return nagiosplugin.Result(self.severity, "system %s" % state, metric)


class Report(nagiosplugin.Summary):
    def __init__(self, verbose=0):
        self.verbose_level = verbose

    @staticmethod
    def _count(results, name):
        for result in results:
            if result.metric and result.metric.name == name and \
                    result.metric.context == "count":
                return result.metric.value
        return 0

    def ok(self, results):
        words = "%d units (%d active), none failed" % (
            self._count(results, "units_total"), self._count(results, "units_active"))
        required = [r for r in results if r.metric and r.metric.context == "required"]
        if required:
            words += ", %d required active" % len(required)
        timers = [r for r in results if r.metric and r.metric.context == "timer"]
        if timers:
            words += ", %d timer%s on time" % (len(timers), plugin.plural(len(timers)))
        state = [r for r in results if r.metric and r.metric.context == "system"]
        if state:
            words += ", " + str(state[0].hint)
        return words

    def problem(self, results):
        bad = [r for r in results if r.state != Ok and r.metric]
        failed = [text.oneline(r.metric.name) for r in bad if r.metric.context == "failed"]
        groups = []
        if failed:
            shown = failed[:SUMMARY_NAMES]
            more = len(failed) - len(shown)
            groups.append("failed: " + ", ".join(shown) + (" +%d more" % more if more else ""))
        others = sorted((r for r in bad if r.metric.context != "failed"),
                        key=lambda r: (plugin.rank(r.state),
                                       ("required", "timer", "system").index(
                                           r.metric.context)
                                       if r.metric.context in ("required", "timer", "system")
                                       else 9))
        groups.extend(str(r.hint) for r in others)
        return "; ".join(groups) or "problem"

    def verbose(self, results):
        lines = []
        ordered = plugin.worst_first(r for r in results
                                     if r.metric and r.metric.context != "count")
        for result in ordered:
            context = result.metric.context
            if context == "system" and result.state == Ok:
                continue
            if context == "timer" and result.state == Ok and not self.verbose_level:
                continue
            if context == "failed":
                hint = failed_detail(*result.metric.value)
            else:
                hint = str(result.hint)
            lines.append("%s: %s" % (str(result.state).upper(), hint))
        return lines


def build_check(args, gather=systemd.gather, now=time.time):
    try:
        command = systemd.split_command(args.systemctl)
    except ValueError as exc:
        raise cli.UsageError("--systemctl: %s" % exc) from None
    selection = Selection(args)
    ages = TimerAges(args.timer_max_age)
    if ages and selection.types and "timer" not in selection.types:
        raise cli.UsageError("--timer-max-age judges timers, but --type leaves them out")
    required = list(dict.fromkeys(args.unit))

    def wanted(unit_list, timers):
        names = [u.name for u in unit_list if u.active == "failed" and selection(u.name)]
        names += required
        if ages:
            names += [t.name for t in timers if selection(t.name)
                      and ages(t.name) is not None]
            names += [name for name in ages.per_timer if selection(name)]
        return names

    snapshot = gather(command, args.format, wanted, timers=bool(ages))
    nothing = selection.nothing_left([u.name for u in snapshot.units])
    if nothing and snapshot.units:
        # a typo in -i, or an -e that takes everything, must not read as "none failed"
        raise nagiosplugin.CheckError("%s (of %d units listed)" % (nothing, len(snapshot.units)))
    resource = Units(snapshot, selection, required, ages, now())
    return nagiosplugin.Check(
        resource,
        FailedUnit(SEVERITIES[args.failed_severity]),
        RequiredUnit(),
        TimerAge(SEVERITIES[args.late_severity], resource.now),
        SystemState(SEVERITIES[args.state_severity]),
        plugin.PerfOnly("count"),  # the counts are judged through the metrics above
        Report(args.verbose))


def main(argv=None):
    runtime.main(NAME, build_parser, build_check, argv)
