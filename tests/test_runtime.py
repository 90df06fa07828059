"""The guarded entry point: every way a run can end gives one line and a Nagios exit code."""
import sys
import types

import nagiosplugin
import pytest

from osop_checks import cli, plugin, runtime
from lab.peers import run_inprocess


def make_check(probe, save=None):
    """A tiny check module: ``probe`` (a callable returning a number) gathers, the judgement
    is the value against -w/-c; ``save`` is its state file's writer, if any."""
    def build_parser():
        parser = cli.Parser("DEMO", "check_demo", "A demo check.", examples=["check_demo -w 5"])
        parser.add_thresholds(cli.units.COUNT, what="value")
        return parser

    def build_check(args):
        value = probe()
        words = "value is %d" % value
        return plugin.Verdict([(plugin.state_of(value, args.warning, args.critical), words)],
                              words, [nagiosplugin.Performance(
                                  "value", value, warn=args.warning, crit=args.critical)],
                              save=save)

    return types.SimpleNamespace(NAME="DEMO", build_parser=build_parser,
                                 build_check=build_check)


def test_states_and_perfdata():
    check = make_check(lambda: 7)
    ok = run_inprocess(check, ["-w", "10", "-c", "20"])
    assert ok.exitcode == 0 and ok.status_line == "DEMO OK - value is 7 | value=7;10;20"
    assert run_inprocess(check, ["-w", "5", "-c", "20"]).exitcode == 1
    assert run_inprocess(check, ["-w", "5", "-c", "@5:10"]).exitcode == 2


def test_a_stateful_check_saves_once_its_answer_is_rendered_and_a_failed_save_is_unknown():
    saved = []
    check = make_check(lambda: 7, save=lambda: saved.append("saved"))
    assert run_inprocess(check, ["-w", "10"]).status_line == "DEMO OK - value is 7 | value=7;10"
    assert saved == ["saved"]

    def cannot():
        raise OSError(28, "No space left on device", "/var/lib/osop/state.json")
    failed = run_inprocess(make_check(lambda: 7, save=cannot), [])
    assert failed.exitcode == 3 and failed.output == (
        "DEMO UNKNOWN - No space left on device: /var/lib/osop/state.json\n")


