"""check_systemd_units on the host-health cases, against a real systemd 252 booted in a
container (lab/peers/systemd_container.py: host_container): units named with -u that
list-units does not show, --enabled, a lingering user's units with --user, and this boot's
last unit failure from the journal. The tests run in file order: the last one resets the
failed unit."""
import json

import pytest

from tests.helpers import perf_value as perf
from lab.peers import run_plugin

pytestmark = pytest.mark.peer


def check(container, *argv):
    outcome = run_plugin("check_systemd_units",
                         ["--systemctl", container.systemctl_option] + list(argv))
    assert "Traceback" not in outcome.output + outcome.stderr
    return outcome


def listed(container):
    return {u["unit"] for u in json.loads(container.run(
        "list-units", "--all", "--output=json", check=True).stdout)}


@pytest.mark.parametrize("unit, words", [
    ("osop-stopped", "osop-stopped.service is inactive (dead), must be active"),
    ("osop-masked", "osop-masked.service is masked"),
    ("osop-gone", "osop-gone.service not found"),
])
def test_a_named_unit_list_units_does_not_show_is_critical(systemd_host_container, unit,
                                                           words):
    """Was UNKNOWN 'no unit matches -i ...': the one-service-per-check setup."""
    assert unit + ".service" not in listed(systemd_host_container)
    for selection in (["-i", r"^%s\.service$" % unit], ["-e", ".*"]):
        outcome = check(systemd_host_container, "-u", unit, *selection)
        assert outcome.exitcode == 2, outcome.output
        assert outcome.status_line.startswith("SYSTEMD_UNITS CRITICAL - %s |" % words), \
            outcome.output


def test_a_disabled_unit_that_runs_now_is_critical_with_enabled(systemd_host_container):
    systemd_host_container.run("start", "osop-disabled.service", check=True)
    outcome = check(systemd_host_container, "-e", "osop-flap", "-u", "osop-disabled",
                    "--enabled", "osop-disabled", "--enabled", "osop-running",
                    "--enabled", "osop-masked")
    assert outcome.exitcode == 2, outcome.output
    assert outcome.status_line.startswith(
        "SYSTEMD_UNITS CRITICAL - osop-disabled.service is disabled, so it does not start at "
        "boot; osop-masked.service is masked, so it does not start at boot |"), outcome.output
    assert "OK: osop-disabled.service is active (running)" in outcome.output
    assert "OK: osop-running.service is enabled" in outcome.output
    assert perf(outcome, "enabled_not_enabled") == 2


def test_a_lingering_users_failing_unit_is_seen_with_user(systemd_host_container):
    outcome = check(systemd_host_container, "--user", "vet", "-u", "osop-user-sync")
    assert outcome.exitcode == 2, outcome.output
    assert outcome.status_line.startswith(
        "SYSTEMD_UNITS CRITICAL - failed: osop-user-fail.service; system degraded |"), \
        outcome.output
    assert "OK: osop-user-sync.service is active (running)" in outcome.output
    assert "CRITICAL: osop-user-fail.service failed (result exit-code, exit status 1" in \
        outcome.output
    # the system's own units are not the user's
    system = check(systemd_host_container, "-i", "^osop-user")
    assert system.exitcode == 3 and "no unit matches -i '^osop-user'" in system.status_line


def test_this_boots_last_failure_is_named_when_nothing_failed_now(systemd_host_container):
    """Last: resets the unit that failed at boot, as an admin restarting it by hand would."""
    systemd_host_container.run("reset-failed", "osop-flap.service", check=True)
    outcome = check(systemd_host_container)
    assert outcome.exitcode == 0, outcome.output
    assert outcome.status_line.startswith("SYSTEMD_UNITS OK - ")
    assert "none failed" in outcome.status_line
    lines = outcome.output.splitlines()
    assert lines[1].startswith("last unit failure of this boot: osop-flap.service at ") and \
        lines[1].endswith(" UTC (result exit-code)"), lines
    # the same for the lingering user's manager, its failure reset by hand
    systemd_host_container.run("--user", "-M", "vet@", "reset-failed",
                               "osop-user-fail.service", check=True)
    user = check(systemd_host_container, "--user", "vet")
    assert user.exitcode == 0, user.output
    assert user.output.splitlines()[1].startswith(
        "last unit failure of this boot: osop-user-fail.service at "), user.output
