"""Real peers for tests, `make demo` and `bench/`, and the ways to run a check against them.

Each module here starts one kind of real peer on loopback (a TLS server, dnsmasq, sshd,
snmpd, a systemd container, icinga2 ...) as a context manager, and may define pytest fixtures
around it; tests/conftest.py makes every fixture defined here available to all tests.
"""
import os
import shutil
import subprocess
import sys

from osop_checks import runtime

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
IN_CI = os.environ.get("CI") == "true"


def need(*commands):
    """Skip a test whose real peer is not installed here; in CI a missing peer fails instead."""
    import pytest

    missing = [c for c in commands if not shutil.which(c, path=os.environ.get("PATH", "")
                                                       + ":/usr/sbin:/sbin:/usr/lib/nagios/plugins")]
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


def run_plugin(name, argv=(), timeout=60, env=None, user=None, input=None):
    """Run the installed console script ``name`` (e.g. 'check_disk_partitions') as a process,
    as Icinga does; ``user`` runs it through runuser. Returns a runtime.Outcome with .stderr."""
    cmd = [os.path.join(BIN, name)] + [str(a) for a in argv]
    if user:
        cmd = ["runuser", "-u", user, "--"] + cmd
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env,
                          input=input)
    outcome = runtime.Outcome(proc.returncode, proc.stdout)
    outcome.stderr = proc.stderr
    return outcome
