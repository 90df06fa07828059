"""The bad-input matrix: every option of every check given garbage.

Whatever it is given, a check ends with one status line that starts with its name, an exit
code in {0,1,2,3}, no traceback, within its --timeout + 1 s. Cases are built from the parsers
themselves, so a new option joins the matrix by existing.
"""
import argparse
import importlib
import pkgutil
import time

import pytest

import osop_checks.checks
from tests.peers import run_inprocess

GARBAGE = [
    "", " ", "10:5", "@", "~", "~:", "@10:5", "foo", "-1", "1e999", "nan", "9" * 40,
    "ünïcödé ✓", "/path with spaces/x", "line\nbreak", "a|b", "%", "10%%", "5XB", "::1:2",
    "../relative", "/nonexistent/deeply/nested",
]

# Arguments that make each check runnable without its real peer: unreachable or refused on
# loopback, so a run that gets past parsing fails fast and cleanly.
BASE = {}
TIMEOUT = 3


def checks():
    return sorted(m.name for m in pkgutil.iter_modules(osop_checks.checks.__path__))


def value_options(parser):
    for action in parser._actions:
        if not action.option_strings or action.nargs == 0:
            continue
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        if action.dest == "timeout":
            continue
        yield max(action.option_strings, key=len)


def cases():
    for name in checks():
        module = importlib.import_module("osop_checks.checks." + name)
        for option in value_options(module.build_parser()):
            for value in GARBAGE:
                yield pytest.param(name, option, value, id="%s %s=%r" % (name, option, value))
        for extra in (["--no-such-option"], ["-w"], ["positional-garbage"], ["-t", "0"],
                      ["-t", "-5"], ["-t", "99999999999999999999"], ["-vvvvvv"]):
            yield pytest.param(name, None, extra, id="%s %r" % (name, extra))


CASES = list(cases())


def test_the_matrix_is_large_enough():
    print("fault matrix: %d cases over %d checks" % (len(CASES), len(checks())))
    assert len(CASES) >= 200


@pytest.mark.parametrize("name,option,value", CASES)
def test_garbage_gives_one_clean_line(name, option, value):
    module = importlib.import_module("osop_checks.checks." + name)
    argv = list(BASE.get(name, [])) + ["-t", str(TIMEOUT)]
    argv += [option, value] if option else value
    start = time.monotonic()
    outcome = run_inprocess(module, argv)
    elapsed = time.monotonic() - start
    assert outcome.exitcode in (0, 1, 2, 3), outcome.output
    assert outcome.status_line.startswith(module.NAME + " "), outcome.output
    assert "Traceback" not in outcome.output
    if outcome.exitcode == 3 and "(see --help)" in outcome.status_line:
        assert outcome.output.count("\n") == 1, outcome.output  # a usage error is one line
    assert elapsed < TIMEOUT + 1
