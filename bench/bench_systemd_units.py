"""check_systemd_units beside check_systemd (PyPI) on the same real systemd 252 container.

Both reach the container through the same wrapper script named `systemctl` (it execs
`nsenter -t PID -a systemctl "$@"`): check_systemd finds it first on PATH, ours gets it as
--systemctl. check_systemd comes from PyPI into a temporary venv; its D-Bus source needs
PyGObject, which the venv does not have, so it runs with --cli, as ours always does.
Needs root (systemd-nspawn); otherwise the section says why it did not run.
"""
import os
import subprocess
import sys
import tempfile

from bench.common import FLOOR, check, hyperfine, table

OURS = "check_systemd_units"
THEIRS = "check_systemd --cli (PyPI)"


def install_check_systemd(venv):
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=300)
    subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q",
                    "--disable-pip-version-check", "check-systemd"], check=True, timeout=600,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    version = subprocess.run([os.path.join(venv, "bin", "pip"), "show", "check-systemd"],
                             capture_output=True, text=True).stdout
    return next((line.split(":", 1)[1].strip() for line in version.splitlines()
                 if line.startswith("Version:")), "?")


def run(argv, env=None):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, **(env or {})))
    return proc.returncode, proc.stdout.splitlines()[0] if proc.stdout else proc.stderr.strip()


def main():
    print("## check_systemd_units vs check_systemd\n")
    if os.geteuid() != 0:
        print("Not run: booting the systemd container needs root.")
        return
    from lab.peers import systemd_container

    # check_systemd comes with byte code from pip; give ours the same (PYTHONDONTWRITEBYTECODE
    # may be set here, and compiling on every start would be measured otherwise)
    import osop_checks

    subprocess.run([sys.executable, "-m", "compileall", "-q",
                    os.path.dirname(osop_checks.__file__)], check=True,
                   stdout=subprocess.DEVNULL)

    with tempfile.TemporaryDirectory(prefix="osop-bench-systemd-") as tmp:
        version = install_check_systemd(os.path.join(tmp, "venv"))
        theirs = os.path.join(tmp, "venv", "bin", "check_systemd")
        with systemd_container.booted() as container:
            wrapper_dir = os.path.join(tmp, "wrap")
            os.mkdir(wrapper_dir)
            wrapper = os.path.join(wrapper_dir, "systemctl")
            with open(wrapper, "w") as handle:
                handle.write('#!/bin/sh\nexec nsenter -t %d -a systemctl "$@"\n' % container.pid)
            os.chmod(wrapper, 0o755)
            path = "%s:%s" % (wrapper_dir, os.environ.get("PATH", ""))
            cases = [
                ("failed units (defaults)",
                 [check(OURS), "--systemctl", wrapper],
                 [theirs, "--cli", "-n"]),
                ("failed units, one excluded, timers judged",
                 [check(OURS), "--systemctl", wrapper, "-e", "osop-fail",
                  "--timer-max-age", "2d"],
                 [theirs, "--cli", "-n", "-e", "osop-fail", "-t", "-W", "172800",
                  "-C", "345600"]),
            ]
            print("Same container (systemd 252, Debian bookworm, 157 units, one failed), same "
                  "`systemctl` wrapper into it; check_systemd %s from PyPI in a temporary venv."
                  "\n" % version)
            print("| case | check_systemd_units | check_systemd |")
            print("|---|---|---|")
            for title, ours, them in cases:
                a, b = run(ours), run(them, {"PATH": path})
                print("| %s | exit %d: `%s` | exit %d: `%s` |" % (
                    title, a[0], a[1].split(" | ")[0], b[0], b[1].split(" | ")[0]))
            print()
            commands = {
                "python -c pass (floor)": FLOOR,
                OURS: "%s --systemctl %s" % (check(OURS), wrapper),
                THEIRS: "env PATH=%s %s --cli -n" % (path, theirs),
                "the wrapper: systemctl list-units --all --output=json":
                    "%s list-units --all --output=json" % wrapper,
            }
            results = hyperfine(commands, runs=30)
        print(table(results, floor="python -c pass (floor)", reference=OURS))
        ratio = results[THEIRS]["median"] / results[OURS]["median"]
        print("\ncheck_systemd takes %.2fx the wall time of check_systemd_units on the same "
              "container (median of 30 runs each, one hyperfine run). With one failed unit, "
              "check_systemd_units runs 3 systemctl commands (list-units, is-system-running, "
              "show for the failed unit; list-timers only with --timer-max-age); "
              "check_systemd -n runs list-units.\n" % ratio)
        print("Verdicts differ on the late timer by design: check_systemd's `-t` judges only "
              "timers without a next elapse (\"dead\" timers), so osop-old.timer, whose last "
              "trigger was three days ago but whose next elapse is scheduled, is OK there; "
              "check_systemd_units --timer-max-age judges the last trigger.")


if __name__ == "__main__":
    main()
