"""What test files share besides the peers: the recorded fixtures and reading perfdata.

Running a check is tests.peers.run_inprocess (in this process) or tests.peers.run_plugin (the
installed executable); each test file's own ``run`` only wires its check's sources.
"""
import os

from tests.peers import ROOT

FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def fixture(*path):
    """The text of tests/fixtures/<path> (a recorded real output): ``fixture("apt/x.txt")``
    or ``fixture("apt", "x.txt")``."""
    with open(os.path.join(FIXTURES, *path), encoding="utf-8") as handle:
        return handle.read()


def perf(outcome):
    """{label: 'value[UOM];warn;crit;min;max'} of the status line's perfdata."""
    data = outcome.status_line.split(" | ", 1)[1]
    return {name.strip("'"): value for name, value in
            (item.split("=", 1) for item in data.split())}


def perf_value(outcome, label):
    """The value of one perfdata item, as a whole number."""
    try:
        return int(perf(outcome)[label].split(";")[0])
    except KeyError:
        raise KeyError(label) from None
