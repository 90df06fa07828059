"""What test files share besides the peers: the recorded fixtures and reading perfdata.

Running a check is lab.peers.run_inprocess (in this process) or lab.peers.run_plugin (the
installed executable); each test file's own ``run`` only wires its check's sources.
"""
from lab.peers import FIXTURES, fixture  # noqa: F401 - the recorded outputs, for the tests


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
