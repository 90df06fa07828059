"""check_dyndns_match against dnsmasq (authoritative for dyn.test, and a stale forwarding
resolver in front of it), local HTTP echo services, a DNS black hole and a closed port; the
router over SNMP (this machine's snmpd) and over UPnP (miniupnpd in a router namespace)."""
import json
import os
import shutil
import tempfile
import time

from lab.peers import miniupnpd
from lab.peers.dns import DnsSite, UdpPeer, closed_port
from lab.peers.http_echo import EchoServer

PUBLIC4 = "198.51.100.23"


def scenarios(stack):
    site = stack.enter_context(DnsSite(
        records={"office.dyn.test": [PUBLIC4, "2001:db8:1::5"],
                 "stale.dyn.test": [PUBLIC4],
                 "moved.dyn.test": ["203.0.113.7"],
                 "v6.dyn.test": ["2001:db8:1:0:aaaa::5"],
                 "router.dyn.test": ["127.0.0.1", "::1"],
                 "box.dyn.test": ["2003:a:1234:5601::10"]},
        resolver_records={"stale.dyn.test": ["203.0.113.7"]}))
    echo = stack.enter_context(EchoServer(PUBLIC4 + "\n"))
    echo2 = stack.enter_context(EchoServer(PUBLIC4))
    other = stack.enter_context(EchoServer("198.51.100.99"))
    portal = stack.enter_context(EchoServer(
        "<!DOCTYPE html><html><head><title>Hotel WiFi login</title></head></html>",
        content_type="text/html"))
    # A FRITZ!Box on DS-Lite (no public IPv4 of its own), as AVM documents its IGD: the
    # synthetic answers of tests/fixtures/upnp/
    fritzbox = stack.enter_context(EchoServer(**miniupnpd.fritzbox(
        address="fritzbox_GetExternalIPAddress_ds-lite_synthetic.xml")))
    silent = stack.enter_context(UdpPeer("silent"))
    state = tempfile.mkdtemp(prefix="osop-demo-dyndns-")
    stack.callback(shutil.rmtree, state, True)
    # moved.dyn.test has pointed elsewhere for 42 minutes already.
    with open(os.path.join(state, "moved.json"), "w") as handle:
        json.dump({"A": {"since": time.time() - 42 * 60}}, handle)

    def run(name, *argv):
        return ["check_dyndns_match", "-H", name, "--state-file",
                os.path.join(state, name.split(".")[0] + ".json")] + list(argv)

    auth, resolver = site.auth.server, site.resolver.server
    return [
        ("the name matches the echo service's answer",
         run("office.dyn.test", "--server", resolver, "--ip-url", echo.url)),
        ("A and AAAA, two echo services and a fixed IPv6 address, verbose",
         run("office.dyn.test", "--server", resolver, "--both", "--ip-url", echo.url,
             "--ip-url", echo2.url, "--expect", "2001:db8:1::5", "-v")),
        ("a resolver that still hands out the old address",
         run("stale.dyn.test", "--server", resolver, "--expect", PUBLIC4)),
        ("the same name from the zone's authoritative server (SOA walk-up, NS, RD unset)",
         run("stale.dyn.test", "--server", resolver, "--authoritative", "--auth-port",
             str(site.port), "--expect", PUBLIC4, "-v")),
        ("a mismatch older than the 10m grace",
         run("moved.dyn.test", "--server", auth, "--ip-url", echo.url)),
        ("IPv6: the provider changed the host part only, compared by /64 prefix",
         run("v6.dyn.test", "--server", auth, "-6", "--expect", "2001:db8:1:0:bbbb::5",
             "--v6-prefix", "64")),
        ("IPv6: inside the prefix a FRITZ!Box on DS-Lite was delegated (UPnP, synthetic)",
         run("box.dyn.test", "--server", auth, "-6", "--v6-prefix", "56", "--router-upnp",
             fritzbox.url + "igddesc.xml")),
        ("a name that does not exist",
         run("gone.dyn.test", "--server", auth, "--expect", PUBLIC4)),
        ("two echo services that disagree",
         run("office.dyn.test", "--server", auth, "--ip-url", echo.url, "--ip-url", other.url)),
        ("an echo service behind a captive portal (HTML)",
         run("office.dyn.test", "--server", auth, "--ip-url", portal.url)),
        ("a DNS server that is down (closed port)",
         run("office.dyn.test", "--server", closed_port(), "--expect", PUBLIC4)),
        ("a DNS server that never answers, -t 3",
         run("office.dyn.test", "--server", silent.server, "--both", "--expect", PUBLIC4,
             "--expect", "2001:db8:1::5", "-t", "3")),
    ] + _snmp_scenarios(stack, site, run) + _upnp_scenarios(stack, run) + _tr064_scenarios(
        stack, site, run)


