"""check_systemd_units on recorded systemctl output (tests/fixtures/systemd).

The real systemctl runs in tests/integration/test_systemd_units.py; here a recorded answer per
systemctl subcommand (never per call order) stands in for it, so the source's parsing and the
check's judgement are tested together, without a process.
"""
import functools
import sys

import pytest
from nagiosplugin import Critical, Ok, Unknown, Warn

from osop_checks import proc
from osop_checks.checks import systemd_units as check
from osop_checks.sources import systemd
from tests import helpers
from tests.helpers import perf_value as perf
from lab.peers import run_inprocess, run_plugin

fixture = functools.partial(helpers.fixture, "systemd")  # recorded systemctl outputs
NOW = float(fixture("captured-at_v252.txt"))
SHOW = {block.split("Id=", 1)[1].split("\n", 1)[0]: block
        for block in fixture("show_cases_v252.txt").strip().split("\n\n")}


class Recorded:
    """Answers each systemctl subcommand from a fixture; records what was asked."""

    def __init__(self, units="list-units_degraded_v252", timers="list-timers_v252",
                 state="is-system-running_degraded_v252.txt", units_json_ignored=None,
                 show=None, fail=None, journal=""):
        self.units = units
        self.timers = timers
        self.state = state
        self.units_json_ignored = units_json_ignored
        self.show = dict(SHOW, **(show or {}))
        self.fail = fail
        self.journal = journal  # what journalctl -o json writes (recorded, or nothing)
        self.calls = []

    def __call__(self, argv, timeout=None, env=None, ok_codes=(0,)):
        assert env and env.get("TZ") == "UTC"
        if argv[0].endswith("journalctl"):
            self.calls.append(argv)
            return proc.Completed(argv, 0, self.journal, "")
        args = argv[argv.index("--no-pager") + 1:]
        self.calls.append(args)
        if args[:2] == ["--user", "-M"]:  # a user manager answers as the system's would
            args = args[3:]
        if self.fail:
            return proc.Completed(argv, 1, "", self.fail)
        sub = args[0]
        json_wanted = "--output=json" in args
        if sub == "list-units":
            if json_wanted and self.units_json_ignored:
                return proc.Completed(argv, 0, fixture(self.units_json_ignored), "")
            name = self.units + (".json" if json_wanted else ".txt")
        elif sub == "list-timers":
            name = self.timers + (".json" if json_wanted else ".txt")
        elif sub == "is-system-running":
            out = fixture(self.state)
            return proc.Completed(argv, 0 if out.strip() == "running" else 1, out, "")
        elif sub == "show" and "ControlGroup" in args:  # a user manager's own unit
            return proc.Completed(argv, 0, "ControlGroup=/user.slice/user-1000.slice/"
                                           "user@1000.service\n", "")
        elif sub == "show":
            names = args[args.index("--") + 1:]
            blocks = [self.show.get(n, "Id=%s\nLoadState=not-found\nActiveState=inactive\n"
                                       "SubState=dead\nResult=success\nConditionResult=no\n"
                                       "ConditionTimestamp=" % n) for n in names]
            return proc.Completed(argv, 0, "\n\n".join(blocks) + "\n", "")
        else:
            raise AssertionError("unexpected systemctl call %r" % args)
        return proc.Completed(argv, 0, fixture(name), "")


def run(argv, recorded=None, now=NOW):
    recorded = recorded or Recorded()
    build = check.build_check

    def build_check(args):
        return build(args, gather=functools.partial(systemd.gather, run=recorded),
                     now=lambda: now)

    module = type(sys)("recorded_systemd_units")
    module.NAME, module.build_parser, module.build_check = \
        check.NAME, check.build_parser, build_check
    outcome = run_inprocess(module, argv)
    outcome.calls = recorded.calls
    return outcome


# -- parsing ------------------------------------------------------------------------------

def test_json_and_both_tables_of_v252_agree():
    from_json = systemd.parse_units_json(fixture("list-units_degraded_v252.json"))
    assert from_json == systemd.parse_units_table(fixture("list-units_degraded_v252.txt"))
    assert from_json == systemd.parse_units_table(
        fixture("list-units_degraded_fancy_v252.txt"))
    assert len(from_json) == 157
    failed = [u for u in from_json if u.active == "failed"]
    assert [u.name for u in failed] == ["osop-fail.service"]
    assert failed[0].kind == "service"
    assert failed[0].description == "osop test: a service that fails"


def test_job_column_while_starting_is_read_from_table_and_json():
    table = systemd.parse_units_table(fixture("list-units_starting-jobs_v252.txt"))
    assert table == systemd.parse_units_json(fixture("list-units_starting-jobs_v252.json"))
    slow = [u for u in table if u.name == "osop-slow.service"][0]
    assert (slow.active, slow.sub, slow.description) == (
        "activating", "start", "osop test: a slow start")


