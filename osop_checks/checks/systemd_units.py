"""check_systemd_units: failed units, units that must be active, late timers, system state.

arguments -> systemctl (sources.systemd: list-units, list-timers, is-system-running, show)
-> judge (pure): the selection (--type, --include, --exclude, --exclude-unit: the same for
every unit type), a finding per failed unit, per --unit, per judged timer and one for the
system state, the counts as perfdata; the status line names the failed units first
-> runtime renders the verdict.
"""
import re
import time

import nagiosplugin
from nagiosplugin import Critical, Ok, Unknown, Warn

from osop_checks import cli, plugin, runtime, text, units
from osop_checks.sources import systemd

NAME = "SYSTEMD_UNITS"

UNIT_TYPES = ("service", "socket", "target", "device", "mount", "automount", "swap", "timer",
              "path", "slice", "scope")
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
            "check_systemd_units --enabled nginx --enabled postgresql -u nginx",
            "check_systemd_units --user vet -u syncthing",
        ],
        behind_the_scenes=[
            "runs (LC_ALL=C TZ=UTC, no shell, each bounded by --timeout):",
            "  systemctl --no-pager list-units --all --output=json   (systemd >= 246)",
            "  systemctl --no-pager list-units --all --plain         (older: the table, whose",
            "      header must read UNIT LOAD ACTIVE SUB DESCRIPTION, or the check says the",
            "      layout of systemctl output has changed)",
            "  systemctl --no-pager list-timers --all [--output=json]   (with --timer-max-age)",
            "  systemctl --no-pager is-system-running",
            "  systemctl --no-pager show -p Id,LoadState,ActiveState,...,UnitFileState -- UNIT...",
            "      (only for failed units, --unit and --enabled units and, with",
            "      --timer-max-age, timers)",
            "  journalctl --no-pager -b -o json -r -n 20 _PID=1",
            "      MESSAGE_ID=d9b373ed55a64feb8242e02dbe79a49c   (only when no unit failed",
            "      now: this boot's last unit failure; the journalctl beside --systemctl's",
            "      systemctl)",
            "--user USER adds '--user -M USER@' to every systemctl, asks 'show -p",
            "ControlGroup' for the user manager's unit and matches the journal on it",
            "(_SYSTEMD_UNIT=user@UID.service) instead of _PID=1.",
            "--systemctl replaces 'systemctl' by a command prefix (split like a shell would,",
            "never run by one). No D-Bus library is needed.",
        ])
    src = parser.add_argument_group("where systemd is asked")
    src.add_argument("--systemctl", kind=cli.PROGRAM, default="systemctl", metavar="COMMAND",
                     help="the systemctl command, with a prefix if needed, e.g. "
                          "'nsenter -t PID -a systemctl' for a container "
                          "(default: systemctl)")
    src.add_argument("--user", kind=cli.PLAIN, type=user_name, metavar="USER",
                     help="the user units of USER instead of the system's: its user manager, "
                          "which runs without a login when USER lingers (loginctl "
                          "enable-linger USER); asked with 'systemctl --user -M USER@' "
                          "(needs root and dbus-user-session); the same rules and options")
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
                          "condition failed count as fine; not subject to the selection: a UNIT "
                          "stopped and not loaded, masked or missing is CRITICAL even when "
                          "the selection leaves no other unit")
    req.add_argument("--enabled", kind=cli.PLAIN, action="append", default=[], type=unit_name,
                     metavar="UNIT",
                     help="this unit must be enabled to start at boot: disabled, masked, "
                          "enabled only until the next reboot (enabled-runtime) or missing is "
                          "CRITICAL (repeatable; a service that runs now but will not come "
                          "back after the next reboot); static and indirect units are fine; "
                          "not subject to the selection")
    tim = parser.add_argument_group("timers")
    tim.add_argument("--timer-max-age", kind=cli.PLAIN,
                     action="append", default=[], type=timer_max_age,
                     metavar="[TIMER=]DURATION",
                     help="a timer whose last trigger is older than this is late; a timer "
                          "that never triggered is late once it has been active this long "
                          "(repeatable; TIMER=DURATION for one timer, e.g. backup.timer=26h; "
                          "units: %s; default: timers are not judged); a TIMER named here "
                          "that is missing or not active is late too, and is judged whatever the "
                          "selection" % units.DURATION.examples)
    sev = parser.add_argument_group("severities")
    alarms = ("warning", "critical")
    cli.add_state_option(sev, "--failed-severity", "state for a failed unit", "critical", alarms)
    cli.add_state_option(sev, "--late-severity", "state for a late timer", "warning", alarms)
    cli.add_state_option(sev, "--state-severity", "state when the system is %s" % "/".join(
        BAD_SYSTEM_STATES), "warning",
        more="; a 'degraded' caused only by units left out by the selection is OK")
    return parser


