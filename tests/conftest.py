"""Every pytest fixture defined in a tests/peers module is available to every test."""
import pkgutil

import pytest

from tests import peers

pytest_plugins = ["tests.peers." + _info.name for _info in pkgutil.iter_modules(peers.__path__)]


@pytest.fixture(autouse=True)
def _no_leftover_deadline():
    """A source called directly in a test must not inherit the budget of an earlier run."""
    from osop_checks import deadline

    deadline.start(None)
    yield
    deadline.start(None)


def pytest_collection_modifyitems(items):
    """A test that runs a check as another user (it uses foreign_install) is marked as_nagios:
    test_any_folder.py runs exactly those from a clone in a private folder."""
    for item in items:
        if "foreign_install" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.as_nagios)


def pytest_terminal_summary(terminalreporter):
    from tests import test_fault_matrix

    terminalreporter.write_line("fault matrix: %d cases over %d checks" % (
        len(test_fault_matrix.CASES), len(test_fault_matrix.checks())))