@pytest.mark.parametrize("name, count, failed", [
    ("list-units_degraded_v219_synthetic.txt", 12, ["kdump.service", "postfix.service"]),
    ("list-units_degraded_v245_synthetic.txt", 11, ["systemd-networkd-wait-online.service"]),
    ("list-units_json-ignored_v245_synthetic.txt", 11,
     ["systemd-networkd-wait-online.service"]),
])
def test_older_tables(name, count, failed):
    units = systemd.parse_units_table(fixture(name))
    assert len(units) == count
    assert [u.name for u in units if u.active == "failed"] == failed
    assert units[0].description == \
        "Arbitrary Executable File Formats File System Automount Point"


def test_timers_json_and_table_agree_to_the_second():
    from_json = systemd.parse_timers_json(fixture("list-timers_v252.json"))
    table = systemd.parse_timers_table(fixture("list-timers_v252.txt"))
    assert [t.name for t in from_json] == [t.name for t in table]
    for a, b in zip(from_json, table):
        assert a.activates == b.activates
        assert (a.last is None) == (b.last is None)
        if a.last is not None:
            assert int(a.last) == b.last
    old = [t for t in table if t.name == "osop-old.timer"][0]
    assert NOW - old.last > 3 * 86400 - 60
    fstrim = [t for t in table if t.name == "fstrim.timer"][0]
    assert fstrim.last is None and fstrim.next is None


@pytest.mark.parametrize("name, timers", [
    ("list-timers_v219_synthetic.txt", {"systemd-tmpfiles-clean.timer": 1606384229.0,
                                       "backup.timer": None}),
    ("list-timers_v245_synthetic.txt", {"apt-daily.timer": 1606349526.0,
                                       "motd-news.timer": 1606322534.0,
                                       "backup.timer": 1605495600.0,
                                       "snapd.snap-repair.timer": None}),
])
def test_older_timer_tables(name, timers):
    parsed = systemd.parse_timers_table(fixture(name))
    assert {t.name: t.last for t in parsed} == timers


@pytest.mark.parametrize("parse, name", [
    (systemd.parse_units_table, "list-units_changed-layout_synthetic.txt"),
    (systemd.parse_units_table, "list-units_degraded_no-legend_v252.txt"),
    (systemd.parse_units_table, "list-timers_v252.txt"),
    (systemd.parse_timers_table, "list-timers_changed-layout_synthetic.txt"),
    (systemd.parse_timers_table, "list-units_degraded_v252.txt"),
    (systemd.parse_units_json, "list-units_degraded_v252.txt"),
    (systemd.parse_timers_json, "list-units_degraded_v252.json"),
])
def test_unknown_layouts_fail_loudly(parse, name):
    with pytest.raises(proc.LayoutError, match="layout of systemctl output has changed"):
        parse(fixture(name))


def test_show_properties():
    props = {p.name: p for p in systemd.parse_show(fixture("show_cases_v252.txt"))}
    assert props["osop-oneshot.service"].exited_successfully
    assert not props["osop-oneshot.service"].condition_failed
    assert props["osop-condition.service"].condition_failed
    # never started: ConditionResult=no but no ConditionTimestamp, so not "condition failed"
    assert not props["osop-stopped.service"].condition_failed
    assert not props["osop-stopped.service"].exited_successfully
    assert props["osop-fail.service"].result == "exit-code"
    assert props["osop-fail.service"].exit_status == 1
    assert props["nonexist.service"].load_state == "not-found"


def test_timestamps():
    assert systemd.parse_timestamp("Thu 2026-11-26 10:57:27 UTC") == 1795690647.0
    assert systemd.parse_timestamp("@1795690647") == 1795690647.0
    for never in ("", "-", "n/a"):
        assert systemd.parse_timestamp(never) is None
    with pytest.raises(Exception, match="time zone CET"):
        systemd.parse_timestamp("Thu 2026-11-26 10:57:27 CET")
    with pytest.raises(proc.LayoutError):
        systemd.parse_timestamp("yesterday")


def test_system_states():
    assert systemd.parse_state(fixture("is-system-running_degraded_v252.txt")) == "degraded"
    assert systemd.parse_state(fixture("is-system-running_starting_v252.txt")) == "starting"
    with pytest.raises(proc.LayoutError):
        systemd.parse_state("bogus\n")


# -- the check ----------------------------------------------------------------------------