# -- option types ---------------------------------------------------------------------------

def parse_unit_types(value):
    kinds = [k.strip() for k in str(value).split(",") if k.strip()]
    bad = [k for k in kinds if k not in UNIT_TYPES]
    if not kinds or bad:
        raise ValueError("%r is not a unit type (%s)" % (
            ",".join(bad) or value, ", ".join(UNIT_TYPES)))
    return kinds


def parse_unit_name(value):
    """A unit name as systemctl takes it; NAME without a known type suffix is NAME.service."""
    value = str(value).strip()
    if not systemd.UNIT_NAME.match(value):
        raise ValueError("%r is not a unit name" % value)
    if value.rsplit(".", 1)[-1] not in UNIT_TYPES:
        value += ".service"
    return value


def parse_timer_max_age(value):
    """DURATION for every timer, or TIMER=DURATION for one ('.timer' added when missing)."""
    name, sep, duration = str(value).rpartition("=")
    if sep:
        name = name.strip()
        if not systemd.UNIT_NAME.match(name):
            raise ValueError("%r is not a timer name" % name)
        if not name.endswith(".timer"):
            name += ".timer"
    seconds = cli.duration_type(minimum=1)(duration)
    return (name if sep else None), seconds


def parse_user_name(value):
    """A user name as useradd allows it (no '@', no spaces: it goes into -M USER@)."""
    value = str(value).strip()
    if not re.match(r"^[a-z_][a-z0-9_.-]*\$?$", value) or len(value) > 32:
        raise ValueError("%r is not a user name" % value)
    return value


unit_types = cli.value_type(parse_unit_types, "unit type")
user_name = cli.value_type(parse_user_name, "user name")
unit_name = cli.value_type(parse_unit_name, "unit name")
timer_max_age = cli.value_type(parse_timer_max_age, "timer age")


# -- selection ------------------------------------------------------------------------------

class Selection:
    """Which units the check looks at: the same rule for services, timers and every type."""

    def __init__(self, types=(), include=(), exclude=(), excluded=()):
        """``types``: lists of unit types (as --type gives them), ``include``/``exclude``:
        compiled regular expressions, ``excluded``: unit names."""
        self.types = {k for group in types for k in group}
        self.include = list(include)
        self.exclude = list(exclude)
        self.excluded = set(excluded)

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


# -- judgement ------------------------------------------------------------------------------

class Limits:
    """What the arguments ask of the units: the selection, the units that must be active, the
    timers' ages, the state of a failed unit, a late timer and a bad system state, and whether
    timers on time are listed (-v)."""

    def __init__(self, selection, required=(), ages=None, failed=Critical, late=Warn,
                 system=Warn, verbose=0, enabled=()):
        self.selection = selection
        self.required = list(required)
        self.enabled = list(enabled)
        self.ages = ages if ages is not None else TimerAges(())
        self.failed = failed
        self.late = late
        self.system = system
        self.verbose = verbose


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
    return units.format_time(stamp, "%Y-%m-%d %H:%M:%S UTC", utc=True)


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


def judge_required(name, props):
    """The state and words of a unit that must be active."""
    name = text.oneline(name)
    if props is None:
        return Unknown, "%s: systemctl said nothing about it" % name
    if props.load_state == "not-found":
        return Critical, "%s not found" % name
    if props.load_state in ("masked", "error", "bad-setting"):
        return Critical, "%s is %s" % (name, props.load_state)
    if props.active_state in ("active", "reloading", "refreshing"):
        return Ok, "%s is %s (%s)" % (name, props.active_state, props.sub_state)
    if props.exited_successfully:
        return Ok, "%s ran and exited successfully at %s" % (name, _when(props.exit_time))
    if props.condition_failed:
        return Ok, "%s was skipped: its start condition failed at %s" % (
            name, _when(props.condition_time))
    return Critical, "%s is %s (%s), must be active" % (
        name, props.active_state or "unknown", props.sub_state or "?")


# UnitFileState values of a unit that starts at the next boot (or is started by another).
ENABLED_FINE = ("enabled", "static", "indirect", "generated", "alias", "transient")


