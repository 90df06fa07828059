"""The lab's peers whose pytest fixtures the tests use (a test names the fixture as an
argument; the module that defines it is listed here, nowhere else)."""
import pytest

# A module is listed before those that import it (its asserts are rewritten only then).
pytest_plugins = [
    "lab.peers.netns",              # practice
    "lab.peers.blackhole",          # blackhole_tcp, blackhole_udp, garbage_http, garbage_udp
    "lab.peers.dns",                # dns_site, udp_peer
    "lab.peers.foreign_user",       # foreign_install
    "lab.peers.http_echo",          # http_echo
    "lab.peers.ipv6",               # ipv6_net
    "lab.peers.miniupnpd",          # upnp_router
    "lab.peers.nrpe",               # osop_nrpe
    "lab.peers.snmpd",              # snmpd
    "lab.peers.sshd",               # sshd, ssh_black_hole
    "lab.peers.systemd_container",  # systemd_container
    "lab.peers.tls",                # tls_ca, tls_scenarios
]


@pytest.fixture(autouse=True)
def _no_leftover_deadline():
    """A source called directly in a test must not inherit the budget of an earlier run."""
    from osop_checks import deadline

    deadline.start(None)
    yield
    deadline.start(None)


# Labels a check emitted that tests/perfdata-labels.txt does not list, since the test began.
UNLISTED_LABELS = []


@pytest.fixture(scope="session", autouse=True)
def _perfdata_labels_recorded():
    """Every Verdict a check module builds in any test is held to tests/perfdata-labels.txt:
    its caller's module (osop_checks.checks.<name>) names the check."""
    import sys

    from osop_checks import plugin
    from tests import perfdata_labels

    labels = perfdata_labels.load()
    built = plugin.Verdict.__init__

    def recording(self, *args, **kwargs):
        built(self, *args, **kwargs)
        module = sys._getframe(1).f_globals.get("__name__", "")
        if module.startswith("osop_checks.checks."):
            check = module.rpartition(".")[2]
            UNLISTED_LABELS.extend("check_%s: %s" % (check, found) for found in
                                   perfdata_labels.unlisted(check, self.perfdata, labels))

    plugin.Verdict.__init__ = recording
    yield
    plugin.Verdict.__init__ = built


@pytest.fixture(autouse=True)
def _no_unlisted_perfdata_label():
    """A test during which a check emitted an unlisted perfdata label fails (at teardown)."""
    del UNLISTED_LABELS[:]
    yield
    if UNLISTED_LABELS:
        found = sorted(set(UNLISTED_LABELS))
        del UNLISTED_LABELS[:]
        pytest.fail("perfdata labels not in tests/perfdata-labels.txt: %s" % ", ".join(found))


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