def test_failed_unit_is_critical_and_named_first():
    outcome = run([])
    assert outcome.exitcode == 2
    assert outcome.status_line.startswith(
        "SYSTEMD_UNITS CRITICAL - failed: osop-fail.service; system degraded |")
    assert "CRITICAL: osop-fail.service failed (result exit-code, exit status 1, at " \
           "2026-11-26 10:57:27 UTC): osop test: a service that fails" in outcome.output
    assert perf(outcome, "units_failed") == 1
    assert perf(outcome, "units_total") == 157
    assert perf(outcome, "units_active") == 61
    assert perf(outcome, "timers_total") == 8  # fstrim.timer is inactive (container)
    assert perf(outcome, "timers_late") == 0
    # JSON first; properties asked only for the failed unit
    assert outcome.calls[0][:3] == ["list-units", "--all", "--output=json"]
    assert outcome.calls[-1][-2:] == ["--", "osop-fail.service"]


def test_oneshot_and_condition_failed_units_are_not_failures():
    outcome = run(["--include", "^osop-(oneshot|condition|remain)"])
    assert outcome.exitcode == 0, outcome.output
    assert perf(outcome, "units_total") == 3
    assert perf(outcome, "units_failed") == 0


def test_table_format_gives_the_same_verdict():
    json_out = run([])
    table_out = run(["--format", "table"])
    assert table_out.status_line == json_out.status_line
    assert all("--output=json" not in c for c in table_out.calls)


def test_old_systemctl_that_ignores_json_falls_back_to_the_table():
    recorded = Recorded(units="list-units_degraded_v245_synthetic",
                        units_json_ignored="list-units_json-ignored_v245_synthetic.txt",
                        timers="list-timers_v245_synthetic", show={})
    outcome = run(["--exclude-unit", "systemd-networkd-wait-online", "--timer-max-age", "2w"],
                  recorded, now=1606393000)
    assert outcome.exitcode == 0, outcome.output
    assert "system degraded only by 1 unit left out by the selection" in outcome.status_line
    assert [c[:3] for c in recorded.calls[:3]] == [
        ["list-units", "--all", "--output=json"], ["list-units", "--all", "--plain"],
        ["list-timers", "--all"]]


def test_forced_json_on_old_systemctl_is_unknown():
    recorded = Recorded(units_json_ignored="list-units_json-ignored_v245_synthetic.txt")
    outcome = run(["--format", "json"], recorded)
    assert outcome.exitcode == 3
    assert outcome.status_line.startswith("SYSTEMD_UNITS UNKNOWN - the layout of systemctl "
                                          "output has changed: list-units --output=json did "
                                          "not write JSON")


def test_changed_layout_is_one_unknown_line():
    outcome = run(["--format", "table"],
                  Recorded(units="list-units_changed-layout_synthetic"))
    assert outcome.exitcode == 3
    assert outcome.output.count("\n") == 1
    assert outcome.status_line.startswith(
        "SYSTEMD_UNITS UNKNOWN - the layout of systemctl output has changed: list-units "
        "header is not UNIT LOAD ACTIVE SUB DESCRIPTION")


@pytest.mark.parametrize("option", [
    ["--exclude", "^osop-f"], ["--exclude-unit", "osop-fail"],
    ["--exclude-unit", "osop-fail.service"], ["--include", "^apt"], ["--type", "timer"],
    ["--type", "mount,timer"],
])
def test_selection_leaves_the_failed_unit_out(option):
    outcome = run(option)
    assert outcome.exitcode == 0, outcome.output
    assert perf(outcome, "units_failed") == 0
    assert "degraded only by 1 unit left out by the selection" in outcome.status_line


@pytest.mark.parametrize("option, words", [
    (["-e", ".*"], "every unit is excluded by -e '.*'"),
    (["-i", "nginx.servce"], "no unit matches -i nginx.servce"),
    (["-i", "nginx", "-i", "apache"], "no unit matches -i nginx -i apache"),
    (["--type", "swap"], "no unit matches --type swap"),
    (["-i", "osop-fail", "--exclude-unit", "osop-fail"],
     "every unit is excluded by --exclude-unit osop-fail.service"),
    (["-i", "^osop", "-e", "^osop-[a-f]", "-e", "^osop-[g-z]"],
     "every unit is excluded by -e '^osop-[a-f]' -e '^osop-[g-z]'"),
])
def test_a_selection_that_leaves_no_unit_is_unknown_naming_the_filter(option, words):
    """Was 'OK - 0 units (0 active), none failed': a typo must not read as all well."""
    outcome = run(option)
    assert outcome.exitcode == 3, outcome.output
    assert outcome.status_line.startswith("SYSTEMD_UNITS UNKNOWN - %s (of " % words), \
        outcome.output
    assert outcome.output.count("\n") == 1


def test_a_required_unit_that_does_not_exist_stays_critical():
    outcome = run(["-u", "nginx.servce"])
    assert outcome.exitcode == 2 and "nginx.servce.service not found" in outcome.status_line