def judge_enabled(name, props):
    """The state and words of a unit that must be enabled to start at boot."""
    name = text.oneline(name)
    if props is None:
        return Unknown, "%s: systemctl said nothing about it" % name
    if props.load_state == "not-found":
        return Critical, "%s not found, so it does not start at boot" % name
    state = props.unit_file_state or "unknown"
    if state in ENABLED_FINE:
        return Ok, "%s is %s" % (name, state)
    if state == "enabled-runtime":
        return Critical, "%s is enabled only until the next reboot (enabled-runtime)" % name
    return Critical, "%s is %s, so it does not start at boot" % (name, text.oneline(state))


def enabled_fine(props):
    return props is not None and props.load_state != "not-found" and \
        props.unit_file_state in ENABLED_FINE


def judge_timer(name, timer, props, max_age, now, severity):
    """The state and words of a timer judged by --timer-max-age (``timer`` None: it is not an
    active timer)."""
    name = text.oneline(name)
    limit = units.format_duration(max_age)
    if timer is None:
        if props is None or props.load_state == "not-found":
            words = "%s not found" % name
        else:
            words = "%s is %s (%s), so it never triggers" % (
                name, props.active_state or "not active", props.sub_state or "?")
    elif timer.last is not None:
        words = "%s last triggered %s ago (max %s)" % (
            name, units.format_duration(now - timer.last), limit)
    elif props is not None and props.active_enter is not None:
        words = "%s has never triggered (active for %s, max %s)" % (
            name, units.format_duration(now - props.active_enter), limit)
    else:
        words = "%s has never triggered" % name
    return (severity if is_late(timer, props, max_age, now) else Ok), words


def judge_system(state, failed_all, failed_selected, severity):
    """The state and words of the whole system's state; a degraded system with no failed
    unit left after the selection is explained away."""
    if state == "running":
        return Ok, "system running"
    if state in ("offline", "unknown"):
        return Unknown, "system state %s" % state
    if state == "degraded" and failed_all and not failed_selected:
        return Ok, "system degraded only by %d unit%s left out by the selection" % (
            failed_all, plugin.plural(failed_all))
    return severity, "system %s" % state


# The order of the kinds of finding in the status line after the failed units.
KINDS = ("required", "enabled", "timer", "system")


def judge(snapshot, limits, now):
    """The verdict on one systemctl snapshot: a finding per failed unit, per unit that must
    be active, per judged timer and one for the system state; the counts as perfdata."""
    selection, ages = limits.selection, limits.ages
    names = [u.name for u in snapshot.units]
    nothing = selection.nothing_left(names)
    named = bool(limits.required or limits.enabled or ages.per_timer)
    if nothing and names and not named:
        # a typo in -i, or an -e that takes everything, must not read as "none failed"
        words = "%s (of %d unit%s listed)" % (nothing, len(names), plugin.plural(len(names)))
        return plugin.Verdict([(Unknown, words)], words)
    chosen = [u for u in snapshot.units if selection(u.name)]
    failed = [u for u in chosen if u.active == "failed"]
    found = []  # (kind, state, words, long-output words)
    for unit in failed:
        words = "%s failed" % text.oneline(unit.name)
        found.append(("failed", limits.failed, words,
                      failed_detail(unit, snapshot.properties.get(unit.name))))
    for name in limits.required:
        state, words = judge_required(name, snapshot.properties.get(name))
        found.append(("required", state, words, words))
    for name in limits.enabled:
        state, words = judge_enabled(name, snapshot.properties.get(name))
        found.append(("enabled", state, words, words))
    active_units = {u.name for u in snapshot.units if u.active == "active"}
    # a timer named in --timer-max-age TIMER=... is judged whatever the selection says
    timers = [t for t in snapshot.timers or ()
              if (selection(t.name) or t.name in ages.per_timer) and t.name in active_units]
    judged = [(t.name, t) for t in timers if ages(t.name) is not None]
    # a timer named in --timer-max-age that is not an active timer never triggers: late
    active_timers = {t.name for t in timers}
    judged += [(name, None) for name in ages.per_timer if name not in active_timers]
    late = 0
    for name, timer in judged:
        props = snapshot.properties.get(name)
        late += is_late(timer, props, ages(name), now)
        state, words = judge_timer(name, timer, props, ages(name), now, limits.late)
        found.append(("timer", state, words, words))
    all_failed = sum(1 for u in snapshot.units if u.active == "failed")
    state, words = judge_system(snapshot.state, all_failed, len(failed), limits.system)
    found.append(("system", state, words, words))
    required_down = sum(1 for name in limits.required
                        if not required_fine(snapshot.properties.get(name)))
    counts = (("units_failed", len(failed)),
              ("units_active", sum(u.active == "active" for u in chosen)),
              ("units_total", len(chosen)),
              ("timers_late", late),
              ("timers_total", sum(1 for u in chosen
                                   if u.kind == "timer" and u.active == "active")),
              ("required_not_active", required_down),
              ("enabled_not_enabled", sum(1 for name in limits.enabled
                                          if not enabled_fine(snapshot.properties.get(name)))))
    verdict = plugin.Verdict(
        [(state, words) for _, state, words, _ in found],
        perfdata=[nagiosplugin.Performance(label, value, None, None, None, 0, None)
                  for label, value in counts],
        long=["%s: %s" % (str(state).upper(), detail)
              for kind, state, _, detail in plugin.worst_first(found, lambda f: f[1])
              if not (state == Ok and (kind == "system" or
                                       (kind == "timer" and not limits.verbose)))])
    if nothing and names:
        # one service per check (-u UNIT -i '^UNIT$'): the named units are what is judged, a
        # unit that is stopped and not loaded is in no list-units at all
        verdict.long.append("the selection leaves no listed unit (%s): only the units named "
                            "with -u, --enabled and --timer-max-age TIMER= are judged" % nothing)
    if not failed and snapshot.failures:
        # nothing failed now: a unit that failed earlier in this boot (a flapping unit, one
        # restarted by hand) is named, so it is seen
        earlier = [f for f in snapshot.failures if selection(f.unit)]
        if earlier:
            last = earlier[0]
            verdict.long.append("last unit failure of this boot: %s at %s%s" % (
                text.oneline(last.unit), _when(last.time),
                " (result %s)" % text.oneline(last.result) if last.result else ""))
    if verdict.state == Ok:
        verdict.summary = _all_well(found, dict(counts))
    else:
        verdict.summary = _problems(found, [text.oneline(u.name) for u in failed])
    return verdict