def _tr064_scenarios(stack, site, run):
    """The practice's FRITZ!Box as it ships: TR-064 with a login, TLS with its self-signed
    certificate (a peer built from AVM's published descriptions, lab/peers/fritzbox_tr064.py:
    no real box here)."""
    from lab.peers import fritzbox_tr064

    box = stack.enter_context(fritzbox_tr064.running())
    site.set_records(dict(site.records, **{"fritz.dyn.test": [box.external]}))
    secrets = tempfile.mkdtemp(prefix="osop-demo-fritzbox-")
    stack.callback(shutil.rmtree, secrets, True)
    right, wrong = os.path.join(secrets, "right"), os.path.join(secrets, "wrong")
    with open(right, "w") as handle:
        handle.write(box.password + "\n")
    with open(wrong, "w") as handle:
        handle.write("not the password\n")
    login = ["--server", site.auth.server, "--router-tr064", box.url, "--router-user", box.user]

    def reconnected():
        box.reconnect(time.time() - 400)
    return [
        ("the FRITZ!Box's WAN address over TR-064 with a login, its certificate trusted on "
         "first use", run("fritz.dyn.test", *login, "--router-password-file", right)),
        ("the same box, a wrong password", run("fritz.dyn.test", *login,
                                               "--router-password-file", wrong)),
        ("the box reconnected 400 s ago (one reconnect: not flagged)",
         run("fritz.dyn.test", *login, "--router-password-file", right), reconnected, ()),
    ]


def _snmp_scenarios(stack, site, run):
    """The router's WAN address over SNMP, with this machine's snmpd as the router and lo as
    its WAN interface; only where the shared SNMP source and its snmpd peer exist."""
    try:
        from osop_checks.sources import snmp  # noqa: F401 - only: is the SNMP source here?
        from lab.peers.snmpd import Snmpd
    except ImportError:
        return []
    try:
        agent = stack.enter_context(Snmpd())
    except Exception:  # no snmpd here: the other scenarios still run
        return []
    return [("the router's WAN address over SNMP v2c (IP-MIB), A and AAAA",
             run("router.dyn.test", "--server", site.auth.server, "--both", "--snmp",
                 "127.0.0.1", "--snmp-port", str(agent.port), "--snmp-interface", "lo",
                 "--community-file", agent.write_secret("community", agent.community), "-v"))]


def _upnp_scenarios(stack, run):
    """The practice's router over UPnP: Debian's miniupnpd in a router namespace, the check in
    a LAN client namespace (lab/peers/miniupnpd.py); only as root with miniupnpd here."""
    import shutil

    if os.geteuid() != 0 or not shutil.which("miniupnpd", path=os.environ.get(
            "PATH", "") + ":/usr/sbin"):
        return []
    from lab.peers.miniupnpd import UpnpRouter

    public, moved = "80.81.82.83", "80.81.82.99"
    router = stack.enter_context(UpnpRouter(wan=public, records={
        "practice.dyn.test": [public]}))
    dns = ["--server", router.dns_server]
    return [
        ("the practice's router over UPnP, found by an SSDP search (miniupnpd)",
         run("practice.dyn.test", "--router-upnp", *dns),
         lambda: router.set_wan(public), router.wrap()),
        ("the router's UPnP description URL given, verbose",
         run("practice.dyn.test", "--router-upnp", router.description_url, "-v", *dns),
         lambda: router.set_wan(public), router.wrap()),
        ("the provider gave the router a new address: the name is stale",
         run("practice.dyn.test", "--router-upnp", "--grace", "0", *dns),
         lambda: router.set_wan(moved), router.wrap()),
        ("the router's own WAN address is 100.64.7.2: carrier-grade NAT",
         run("practice.dyn.test", "--router-upnp", *dns),
         lambda: router.set_wan("100.64.7.2"), router.wrap()),
    ]