MASKED = ("Id=osop-masked.service\nDescription=osop-masked.service\nLoadState=masked\n"
          "ActiveState=inactive\nSubState=dead\nResult=success\nConditionResult=no\n")


@pytest.mark.parametrize("unit, words", [
    ("osop-stopped", "osop-stopped.service is inactive (dead), must be active"),
    ("osop-masked", "osop-masked.service is masked"),
    ("osop-gone", "osop-gone.service not found"),
])
@pytest.mark.parametrize("selection", [["-i", r"^{}\.service$"], ["-e", ".*"],
                                       ["--type", "swap"]])
def test_a_named_unit_is_judged_whatever_the_selection_leaves(unit, words, selection):
    """Was UNKNOWN 'no unit matches': a unit stopped and not loaded, masked or missing is in
    no list-units, and the empty selection was judged before the unit named with -u."""
    argv = ["-u", unit] + [a.format(unit) for a in selection]
    outcome = run(argv, Recorded(show={"osop-masked.service": MASKED}))
    assert outcome.exitcode == 2, outcome.output
    assert outcome.status_line.startswith("SYSTEMD_UNITS CRITICAL - %s |" % words), \
        outcome.output
    assert "only the units named with -u, --enabled and --timer-max-age TIMER= are judged" \
        in outcome.output
    assert perf(outcome, "required_not_active") == 1


def test_a_named_unit_alone_that_is_active_is_ok():
    outcome = run(["-u", "osop-running", "-i", r"^osop-running\.service$"])
    assert outcome.exitcode == 0, outcome.output
    assert outcome.status_line.startswith(
        "SYSTEMD_UNITS OK - 1 unit (1 active), none failed, 1 required active, system "), \
        outcome.output


def test_type_selection_counts():
    outcome = run(["--type", "timer"])
    assert perf(outcome, "units_total") == 9
    assert perf(outcome, "timers_total") == 8


def test_required_units():
    outcome = run(["-e", "fail", "-u", "osop-running", "-u", "osop-oneshot.service",
                   "-u", "osop-condition", "-u", "osop-remain", "-u", "osop-old.timer"])
    assert outcome.exitcode == 0, outcome.output
    assert "5 required active" in outcome.status_line
    assert "OK: osop-oneshot.service ran and exited successfully at 2026-11-26 10:57:27 UTC" \
        in outcome.output
    assert "OK: osop-condition.service was skipped: its start condition failed" \
        in outcome.output
    assert perf(outcome, "required_not_active") == 0


def test_required_unit_stopped_or_missing_is_critical():
    outcome = run(["-e", "fail", "-u", "osop-stopped", "-u", "nonexist"])
    assert outcome.exitcode == 2
    assert outcome.status_line.startswith(
        "SYSTEMD_UNITS CRITICAL - osop-stopped.service is inactive (dead), must be active; "
        "nonexist.service not found |")
    assert perf(outcome, "required_not_active") == 2


def test_required_units_are_not_subject_to_the_selection():
    outcome = run(["-u", "osop-fail", "--exclude", "osop"])
    assert outcome.exitcode == 2
    assert "osop-fail.service is failed (failed), must be active" in outcome.status_line


def test_timer_max_age():
    outcome = run(["-e", "fail", "--timer-max-age", "2d"])
    assert outcome.exitcode == 1
    assert outcome.status_line.startswith(
        "SYSTEMD_UNITS WARNING - osop-old.timer last triggered 3d ago (max 2d) |")
    assert perf(outcome, "timers_late") == 1
    assert "osop-recent" not in outcome.output  # on time: only with -v
    verbose = run(["-e", "fail", "--timer-max-age", "2d", "-v"])
    assert "OK: osop-recent.timer last triggered 1h ago (max 2d)" in verbose.output


def test_never_run_timer_is_late_once_active_longer_than_max_age():
    # the container booted 25 s before the capture
    late = run(["-e", "fail", "--timer-max-age", "osop-never=20s"])
    assert late.exitcode == 1
    assert "osop-never.timer has never triggered (active for 25s, max 20s)" in late.status_line
    fine = run(["-e", "fail", "--timer-max-age", "osop-never.timer=1m"])
    assert fine.exitcode == 0, fine.output
    assert "1 timer on time" in fine.status_line


def test_per_timer_age_overrides_the_default_and_exclusion_applies_to_timers():
    outcome = run(["-e", "fail", "--timer-max-age", "2d", "--timer-max-age", "osop-old=4d"])
    assert outcome.exitcode == 0, outcome.output
    excluded = run(["-e", "fail", "-e", "osop-old", "--timer-max-age", "2h"])
    assert "osop-old" not in excluded.output
    assert excluded.exitcode == 0, excluded.output
    critical = run(["-e", "fail", "--timer-max-age", "2d", "--late-severity", "critical"])
    assert critical.exitcode == 2


