"""check_dyndns_match --snmp against a real Net-SNMP snmpd on loopback (the peer of the
shared SNMP source): the 'router' is this machine, its WAN interface lo."""
import time

import pytest

pytest.importorskip("osop_checks.sources.snmp")
pytest.importorskip("lab.peers.snmpd")

from lab.peers import run_plugin
from lab.peers.dns import closed_port

pytestmark = pytest.mark.peer

NAME = "office.dyn.test"


def snmp_args(agent, port=None):
    return ["--snmp", "127.0.0.1", "--snmp-port", str(port or agent.port),
            "--community-file", agent.write_secret("community", agent.community)]


def run(site, tmp_path, *argv):
    return run_plugin("check_dyndns_match", ["-H", NAME, "--server", site.auth.server,
                                             "--state-file", str(tmp_path / "s.json")]
                      + list(argv))


def test_router_wan_address_matches(snmpd, dns_site, tmp_path):
    dns_site.set_records({NAME: ["127.0.0.1", "::1"]})
    out = run(dns_site, tmp_path, "--both", "--snmp-interface", "lo", "-v", *snmp_args(snmpd))
    assert out.exitcode == 0, out.output
    assert "office.dyn.test resolves to ::1, the public address; office.dyn.test resolves " \
           "to 127.0.0.1, the public address" in out.status_line or \
           "resolves to 127.0.0.1, the public address" in out.status_line
    assert "public address from SNMP agent 127.0.0.1:%d: 127.0.0.1, ::1" % snmpd.port \
        in out.output


def test_router_wan_address_mismatch(snmpd, dns_site, tmp_path):
    dns_site.set_records({NAME: ["203.0.113.7"]})
    out = run(dns_site, tmp_path, "--snmp-interface", "lo", "--grace", "0", *snmp_args(snmpd))
    assert out.exitcode == 2, out.output
    assert "office.dyn.test resolves to 203.0.113.7, public address is 127.0.0.1 " \
           "(mismatch for 0s)" in out.status_line


def test_router_without_global_address(snmpd, dns_site, tmp_path):
    dns_site.set_records({NAME: ["203.0.113.7"]})
    out = run(dns_site, tmp_path, *snmp_args(snmpd))
    assert out.exitcode == 3
    assert "SNMP agent 127.0.0.1:%d lists no globally routable address" % snmpd.port \
        in out.status_line


def test_agent_down_within_timeout(snmpd, dns_site, tmp_path):
    dns_site.set_records({NAME: ["127.0.0.1"]})
    port = int(closed_port().rsplit(":", 1)[1])
    started = time.monotonic()
    out = run(dns_site, tmp_path, "--snmp-interface", "lo", "-t", "4", *snmp_args(snmpd, port))
    assert time.monotonic() - started < 4 + 1 + 1.5  # a whole process: start-up on top
    assert out.exitcode == 3, out.output
    assert "no SNMP response from 127.0.0.1:%d" % port in out.status_line
