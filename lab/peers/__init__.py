"""Real peers for the tests, `make demo` and `bench/`, and the ways to run a check against them.

Each module here starts one kind of real peer on loopback (a TLS server, dnsmasq, sshd,
snmpd, a systemd container, icinga2 ...) as a context manager, and may define pytest fixtures
around it; tests/conftest.py lists the modules whose fixtures the tests use.
"""
import os
import shutil
import subprocess
import sys
import time

from osop_checks import runtime

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Where the console scripts are: the venv's bin, or OSOP_TEST_BIN (lab/peers/other_pythons.py
# runs the suite on other Pythons with scripts it writes there).
BIN = os.environ.get("OSOP_TEST_BIN") or os.path.dirname(sys.executable)
IN_CI = os.environ.get("CI") == "true"
# Recorded outputs of real systems (apt, dnf, systemctl, SNMP agents, UPnP routers), which the
# tests read and some peers replay.
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def fixture(*path):
    """The text of tests/fixtures/<path> (a recorded real output): ``fixture("apt/x.txt")``
    or ``fixture("apt", "x.txt")``."""
    with open(os.path.join(FIXTURES, *path), encoding="utf-8") as handle:
        return handle.read()


class Started:
    """A peer as a context manager: ``start()`` on entry (a failed start ``stop()``s what it
    had begun), ``stop()`` on exit."""

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()


def end_process(process, grace=5):
    """Terminate ``process`` (a Popen) if it still runs, kill it after ``grace`` seconds, and
    wait for it."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def need(*commands):
    """Skip a test whose real peer is not installed here; in CI a missing peer fails instead."""
    import pytest

    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/lib/nagios/plugins"
    missing = [c for c in commands if not shutil.which(c, path=path)]
    if missing:
        message = "not installed: %s (.ci/install-system-packages installs it)" % ", ".join(missing)
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def need_root():
    import pytest

    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("this test needs root, and CI runs as root")
        pytest.skip("needs root")


def run_inprocess(module, argv):
    """Run a check module in this process: runtime.execute with argparse's exits caught.

    Returns a runtime.Outcome; fast, for the many logic-level cases.
    """
    import contextlib
    import io

    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            return runtime.execute(module.NAME, module.build_parser, module.build_check,
                                   list(argv))
    except SystemExit as exc:  # runtime.execute itself clears the run's budget when done
        return runtime.Outcome(exc.code, out.getvalue())


# libfaketime preloaded, not its `faketime` wrapper. Both name a semaphore and a shared-memory
# segment in /dev/shm by their pid and leave them behind when killed (a --timeout, a peer's
# stop); once pids wrap around (pid_max, 32768 on many hosts, comes round within one run of
# the suite), a wrapper given such a pid fails at once ("sem_open: File exists") and the
# command never runs, where the library goes on without them. ld.so expands $LIB to the
# multiarch directory, here and in a Debian root alike; the faketime package installs it.
FAKETIME_PRELOAD = "LD_PRELOAD=/usr/$LIB/faketime/libfaketime.so.1"


def faked_clock(when):
    """The argv prefix that runs a command under libfaketime: ``when`` an offset as
    libfaketime writes it ('+2h', '-30m'), or a moment (seconds since the epoch) at which
    the clock starts and from which it runs on, as ``faketime 'DATE TIME'`` does (an offset
    from now, so the command's children keep one clock)."""
    if not isinstance(when, str):
        when = "%+d" % round(when - time.time())
    return ["env", FAKETIME_PRELOAD, "FAKETIME=" + when]


def run_plugin(name, argv=(), timeout=60, env=None, user=None, input=None, bin_dir=BIN,
               wrap=()):
    """Run the installed console script ``name`` (e.g. 'check_disk_partitions') as a process,
    as Icinga does. Returns a runtime.Outcome with .stderr. ``user`` runs it through runuser,
    from a ``bin_dir`` that user can reach: foreign_install.run (lab/peers/foreign_user.py);
    ``wrap`` is a command that runs it (e.g. ``ip netns exec NS``, ``faked_clock("+30h")``)."""
    if user and bin_dir == BIN:
        raise ValueError("the venv may be root's alone: run %s as %s with foreign_install.run"
                         % (name, user))
    cmd = [os.path.join(bin_dir, name)] + [str(a) for a in argv]
    if user:
        cmd = ["runuser", "-u", user, "--"] + cmd
    cmd = [str(a) for a in wrap] + cmd
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env,
                          input=input)
    outcome = runtime.Outcome(proc.returncode, proc.stdout)
    outcome.stderr = proc.stderr
    return outcome