def test_a_timer_named_with_its_own_age_is_judged_whatever_the_selection():
    """Was OK without a word of it: -e osop-old left out the timer named in
    --timer-max-age osop-old=2h."""
    outcome = run(["-e", "fail", "-e", "osop-old", "--timer-max-age", "osop-old=2h"])
    assert outcome.exitcode == 1, outcome.output
    assert "osop-old.timer last triggered 3d" in outcome.status_line
    alone = run(["-e", ".*", "--timer-max-age", "osop-old=2h"])
    assert alone.exitcode == 1, alone.output
    assert "osop-old.timer last triggered 3d" in alone.status_line


def test_severities():
    assert run(["--failed-severity", "warning"]).exitcode == 1
    healthy = Recorded(state="is-system-running_starting_v252.txt")
    assert run(["-e", "fail"], healthy).exitcode == 1
    assert "system starting" in run(["-e", "fail"], healthy).status_line
    assert run(["-e", "fail", "--state-severity", "critical"], healthy).exitcode == 2
    assert run(["-e", "fail", "--state-severity", "ok"], healthy).exitcode == 0


def test_running_system_is_ok():
    outcome = run([], Recorded(units="list-units_running_v252",
                               state="is-system-running_running_v252.txt"))
    assert outcome.exitcode == 0
    assert outcome.status_line.startswith(
        "SYSTEMD_UNITS OK - 157 units (61 active), none failed, system running |")


def test_no_systemd_is_one_clear_unknown_line():
    recorded = Recorded(fail="System has not been booted with systemd as init system (PID 1)."
                             " Can't operate.\nFailed to connect to bus: Host is down\n")
    outcome = run([], recorded)
    assert outcome.exitcode == 3
    assert outcome.output == (
        "SYSTEMD_UNITS UNKNOWN - systemd is not running here (systemctl list-units --all "
        "--output=json: System has not been booted with systemd as init system)\n")


@pytest.mark.parametrize("argv, message", [
    (["--timer-max-age", "soon"], "argument --timer-max-age"),
    (["--timer-max-age", "backup.timer=0"], "below the minimum"),
    (["--type", "servcie"], "'servcie' is not a unit type"),
    (["-u", "bad name"], "'bad name' is not a unit name"),
    (["--include", "("], "not a valid regular expression"),
    (["--systemctl", "nsenter 'unbalanced"], "--systemctl: cannot split"),
    (["--format", "xml"], "invalid choice"),
])
def test_bad_input_is_one_unknown_line(argv, message):
    outcome = run(argv)
    assert outcome.exitcode == 3
    assert outcome.output.count("\n") == 1
    assert outcome.output.startswith("SYSTEMD_UNITS UNKNOWN - ")
    assert message in outcome.output


def test_missing_systemctl_as_a_process():
    outcome = run_plugin("check_systemd_units", ["--systemctl", "/nonexistent/systemctl"])
    assert outcome.exitcode == 3
    assert outcome.output == "SYSTEMD_UNITS UNKNOWN - command not found: " \
                             "/nonexistent/systemctl\n"
    assert "Traceback" not in outcome.stderr


def test_unit_names_and_text_cannot_break_the_output():
    show = dict(SHOW)
    show["osop-fail.service"] = show["osop-fail.service"].replace(
        "Description=osop test: a service that fails", "Description=evil | perf=1\tx")
    outcome = run([], Recorded(show=show))
    assert outcome.output.count("|") == 1


def test_importing_the_check_loads_no_heavy_module():
    import subprocess

    code = ("import sys, osop_checks.checks.systemd_units; "
            "print([m for m in ('psutil', 'requests', 'cryptography', 'pysnmp', 'dns') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_a_named_timer_that_is_missing_or_inactive_is_late():
    outcome = run(["-e", "fail", "--timer-max-age", "backup=26h",
                   "--timer-max-age", "fstrim.timer=1w"])
    assert outcome.exitcode == 1, outcome.output
    assert "backup.timer not found" in outcome.status_line
    assert perf(outcome, "timers_late") == 2
    show = {"fstrim.timer": "Id=fstrim.timer\nLoadState=loaded\nActiveState=inactive\n"
                            "SubState=dead\nResult=success"}
    outcome = run(["-e", "fail", "--timer-max-age", "fstrim=1w"], Recorded(show=show))
    assert "fstrim.timer is inactive (dead), so it never triggers" in outcome.status_line


def test_timer_max_age_with_types_without_timers_is_a_usage_error():
    outcome = run(["--type", "service", "--timer-max-age", "1d"])
    assert outcome.exitcode == 3
    assert "--timer-max-age judges timers, but --type leaves them out" in outcome.output


def test_utc_seconds_agrees_with_calendar():
    import calendar
    import random

    rng = random.Random(5)
    for _ in range(2000):
        fields = (rng.randint(1900, 2300), rng.randint(1, 12), rng.randint(1, 28),
                  rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59))
        assert systemd.utc_seconds(*fields) == calendar.timegm(fields + (0, 0, 0))
    assert systemd.utc_seconds(2024, 2, 29, 12) == calendar.timegm((2024, 2, 29, 12, 0, 0))
    with pytest.raises(ValueError):
        systemd.utc_seconds(2024, 13, 1)