@pytest.mark.parametrize("argv,needle", [
    (["-w", "foo"], "argument -w/--warning"),
    (["-w", "10:5"], "must not be greater"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--warn", "5"], "unrecognized arguments"),  # no abbreviations: a typo is an error
    (["-t", "0"], "argument -t/--timeout"),
    (["-t", "soon"], "argument -t/--timeout"),
])
def test_usage_errors_exit_unknown_with_one_line(argv, needle):
    outcome = run_inprocess(make_check(lambda: 1), argv)
    assert outcome.exitcode == 3
    lines = outcome.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("DEMO UNKNOWN - ") and needle in lines[0]


def test_help_and_version_exit_unknown():
    helped = run_inprocess(make_check(lambda: 1), ["--help"])
    assert helped.exitcode == 3 and "examples:" in helped.output and "check_demo -w 5" in \
        helped.output
    version = run_inprocess(make_check(lambda: 1), ["--version"])
    assert version.exitcode == 3 and "osop-checks" in version.output


def test_a_bug_is_one_unknown_line_and_a_traceback_only_at_vvv():
    def boom():
        raise ZeroDivisionError("division by zero")
    quiet = run_inprocess(make_check(boom), [])
    assert quiet.exitcode == 3
    assert quiet.output == "DEMO UNKNOWN - internal error: ZeroDivisionError: division by zero\n"
    loud = run_inprocess(make_check(boom), ["-vvv"])
    assert "Traceback" in loud.output and loud.status_line == quiet.status_line


def test_check_error_is_unknown_with_its_message():
    def fail():
        raise nagiosplugin.CheckError("cannot reach the peer")
    outcome = run_inprocess(make_check(fail), [])
    assert outcome.exitcode == 3 and outcome.status_line == "DEMO UNKNOWN - cannot reach the peer"


def test_missing_module_names_the_package():
    def needs_module():
        import psutil_not_installed_here  # noqa: F401 - the failing import is the test
    outcome = run_inprocess(make_check(needs_module), [])
    assert outcome.exitcode == 3
    assert "Python module psutil_not_installed_here is not installed" in outcome.status_line


def test_a_missing_module_is_a_sentence_an_admin_can_follow(monkeypatch):
    def needs_pysnmp():
        import pysnmp  # noqa: F401 - the failing import is the test
    monkeypatch.setitem(sys.modules, "pysnmp", None)
    outcome = run_inprocess(make_check(needs_pysnmp), [])
    assert outcome.exitcode == 3
    assert outcome.status_line == (
        "DEMO UNKNOWN - Python module pysnmp is not installed (needed for SNMP mode only, the "
        "package's extra snmp): install it with pip install 'pysnmp>=7.1,<8' (Debian's "
        "python3-pysnmp4 is too old)")

    def needs_dns():
        import dns.resolver  # noqa: F401 - the failing import is the test
    monkeypatch.setitem(sys.modules, "dns", None)
    outcome = run_inprocess(make_check(needs_dns), [])
    assert outcome.status_line == (
        "DEMO UNKNOWN - Python module dns.resolver is not installed: install the Debian package "
        "python3-dnspython (or pip install dnspython)")


def test_the_pip_requirements_in_the_hints_are_setup_cfg_s():
    import configparser
    import os
    import re

    config = configparser.ConfigParser()
    config.read(os.path.join(os.path.dirname(os.path.dirname(__file__)), "setup.cfg"))
    required = config["options"]["install_requires"].split() + \
        config["options.extras_require"]["snmp"].split()
    names = [re.split("[<>=]", spec)[0] for spec in required]
    for module, hint in runtime.PACKAGES.items():
        for spec in re.findall(r"pip install '?([^' )]+)", hint):
            assert spec in required or (spec in names and "," not in required[
                names.index(spec)]), (module, spec, required)


def test_timeout_is_unknown_within_the_budget():
    import time

    def slow():
        time.sleep(5)
    start = time.monotonic()
    outcome = run_inprocess(make_check(slow), ["-t", "1"])
    assert time.monotonic() - start < 2
    assert outcome.exitcode == 3 and "--timeout of 1 s" in outcome.status_line


def test_the_alarm_in_a_callback_python_cannot_raise_from_is_still_the_timeout(capfd):
    """The --timeout's alarm striking inside a weakref callback (importlib's module locks
    have one: a module imported just as the time ends) is not written to stderr as
    'Exception ignored in ...' above the check's line: it strikes again where it can be
    raised, and the run is the timeout's one UNKNOWN line."""
    import gc
    import weakref

    class Lock:
        pass

    def callback(_ref):
        while True:  # busy until the alarm strikes in here
            pass

    def imported_at_the_end():
        import time

        lock = Lock()
        kept = weakref.ref(lock, callback)
        del lock  # the callback runs now, in this (the main) thread
        gc.collect()
        end = time.monotonic() + 2
        while time.monotonic() < end:  # the alarm, armed again, ends the run here
            kept()
        return 1  # (an alarm lost in the callback: the run would end OK)

    outcome = run_inprocess(make_check(imported_at_the_end), ["-t", "1"])
    assert outcome.exitcode == 3 and "--timeout of 1 s" in outcome.status_line
    assert capfd.readouterr().err == ""


def test_peer_text_cannot_break_the_status_line():
    module = make_check(lambda: 1)
    build = module.build_check

    def evil(args):
        verdict = build(args)
        verdict.summary = "line one\nline two | fake=1"  # words a peer sent
        verdict.long = ["long | x=1"]
        return verdict

    module.build_check = evil
    outcome = run_inprocess(module, [])
    first = outcome.status_line
    assert first.startswith("DEMO OK - line one line two / fake=1 | value=1")
    assert first.count("|") == 1
    assert outcome.output.count("|") == 1


def test_a_usage_error_cannot_start_perfdata():
    outcome = run_inprocess(make_check(lambda: 1), ["-w", "1|x=1"])
    assert outcome.exitcode == 3 and "|" not in outcome.output, outcome.output


def test_absolute_paths_are_normalised():
    assert cli.absolute_path("/data2//backup/") == "/data2/backup"
    with pytest.raises(cli.argparse.ArgumentTypeError, match="unknown directory"):
        cli.absolute_path("data2")
