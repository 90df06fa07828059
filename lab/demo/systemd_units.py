"""check_systemd_units in `make demo`: this machine, and (as root) a real systemd 252 booted
in a container with a unit for each case (lab/peers/systemd_container.py)."""
import os


def scenarios(stack):
    result = [
        ("this machine (its PID 1 is not systemd here: one clear UNKNOWN line)"
         if not os.path.exists("/run/systemd/system") else "this machine",
         ["check_systemd_units"]),
    ]
    if os.geteuid() != 0:
        return result + [("(the systemd container needs root: skipped)",
                          ["check_systemd_units", "--systemctl", "/nonexistent/systemctl"])]
    from lab.peers import systemd_container

    try:
        container = stack.enter_context(systemd_container.booted())
    except Exception as exc:  # no debootstrap mirror, no nspawn: show this machine only
        print("== systemd_units: container not booted here: %s\n" % exc)
        return result
    prefix = ["check_systemd_units", "--systemctl", container.systemctl_option]
    return result + [
        ("a real systemd 252 in a container: one service failed, the system is degraded",
         prefix),
        ("the same, read from the plain table instead of JSON, verbose",
         prefix + ["--format", "table", "-v"]),
        ("the failed service excluded: degraded only by an excluded unit is OK",
         prefix + ["--exclude-unit", "osop-fail"]),
        ("units that must be active: a oneshot that succeeded and a condition-failed unit "
         "are fine, a stopped one is not",
         prefix + ["-e", "osop-fail", "-u", "osop-running", "-u", "osop-oneshot",
                   "-u", "osop-condition", "-u", "osop-stopped"]),
        ("timers: one last ran three days ago, one never ran, one named is not there",
         prefix + ["-e", "osop-fail", "--timer-max-age", "2d", "--timer-max-age",
                   "osop-never=1s", "--timer-max-age", "backup=26h"]),
        ("only timers, late ones critical",
         prefix + ["--type", "timer", "--timer-max-age", "2d", "--late-severity",
                   "critical"]),
    ] + host_scenarios(stack)


def host_scenarios(stack):
    """The host-health cases: units list-units does not show, --enabled, --user, this
    boot's last failure (a container of their own, with a lingering user)."""
    from lab.peers import systemd_container

    try:
        host = stack.enter_context(systemd_container.host_container())
    except Exception as exc:
        print("== systemd_units: host-health container not booted here: %s\n" % exc)
        return []
    prefix = ["check_systemd_units", "--systemctl", host.systemctl_option]
    return [
        ("one service per check: a stopped unit that is not loaded (list-units does not "
         "show it) is CRITICAL, not 'no unit matches'",
         prefix + ["-u", "osop-stopped", "-i", r"^osop-stopped\.service$"]),
        ("a masked unit named with -u, everything else excluded",
         prefix + ["-u", "osop-masked", "-e", ".*"]),
        ("a service running now that will not come back after a reboot (--enabled)",
         prefix + ["-e", "osop-flap", "-u", "osop-disabled", "--enabled", "osop-disabled",
                   "--enabled", "osop-running"], lambda: host.run("start", "osop-disabled"), ()),
        ("the lingering user vet's own units (--user): one failed",
         prefix + ["--user", "vet", "-u", "osop-user-sync"]),
        ("nothing failed now (reset by hand), but the journal remembers this boot's failure",
         prefix, lambda: host.run("reset-failed", "osop-flap.service"), ()),
    ]