def test_list_timers_is_asked_only_with_timer_max_age():
    plain = run([])
    assert not any(c[0] == "list-timers" for c in plain.calls)
    assert [c[0] for c in plain.calls] == ["list-units", "is-system-running", "show"]
    timed = run(["--timer-max-age", "2d"])
    assert perf(timed, "timers_total") == perf(plain, "timers_total") == 8
    assert any(c[0] == "list-timers" for c in timed.calls)


def test_is_system_running_that_fails_is_explained():
    class Broken(Recorded):
        def __call__(self, argv, timeout=None, env=None, ok_codes=(0,)):
            if "is-system-running" in argv:
                return proc.Completed(argv, 1, "", "Failed to connect to bus: No such file\n")
            return super().__call__(argv, timeout, env, ok_codes)

    outcome = run([], Broken())
    assert outcome.output == ("SYSTEMD_UNITS UNKNOWN - systemctl is-system-running failed "
                              "(exit 1): Failed to connect to bus: No such file\n")


def test_a_failed_unit_that_is_also_required_is_reported_both_ways():
    outcome = run(["-u", "osop-fail"])
    assert outcome.exitcode == 2
    assert outcome.status_line.startswith(
        "SYSTEMD_UNITS CRITICAL - failed: osop-fail.service; osop-fail.service is failed "
        "(failed), must be active; system degraded |")
    assert perf(outcome, "units_failed") == perf(outcome, "required_not_active") == 1


# -- the judgement, on plain data ----------------------------------------------------------

def unit(name, active="active", sub="running", description=""):
    return systemd.Unit(name, "loaded", active, sub, description)


def snapshot(units, state="running", timers=None, properties=None):
    return systemd.Snapshot(state, units, timers, properties or {})


def limits(**given):
    selection = given.pop("selection", check.Selection())
    return check.Limits(selection, **given)


def perfdata(verdict):
    return sorted(str(p) for p in verdict.perfdata)


def test_judge_all_well():
    verdict = check.judge(snapshot([unit("a.service"), unit("b.socket", "inactive", "dead")]),
                          limits(), NOW)
    assert verdict.state == Ok
    assert verdict.findings == [(Ok, "system running")]
    assert verdict.summary == "2 units (1 active), none failed, system running"
    assert perfdata(verdict) == ["enabled_not_enabled=0;;;0", "required_not_active=0;;;0",
                                 "timers_late=0;;;0",
                                 "timers_total=0;;;0", "units_active=1;;;0",
                                 "units_failed=0;;;0", "units_total=2;;;0"]
    assert verdict.long == []


def test_judge_failed_units_first_then_the_rest_worst_first():
    props = {"x.service": systemd.Properties("x.service", result="exit-code", exit_status=3,
                                             exit_time=0.0 + 86400)}
    units = [unit("x.service", "failed", "failed", "the x daemon")] + [
        unit("f%d.service" % i, "failed", "failed") for i in range(9)]
    verdict = check.judge(snapshot(units, "degraded", properties=props),
                          limits(required=["gone.service"], system=Warn), NOW)
    assert verdict.state == Unknown  # UNKNOWN outranks CRITICAL in the exit code
    assert verdict.summary == (
        "failed: x.service, f0.service, f1.service, f2.service, f3.service, f4.service, "
        "f5.service, f6.service +2 more; gone.service: systemctl said nothing about it; "
        "system degraded")
    assert verdict.findings[0] == (Critical, "x.service failed")
    assert (Unknown, "gone.service: systemctl said nothing about it") in verdict.findings
    assert verdict.long[0] == ("CRITICAL: x.service failed (result exit-code, exit status 3, "
                               "at 1970-01-02 00:00:00 UTC): the x daemon")
    assert verdict.long[-2:] == ["UNKNOWN: gone.service: systemctl said nothing about it",
                                 "WARNING: system degraded"]
    assert "units_failed=10;;;0" in perfdata(verdict)
    assert "required_not_active=1;;;0" in perfdata(verdict)


