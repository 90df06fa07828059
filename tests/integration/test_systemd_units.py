"""check_systemd_units against a real systemd 252 booted in a container (systemd-nspawn).

The container (lab/peers/systemd_container.py) has a unit for each case; the installed
check_systemd_units reaches it through --systemctl 'nsenter -t PID -a systemctl', as an admin
would reach a container. Each test asserts the state the case must give.
"""
import json
import time

import pytest

from tests.helpers import perf_value as perf
from lab.peers import faked_clock, need, run_plugin


def check(container, *argv, wrap=()):
    outcome = run_plugin("check_systemd_units",
                         ["--systemctl", container.systemctl_option] + list(argv), wrap=wrap)
    assert "Traceback" not in outcome.output + outcome.stderr
    return outcome


def test_the_container_booted_degraded(systemd_container):
    assert systemd_container.state == "degraded"


@pytest.mark.parametrize("fmt", ["auto", "json", "table"])
def test_failed_service_is_critical(systemd_container, fmt):
    outcome = check(systemd_container, "--format", fmt)
    assert outcome.exitcode == 2, outcome.output
    assert outcome.status_line.startswith(
        "SYSTEMD_UNITS CRITICAL - failed: osop-fail.service; system degraded |")
    assert "CRITICAL: osop-fail.service failed (result exit-code, exit status 1" \
        in outcome.output


def test_counts_agree_with_systemctl_itself(systemd_container):
    outcome = check(systemd_container)
    units = json.loads(systemd_container.run("list-units", "--all", "--output=json",
                                             check=True).stdout)
    assert perf(outcome, "units_total") == len(units)
    assert perf(outcome, "units_active") == sum(u["active"] == "active" for u in units)
    failed = json.loads(systemd_container.run("list-units", "--failed", "--output=json",
                                              check=True).stdout)
    assert perf(outcome, "units_failed") == len(failed) == 1


def test_json_and_table_give_the_same_counts(systemd_container):
    by_json = check(systemd_container, "--format", "json")
    by_table = check(systemd_container, "--format", "table")
    for label in ("units_total", "units_active", "units_failed", "timers_total"):
        assert perf(by_json, label) == perf(by_table, label)


def test_excluding_the_failed_service_explains_the_degraded_state(systemd_container):
    outcome = check(systemd_container, "--exclude-unit", "osop-fail")
    assert outcome.exitcode == 0, outcome.output
    assert "system degraded only by 1 unit left out by the selection" in outcome.status_line


def test_oneshot_and_condition_failed_units_are_not_failures(systemd_container):
    outcome = check(systemd_container, "--include", "^osop-(oneshot|condition|remain)\\.")
    assert outcome.exitcode == 0, outcome.output
    assert perf(outcome, "units_total") == 3
    assert perf(outcome, "units_failed") == 0


def test_required_units_that_are_fine(systemd_container):
    outcome = check(systemd_container, "-e", "osop-fail", "-u", "osop-running",
                    "-u", "osop-oneshot", "-u", "osop-condition", "-u", "osop-remain",
                    "-u", "osop-old.timer")
    assert outcome.exitcode == 0, outcome.output
    assert "OK: osop-running.service is active (running)" in outcome.output
    assert "OK: osop-oneshot.service ran and exited successfully at" in outcome.output
    assert "OK: osop-condition.service was skipped: its start condition failed" \
        in outcome.output
    assert "OK: osop-remain.service is active (exited)" in outcome.output


def test_required_unit_stopped_or_missing_is_critical(systemd_container):
    outcome = check(systemd_container, "-e", "osop-fail", "-u", "osop-stopped",
                    "-u", "osop-nonexistent")
    assert outcome.exitcode == 2, outcome.output
    assert outcome.status_line.startswith(
        "SYSTEMD_UNITS CRITICAL - osop-stopped.service is inactive (dead), must be active; "
        "osop-nonexistent.service not found |")
    assert perf(outcome, "required_not_active") == 2


