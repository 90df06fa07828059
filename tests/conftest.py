"""Every pytest fixture defined in a tests/peers module is available to every test."""
import importlib
import pkgutil

import pytest

from tests import peers

_FIXTURE_TYPE = type(pytest.fixture(lambda: None))


@pytest.fixture(autouse=True)
def _no_leftover_deadline():
    """A source called directly in a test must not inherit the budget of an earlier run."""
    from osop_checks import deadline

    deadline.start(None)
    yield
    deadline.start(None)

for _info in pkgutil.iter_modules(peers.__path__):
    _module = importlib.import_module("tests.peers." + _info.name)
    for _name, _value in vars(_module).items():
        if isinstance(_value, _FIXTURE_TYPE) and not _name.startswith("_"):
            globals()[_name] = _value


def pytest_terminal_summary(terminalreporter):
    from tests import test_fault_matrix

    terminalreporter.write_line("fault matrix: %d cases over %d checks" % (
        len(test_fault_matrix.CASES), len(test_fault_matrix.checks())))