def test_judge_failed_severity_and_a_system_state_that_cannot_be_judged():
    verdict = check.judge(snapshot([unit("x.service", "failed", "failed")], "offline"),
                          limits(failed=Warn), NOW)
    assert verdict.findings == [(Warn, "x.service failed"), (Unknown, "system state offline")]
    assert verdict.state == Unknown
    assert verdict.summary == "failed: x.service; system state offline"


def test_judge_degraded_only_by_units_left_out_is_ok():
    units = [unit("a.service"), unit("x.service", "failed", "failed")]
    verdict = check.judge(snapshot(units, "degraded"),
                          limits(selection=check.Selection(excluded=["x.service"])), NOW)
    assert verdict.state == Ok
    assert verdict.summary == ("1 unit (1 active), none failed, system degraded only by 1 "
                               "unit left out by the selection")
    assert verdict.long == []


def test_judge_a_selection_that_leaves_nothing_is_unknown_without_perfdata():
    import re

    verdict = check.judge(snapshot([unit("a.service")]),
                          limits(selection=check.Selection(include=[re.compile("nginx")])), NOW)
    assert verdict.state == Unknown
    assert verdict.summary == "no unit matches -i nginx (of 1 unit listed)"
    assert verdict.perfdata == [] and verdict.long == []


def test_judge_timers_late_on_time_and_missing():
    day = 86400
    timers = [systemd.Timer("old.timer", "old.service", last=NOW - 3 * day),
              systemd.Timer("new.timer", "new.service", last=NOW - 3600),
              systemd.Timer("never.timer", "never.service")]
    props = {"never.timer": systemd.Properties("never.timer", active_enter=NOW - 25)}
    units = [unit(t.name, sub="waiting") for t in timers]
    ages = check.TimerAges([(None, 2 * day), ("never.timer", 20), ("backup.timer", day)])
    for verbose in (0, 1):
        verdict = check.judge(snapshot(units, timers=timers, properties=props),
                              limits(ages=ages, verbose=verbose), NOW)
        assert verdict.state == Warn
        assert verdict.findings == [
            (Warn, "old.timer last triggered 3d ago (max 2d)"),
            (Ok, "new.timer last triggered 1h ago (max 2d)"),
            (Warn, "never.timer has never triggered (active for 25s, max 20s)"),
            (Warn, "backup.timer not found"), (Ok, "system running")]
        assert verdict.summary == ("old.timer last triggered 3d ago (max 2d); never.timer has "
                                   "never triggered (active for 25s, max 20s); backup.timer "
                                   "not found")
        assert ("OK: new.timer last triggered 1h ago (max 2d)" in verdict.long) == bool(verbose)
        assert "timers_late=3;;;0" in perfdata(verdict)
        assert "timers_total=3;;;0" in perfdata(verdict)
    on_time = check.judge(snapshot(units[1:2], timers=timers[1:2]),
                          limits(ages=check.TimerAges([(None, 2 * day)]), late=Critical), NOW)
    assert on_time.state == Ok
    assert on_time.summary == "1 unit (1 active), none failed, 1 timer on time, system running"


def test_judge_required_units():
    props = {"up.service": systemd.Properties("up.service", "loaded", "active", "running"),
             "masked.service": systemd.Properties("masked.service", "masked")}
    verdict = check.judge(snapshot([unit("up.service")], properties=props),
                          limits(required=["up.service", "masked.service"]), NOW)
    assert verdict.findings == [(Ok, "up.service is active (running)"),
                                (Critical, "masked.service is masked"), (Ok, "system running")]
    assert verdict.summary == "masked.service is masked"
    assert verdict.long == ["CRITICAL: masked.service is masked",
                            "OK: up.service is active (running)"]
    assert "required_not_active=1;;;0" in perfdata(verdict)


# -- --enabled, --user, this boot's last failure ------------------------------------------

def show_block(name, load="loaded", active="active", sub="running", file_state="enabled"):
    return ("Id=%s\nDescription=%s\nLoadState=%s\nActiveState=%s\nSubState=%s\n"
            "Result=success\nUnitFileState=%s\n" % (name, name, load, active, sub, file_state))


ENABLED_CASES = {
    "osop-running.service": show_block("osop-running.service"),
    "osop-static.service": show_block("osop-static.service", file_state="static"),
    "osop-disabled.service": show_block("osop-disabled.service", file_state="disabled"),
    "osop-masked.service": show_block("osop-masked.service", "masked", "inactive", "dead",
                                      "masked"),
    "osop-runtime.service": show_block("osop-runtime.service", file_state="enabled-runtime"),
}