def test_timer_whose_service_ran_long_ago_is_late(systemd_container):
    outcome = check(systemd_container, "-e", "osop-fail", "-i", "^osop-", "--timer-max-age",
                    "2d")
    assert outcome.exitcode == 1, outcome.output
    assert outcome.status_line.startswith(
        "SYSTEMD_UNITS WARNING - osop-old.timer last triggered 3d ago (max 2d) |")
    assert perf(outcome, "timers_late") == 1
    assert perf(outcome, "timers_total") == 3
    fine = check(systemd_container, "-e", "osop-fail", "-i", "^osop-", "--timer-max-age",
                 "4d", "-v")
    assert fine.exitcode == 0, fine.output
    assert "OK: osop-recent.timer last triggered 1h ago (max 4d)" in fine.output


def test_timer_that_never_ran(systemd_container):
    need("faketime")
    # active since boot; the check's clock a minute on (libfaketime) makes that over 1s ago
    late = check(systemd_container, "-e", "osop-fail", "--timer-max-age", "osop-never=1s",
                 wrap=faked_clock("+1m"))
    assert late.exitcode == 1, late.output
    assert "osop-never.timer has never triggered (active for " in late.status_line
    fine = check(systemd_container, "-e", "osop-fail", "--timer-max-age", "osop-never=1d")
    assert fine.exitcode == 0, fine.output


def test_exclusion_applies_to_timers_too_but_not_to_those_named(systemd_container):
    outcome = check(systemd_container, "-e", "osop-fail", "-e", "\\.timer$",
                    "--timer-max-age", "1s", "--late-severity", "critical")
    assert outcome.exitcode == 0, outcome.output
    assert "osop-old" not in outcome.output
    # a timer named with its own age is judged whatever -e says (was: left out, OK)
    named = check(systemd_container, "-e", "osop-fail", "-e", "^osop-(old|never)\\.timer$",
                  "--timer-max-age", "osop-old=1s", "--late-severity", "critical")
    assert named.exitcode == 2, named.output
    assert named.status_line.startswith(
        "SYSTEMD_UNITS CRITICAL - osop-old.timer last triggered 3d ago (max 1s) |")


def test_type_selection(systemd_container):
    outcome = check(systemd_container, "--type", "timer", "--timer-max-age", "osop-old=2d",
                    "--late-severity", "critical")
    assert outcome.exitcode == 2, outcome.output
    assert outcome.status_line.startswith("SYSTEMD_UNITS CRITICAL - osop-old.timer last "
                                          "triggered 3d ago")
    assert perf(outcome, "units_failed") == 0


def test_a_wrong_container_pid_is_one_unknown_line(systemd_container):
    outcome = run_plugin("check_systemd_units",
                         ["--systemctl", "nsenter -t 2147483646 -a systemctl"])
    assert outcome.exitcode == 3
    assert outcome.output.count("\n") == 1
    assert outcome.output.startswith(
        "SYSTEMD_UNITS UNKNOWN - nsenter -t 2147483646 -a systemctl list-units --all "
        "--output=json failed (exit 1): nsenter:")


def test_no_systemd_on_this_machine_is_one_clear_unknown_line():
    import os

    if os.path.exists("/run/systemd/system"):
        pytest.skip("this machine runs systemd")
    outcome = run_plugin("check_systemd_units", [])
    assert outcome.exitcode == 3
    assert outcome.output.count("\n") == 1
    assert outcome.output.startswith("SYSTEMD_UNITS UNKNOWN - ")
    assert "systemd is not running here" in outcome.output \
        or "command not found: systemctl" in outcome.output


def test_a_hanging_systemctl_ends_within_the_timeout():
    start = time.monotonic()
    outcome = run_plugin("check_systemd_units", [
        "--systemctl", "python3 -c 'import time; time.sleep(60)'", "-t", "2"])
    assert time.monotonic() - start < 3 + 2  # --timeout + 1 s, plus interpreter start-up
    assert outcome.exitcode == 3
    assert outcome.output.count("\n") == 1
    assert outcome.output.startswith("SYSTEMD_UNITS UNKNOWN - ")


def test_a_named_timer_that_is_inactive_or_missing_is_late(systemd_container):
    # fstrim.timer does not start in a container (ConditionVirtualization=!container)
    outcome = check(systemd_container, "-e", "osop-fail", "--timer-max-age", "fstrim=1w",
                    "--timer-max-age", "osop-backup=26h")
    assert outcome.exitcode == 1, outcome.output
    assert "fstrim.timer is inactive (dead), so it never triggers" in outcome.status_line
    assert "osop-backup.timer not found" in outcome.status_line
