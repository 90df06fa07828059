"""check_dyndns_match --snmp: IP-MIB walks recorded from a real Net-SNMP agent (and one
synthetic older router) parsed into WAN addresses; the check with the SNMP source injected.
Needs the shared SNMP source (osop_checks.sources.snmp) and its walk loader."""
import ipaddress

import pytest
from hypothesis import given, strategies as st

pytest.importorskip("osop_checks.sources.snmp")
snmpd = pytest.importorskip("lab.peers.snmpd")

from osop_checks.sources import publicip, snmp_address as sa  # noqa: E402
from tests.checks.test_dyndns_match import answer, resolution, run  # noqa: E402

NETSNMP_IPADDRESS = "netsnmp-5.9.3_debian12_ipAddressTable.txt"
NETSNMP_IPADDR = "netsnmp-5.9.3_debian12_ipAddrTable.txt"
NETSNMP_NAMES = "netsnmp-5.9.3_debian12_ifNames.txt"
ROUTER_IPADDR = "router_ipAddrTable_synthetic.txt"
ROUTER_DESCR = "router_ifDescr_synthetic.txt"


def table(name, entry):
    return snmpd.as_table(snmpd.load_walk(name), entry)


def netsnmp_names():
    return sa.interface_names(table(NETSNMP_NAMES, sa.IF_NAME_ENTRY),
                              table(NETSNMP_NAMES, sa.IF_DESCR_ENTRY))


def test_ip_address_table_of_net_snmp():
    rows = sa.parse_ip_address_table(table(NETSNMP_IPADDRESS, sa.IP_ADDRESS_ENTRY))
    # The broadcast row (type 3) is left out; IPv4 and IPv6 both come through.
    assert rows == [("127.0.0.1", 1), ("192.0.2.2", 4), ("::1", 1), ("fd00::2", 4),
                    ("fe80::fc:ff:fe00:1", 4)]


def test_ip_addr_table_of_net_snmp():
    rows = sa.parse_ip_addr_table(table(NETSNMP_IPADDR, sa.IP_ADDR_ENTRY))
    assert rows == [("127.0.0.1", 1), ("192.0.2.2", 4)]


def test_interface_names_prefer_ifname():
    assert netsnmp_names() == {1: "lo", 2: "ifb0", 3: "ifb1", 4: "eth0"}


def test_select_by_interface_leaves_out_link_local():
    rows = sa.parse_ip_address_table(table(NETSNMP_IPADDRESS, sa.IP_ADDRESS_ENTRY))
    assert sa.select(rows, netsnmp_names(), "eth0") == (["192.0.2.2", "fd00::2"], None)
    assert sa.select(rows, netsnmp_names(), "ppp0")[1] == \
        "has no interface ppp0 (it has: eth0, ifb0, ifb1, lo)"
    assert sa.select(rows, netsnmp_names(), "ifb0")[1] == "lists no address on interface ifb0"


def test_select_without_interface_wants_a_global_address():
    rows = sa.parse_ip_address_table(table(NETSNMP_IPADDRESS, sa.IP_ADDRESS_ENTRY))
    chosen, problem = sa.select(rows, netsnmp_names())
    assert chosen == []
    assert problem.startswith("lists no globally routable address (it has: 127.0.0.1 on lo, "
                              "192.0.2.2 on eth0")
    assert problem.endswith("name the WAN interface with --snmp-interface")


def test_older_router_wan_address():
    rows = sa.parse_ip_addr_table(table(ROUTER_IPADDR, sa.IP_ADDR_ENTRY))
    names = sa.interface_names({}, table(ROUTER_DESCR, sa.IF_DESCR_ENTRY))
    assert sa.select(rows, names) == (["81.2.69.142"], None)
    assert sa.select(rows, names, "pppoe-wan") == (["81.2.69.142"], None)
    assert sa.select(rows, names, "br-lan") == (["192.168.1.1"], None)


def test_every_shared_snmp_option_but_host_is_offered():
    from osop_checks import cli, snmp_options
    from osop_checks.checks import dyndns_match as check

    plain = cli.Parser("X", "check_x", "the shared options alone (they take kind=)")
    snmp_options.add_arguments(plain, host=False, enable_switch=False)
    common = {o for a in cli.Parser("X", "check_x", "")._actions for o in a.option_strings}
    shared = {o for a in plain._actions for o in a.option_strings} - common
    ours = {o for a in check.build_parser()._actions for o in a.option_strings}
    assert shared and shared <= ours
    assert "--host" not in ours


@given(st.dictionaries(
    st.lists(st.integers(-1, 300), max_size=20).map(tuple),
    st.dictionaries(st.integers(1, 10), st.one_of(st.integers(), st.binary(max_size=6),
                                                   st.text(max_size=16)), max_size=4),
    max_size=4))
def test_ip_mib_tables_of_any_shape_never_fail(table):
    for address, _ in sa.parse_ip_address_table(table) + sa.parse_ip_addr_table(table):
        ipaddress.ip_address(address)
    sa.interface_names(table, table)


def test_check_with_snmp_source_injected(tmp_path):
    def snmp_source(host, timeout):
        return publicip.Reading("SNMP agent %s:161" % host, ["81.2.69.142"], seconds=0.02)

    from osop_checks.checks import dyndns_match as check
    from osop_checks import runtime
    import contextlib
    import io

    def build(args):
        return check.build_check(args, resolve=lambda n, t: resolution(
            answer("A", "81.2.69.142")), snmp_address=snmp_source)

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        outcome = runtime.execute(check.NAME, check.build_parser, build, [
            "-H", "office.dyn.test", "--snmp", "192.0.2.1", "--community", "x",
            "--state-file", str(tmp_path / "s.json"), "-v"])
    assert outcome.exitcode == 0, outcome.output
    assert "public address from SNMP agent 192.0.2.1:161: 81.2.69.142" in outcome.output


def test_snmp_without_community_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.delenv("OSOP_SNMP_COMMUNITY", raising=False)
    out = run(["--snmp", "192.0.2.1"], tmp_path, resolution(answer("A", "81.2.69.142")))
    assert out.exitcode == 3
    assert "SNMP v2c needs a community" in out.output