def _all_well(found, counts):
    words = "%d unit%s (%d active), none failed" % (
        counts["units_total"], plugin.plural(counts["units_total"]), counts["units_active"])
    required = sum(1 for kind, *_ in found if kind == "required")
    if required:
        words += ", %d required active" % required
    enabled = sum(1 for kind, *_ in found if kind == "enabled")
    if enabled:
        words += ", %d enabled" % enabled
    timers = sum(1 for kind, *_ in found if kind == "timer")
    if timers:
        words += ", %d timer%s on time" % (timers, plugin.plural(timers))
    return words + ", " + next(words for kind, _, words, _ in found if kind == "system")


def _problems(found, failed):
    """The status line of a problem: the ``failed`` units by name first (at most
    SUMMARY_NAMES), then the other problems, worst first."""
    bad = [f for f in found if f[1] != Ok]
    groups = []
    if failed:
        shown = failed[:SUMMARY_NAMES]
        more = len(failed) - len(shown)
        groups.append("failed: " + ", ".join(shown) + (" +%d more" % more if more else ""))
    others = sorted((f for f in bad if f[0] != "failed"),
                    key=lambda f: (plugin.rank(f[1]), KINDS.index(f[0])))
    groups.extend(words for _, _, words, _ in others)
    return "; ".join(groups) or "problem"


# -- wiring ---------------------------------------------------------------------------------

def build_check(args, gather=systemd.gather, now=time.time):
    try:
        command = systemd.split_command(args.systemctl)
    except ValueError as exc:
        raise cli.UsageError("--systemctl: %s" % exc) from None
    selection = Selection(args.type, args.include, args.exclude, args.exclude_unit)
    ages = TimerAges(args.timer_max_age)
    if ages and selection.types and "timer" not in selection.types:
        raise cli.UsageError("--timer-max-age judges timers, but --type leaves them out")
    limits = Limits(selection, dict.fromkeys(args.unit), ages,
                    failed=args.failed_severity, late=args.late_severity,
                    system=args.state_severity, verbose=args.verbose,
                    enabled=dict.fromkeys(args.enabled))

    def wanted(unit_list, timers):
        names = [u.name for u in unit_list if u.active == "failed" and selection(u.name)]
        names += limits.required + limits.enabled
        if ages:
            names += [t.name for t in timers if selection(t.name)
                      and ages(t.name) is not None]
            names += list(ages.per_timer)
        return names

    def journal(unit_list):
        # the journal is asked only when no selected unit failed now
        return not any(u.active == "failed" and selection(u.name) for u in unit_list)

    snapshot = gather(command, args.format, wanted, timers=bool(ages), user=args.user,
                      journal=journal)
    return judge(snapshot, limits, now())


def main(argv=None):
    runtime.main(NAME, build_parser, build_check, argv)