def test_enabled_units_disabled_masked_runtime_or_missing_are_critical():
    """A service that runs now but will not come back after the next reboot."""
    argv = ["-e", "fail"] + [a for name in ("osop-running", "osop-static", "osop-disabled",
                                            "osop-masked", "osop-runtime", "osop-gone")
                             for a in ("--enabled", name)]
    outcome = run(argv, Recorded(show=ENABLED_CASES))
    assert outcome.exitcode == 2, outcome.output
    assert outcome.status_line.startswith(
        "SYSTEMD_UNITS CRITICAL - osop-disabled.service is disabled, so it does not start at "
        "boot; osop-masked.service is masked, so it does not start at boot; "
        "osop-runtime.service is enabled only until the next reboot (enabled-runtime); "
        "osop-gone.service not found, so it does not start at boot |"), \
        outcome.output
    assert "OK: osop-static.service is static" in outcome.output
    assert perf(outcome, "enabled_not_enabled") == 4
    fine = run(["-e", "fail", "--enabled", "osop-running"], Recorded(show=ENABLED_CASES))
    assert "1 enabled" in fine.status_line and perf(fine, "enabled_not_enabled") == 0
    asked = [c for c in fine.calls if c[0] == "show"][0]
    assert "UnitFileState" in asked[2] and asked[-1] == "osop-running.service"


def test_an_enabled_unit_is_judged_whatever_the_selection():
    outcome = run(["-e", ".*", "--enabled", "osop-disabled"], Recorded(show=ENABLED_CASES))
    assert outcome.exitcode == 2
    assert outcome.status_line.startswith("SYSTEMD_UNITS CRITICAL - osop-disabled.service is "
                                          "disabled, so it does not start at boot")


def test_user_units_are_asked_of_the_user_manager():
    outcome = run(["--user", "vet"])
    assert outcome.exitcode == 2
    assert all(call[:3] == ["--user", "-M", "vet@"] for call in outcome.calls), outcome.calls
    for bad in ("vet@host", "-x", "a b", "Vet"):
        refused = run(["--user", bad])
        assert refused.exitcode == 3 and "--user" in refused.output, refused.output


JOURNAL = "\n".join([
    '{"__REALTIME_TIMESTAMP":"1795953829000000","_PID":"1","UNIT":"osop-flap.service",'
    '"UNIT_RESULT":"exit-code","MESSAGE_ID":"d9b373ed55a64feb8242e02dbe79a49c",'
    '"MESSAGE":"osop-flap.service: Failed with result \'exit-code\'."}',
    '{"__REALTIME_TIMESTAMP":"1795950000000000","_PID":"1","UNIT":"osop-fail.service",'
    '"UNIT_RESULT":"exit-code","MESSAGE":"osop-fail.service: Failed with result \'exit-code\'."}',
    ""])


def test_when_nothing_failed_now_the_last_failure_of_this_boot_is_named():
    recorded = Recorded(units="list-units_running_v252",
                        state="is-system-running_running_v252.txt", journal=JOURNAL)
    outcome = run([], recorded)
    assert outcome.exitcode == 0, outcome.output
    assert outcome.output.splitlines()[1] == (
        "last unit failure of this boot: osop-flap.service at 2026-11-29 12:03:49 UTC "
        "(result exit-code)")
    journal = [c for c in outcome.calls if c[0].endswith("journalctl")][0]
    assert journal[1:] == ["--no-pager", "-b", "-o", "json", "-r", "-n", "20",
                           "MESSAGE_ID=d9b373ed55a64feb8242e02dbe79a49c", "_PID=1"]
    # a user manager's failures: matched on its own unit
    user = run(["--user", "vet"], Recorded(units="list-units_running_v252",
                                           state="is-system-running_running_v252.txt",
                                           journal=JOURNAL))
    assert [c for c in user.calls if c[0].endswith("journalctl")][0][-1] == \
        "_SYSTEMD_UNIT=user@1000.service"
    assert "last unit failure of this boot: osop-flap.service" in user.output
    # an excluded unit's failure is left out like the unit; a failure now: not asked
    excluded = run(["-e", "flap"], Recorded(units="list-units_running_v252",
                                            state="is-system-running_running_v252.txt",
                                            journal=JOURNAL))
    assert "last unit failure of this boot: osop-fail.service" in excluded.output
    failing = run([], Recorded(journal=JOURNAL))
    assert not any(c[0].endswith("journalctl") for c in failing.calls)
    assert "last unit failure" not in failing.output


def test_a_journal_that_cannot_be_read_leaves_the_verdict_alone():
    recorded = Recorded(units="list-units_running_v252",
                        state="is-system-running_running_v252.txt", journal="not json\n")
    outcome = run(["-v"], recorded)
    assert outcome.exitcode == 0, outcome.output
    assert "the journal's unit failures of this boot are not known" in outcome.output
    assert systemd.journal_command("nsenter -t 7 -a /bin/systemctl") == [
        "nsenter", "-t", "7", "-a", "/bin/journalctl"]
    assert systemd.journal_command("/usr/local/bin/my-wrapper") is None
