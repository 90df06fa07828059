"""check_dyndns_match --router-upnp against a real UPnP IGD: Debian's miniupnpd in a router
namespace (lab/peers/miniupnpd.py), the check in a LAN client namespace of its own, the
name served by the router's dnsmasq. Garbage and hostile answers come from a local HTTP
server on loopback (lab/peers/http_echo.py) serving hand-written (synthetic) documents.

The WAN address of a match, 80.81.82.83, is a made-up public one: miniupnpd answers a private
or reserved one (documentation ranges included) as empty. It exists only inside the test's
namespaces; no packet leaves them.
"""
import time

import pytest

from osop_checks.sources import upnp
from tests.helpers import fixture
from lab.peers import miniupnpd, run_plugin
from lab.peers.dns import closed_port

pytestmark = pytest.mark.peer

NAME = "practice.dyn.test"
PUBLIC = "80.81.82.83"
MOVED = "80.81.82.99"
# The synthetic FRITZ!Box's delegated prefix (a made-up public one) and a host inside it.
PREFIX = "2003:a:1234:5600::/56"
PREFIX_HOST = "2003:a:1234:5601::10"
OUTSIDE = "2003:a:1234:7701::10"


def run(router, tmp_path, *argv):
    return run_plugin("check_dyndns_match", ["-H", NAME, "--server", router.dns_server,
                                             "--state-file", str(tmp_path / "s.json")]
                      + list(argv), wrap=router.wrap())


@pytest.fixture
def router(upnp_router):
    upnp_router.set_wan(PUBLIC)
    upnp_router.set_records({NAME: [PUBLIC]})
    return upnp_router


# -- against miniupnpd ---------------------------------------------------------------------

def test_discovery_gives_the_address_miniupnpd_holds(router, tmp_path):
    out = run(router, tmp_path, "--router-upnp", "-v")
    assert out.exitcode == 0, out.output
    assert out.status_line.startswith(
        "DYNDNS_MATCH OK - %s resolves to %s, the public address |" % (NAME, PUBLIC))
    assert "public address from UPnP router %s: %s" % (router.description_url, PUBLIC) \
        in out.output
    assert "public_address_time=" in out.status_line
    assert "SSDP M-SEARCH from 192.168.178.20" in router.log_text()


def test_the_url_gives_the_address_miniupnpd_holds(router, tmp_path):
    out = run(router, tmp_path, "--router-upnp", router.description_url, "-v")
    assert out.exitcode == 0, out.output
    assert "%s resolves to %s, the public address" % (NAME, PUBLIC) in out.status_line


def test_the_word_ssdp_is_a_search_too(router, tmp_path):
    out = run(router, tmp_path, "--router-upnp", "SSDP")
    assert out.exitcode == 0, out.output


def test_a_new_wan_address_is_a_mismatch_as_from_any_source(router, tmp_path):
    router.set_wan(MOVED)
    out = run(router, tmp_path, "--router-upnp")
    assert out.exitcode == 1, out.output
    assert "%s resolves to %s, public address is %s (mismatch for 0s, grace 10m)" % (
        NAME, PUBLIC, MOVED) in out.status_line
    out = run(router, tmp_path, "--router-upnp", router.description_url, "--grace", "0")
    assert out.exitcode == 2, out.output
    assert out.status_line.startswith(
        "DYNDNS_MATCH CRITICAL - %s resolves to %s, public address is %s (mismatch for " % (
            NAME, PUBLIC, MOVED))


def test_the_router_and_a_fixed_address_must_agree(router, tmp_path):
    out = run(router, tmp_path, "--router-upnp", "--expect", MOVED)
    assert out.exitcode == 3, out.output
    assert "the public address sources disagree: expected says %s, UPnP router %s says %s" % (
        MOVED, router.description_url, PUBLIC) in out.status_line


@pytest.mark.parametrize("wan", ["100.64.7.2", "192.0.2.7", "10.1.2.3"],
                         ids=["carrier-grade NAT", "documentation range", "private"])
def test_a_reserved_wan_address_is_carrier_grade_nat(router, tmp_path, wan):
    router.set_wan(wan)
    out = run(router, tmp_path, "--router-upnp")
    assert out.exitcode == 3, out.output
    assert out.status_line.startswith(
        "DYNDNS_MATCH UNKNOWN - cannot tell the public IPv4 address: no source gave a public "
        "IPv4 address: UPnP router %s: the router has no public IPv4 address: behind "
        "carrier-grade NAT? |" % router.description_url), out.output
    assert "%s is not suitable for external IP" % wan in router.log_text()


def test_no_gateway_on_the_wan_side_within_the_timeout(router, tmp_path):
    """From the provider's side of the router: miniupnpd listens on the LAN only, so the
    search goes unanswered."""
    from lab.peers.netns import ip

    ip("-n", router.isp, "address", "replace", "80.81.82.1/24", "dev", "eth0")
    ip("-n", router.isp, "route", "replace", "default", "via", PUBLIC)
    started = time.monotonic()
    out = run_plugin("check_dyndns_match", ["-H", NAME, "--server", PUBLIC, "--state-file",
                                            str(tmp_path / "s.json"), "--router-upnp", "-t",
                                            "3"], wrap=router.wrap(router.isp))
    assert time.monotonic() - started < 3 + 1 + 1.5  # a whole process: start-up on top
    assert out.exitcode == 3, out.output
    assert "UPnP router: no Internet gateway answered the SSDP search on " \
           "239.255.255.250:1900 within" in out.status_line


def test_the_router_refusing_the_description_port(router, tmp_path):
    url = "http://%s:49001/rootDesc.xml" % router.dns_server
    out = run(router, tmp_path, "--router-upnp", url)
    assert out.exitcode == 3, out.output
    assert "UPnP router %s: cannot connect: Connection refused" % url in out.status_line


def test_an_ipv6_comparison_asks_miniupnpd_for_a_prefix_it_does_not_give(router, tmp_path):
    """--both: the IPv4 address still comes from the router; miniupnpd has no AVM prefix
    action (401 Invalid Action), so IPv6 cannot be told, and the check says why."""
    router.set_records({NAME: [PUBLIC, PREFIX_HOST]})
    out = run(router, tmp_path, "--router-upnp", router.description_url, "--both",
              "--v6-prefix", "56", "-v")
    assert out.exitcode == 3, out.output
    assert ("cannot tell the public IPv6 address: no source gave a public IPv6 address: UPnP "
            "router %s: the router gives no IPv6 prefix (the router refused "
            "X_AVM_DE_GetIPv6Prefix: UPnP error 401 Invalid Action; a FRITZ!Box does)"
            % router.description_url) in out.status_line, out.output
    assert "%s resolves to %s, the public address" % (NAME, PUBLIC) in out.output


# -- garbage and hostile answers (a local server) -----------------------------------------

DESCRIPTION_SYNTHETIC = (
    '<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device>'
    '<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>'
    '<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANPPPConnection:1'
    '</serviceType><controlURL>/ctl/PPPConn</controlURL></service></serviceList></device>'
    '</root>')
ANSWER_SYNTHETIC = (
    '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
    '<s:Body><u:GetExternalIPAddressResponse xmlns:u="urn:schemas-upnp-org:service:'
    'WANPPPConnection:1"><NewExternalIPAddress>%s</NewExternalIPAddress>'
    '</u:GetExternalIPAddressResponse></s:Body></s:Envelope>')
LAUGHS_SYNTHETIC = ('<?xml version="1.0"?><!DOCTYPE root [<!ENTITY a "ha">'
                    + "".join('<!ENTITY %s "%s">' % (chr(98 + i), ("&%s;" % chr(97 + i)) * 10)
                              for i in range(8))
                    + ']><root>&i;</root>')

HOSTILE = [
    ("description is an HTML page", dict(
        body="<html><body>Router login</body></html>"),
     "the device description is not a UPnP one (its root element is <html>)"),
    ("description is not XML", dict(body=b"HELLO | \x00\xff garbage\n"),
     "the device description is not XML ("),
    ("description with entities", dict(body=LAUGHS_SYNTHETIC),
     "the device description declares a DTD or entities: refused"),
    ("description without a connection service", dict(
        body=DESCRIPTION_SYNTHETIC.replace("WANPPPConnection", "Layer3Forwarding")),
     "the router offers no WANIPConnection or WANPPPConnection service (it offers: "
     "Layer3Forwarding)"),
    ("description of 300 KiB", dict(body=DESCRIPTION_SYNTHETIC.replace(
        "<device>", "<device>" + "<x/>" * 80000)),
     "the answer is longer than 262144 bytes, not a UPnP device description"),
    ("description at a 404", dict(body="no", status=404),
     "HTTP 404 Not Found for the device description"),
    ("address is garbage", dict(body=DESCRIPTION_SYNTHETIC, post=ANSWER_SYNTHETIC % (
        "999.1.2.3 | x")), "NewExternalIPAddress is not an IP address: '999.1.2.3 / x'"),
    ("address is private", dict(body=DESCRIPTION_SYNTHETIC, post=ANSWER_SYNTHETIC % (
        "192.168.1.5")), "the router has no public IPv4 address (its WAN address "
                         "192.168.1.5 is not public): behind carrier-grade NAT?"),
    ("answer without an address", dict(body=DESCRIPTION_SYNTHETIC, post=ANSWER_SYNTHETIC.replace(
        "NewExternalIPAddress", "Other") % ""), "the SOAP answer holds no NewExternalIPAddress"),
    ("SOAP fault", dict(body=DESCRIPTION_SYNTHETIC, post=fixture(
        "upnp", "miniupnpd-2.3.1_fault-invalid-action.xml"), post_status=500),
     "the router refused GetExternalIPAddress: UPnP error 401 Invalid Action"),
    ("SOAP error page", dict(body=DESCRIPTION_SYNTHETIC, post="<h1>oops", post_status=500),
     "HTTP 500 Internal Server Error"),
    ("SOAP answer is an HTML page", dict(body=DESCRIPTION_SYNTHETIC, post="<html></html>"),
     "the SOAP answer is not a SOAP envelope (its root element is <html>)"),
]


@pytest.fixture
def site(dns_site):
    dns_site.set_records({NAME: [PUBLIC]})
    return dns_site


def run_local(site, tmp_path, url, *argv):
    return run_plugin("check_dyndns_match", ["-H", NAME, "--server", site.auth.server,
                                             "--state-file", str(tmp_path / "s.json"),
                                             "--router-upnp", url] + list(argv))


@pytest.mark.parametrize("situation,server,message", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_garbage_is_unknown_in_one_line(site, http_echo, tmp_path, situation, server,
                                        message):
    echo = http_echo(**server)
    url = echo.url + "igd.xml"
    out = run_local(site, tmp_path, url, "-v")
    assert out.exitcode == 3, out.output
    assert out.status_line.startswith(
        "DYNDNS_MATCH UNKNOWN - cannot tell the public IPv4 address: no source gave a public "
        "IPv4 address: UPnP router %s: %s" % (url, message)), out.output
    assert out.status_line.count("|") == 1 and len(out.status_line) < 500
    assert "Traceback" not in out.output + out.stderr


def test_the_synthetic_router_answers_too(site, http_echo, tmp_path):
    """The same hand-written documents with a public address: the check reads them."""
    echo = http_echo(DESCRIPTION_SYNTHETIC, post=ANSWER_SYNTHETIC % PUBLIC)
    out = run_local(site, tmp_path, echo.url + "igd.xml")
    assert out.exitcode == 0, out.output
    assert b"urn:schemas-upnp-org:service:WANPPPConnection:1" in echo.posted[0]


# -- a FRITZ!Box (synthetic: no real one here; shaped as AVM documents its IGD) -------------

PREFIX_ANSWER = miniupnpd.FRITZBOX_PREFIX


def fritzbox(http_echo, **answers):
    return http_echo(**miniupnpd.fritzbox(**answers))


def test_a_fritzbox_gives_its_delegated_ipv6_prefix(site, http_echo, tmp_path):
    site.set_records({NAME: [PUBLIC, PREFIX_HOST]})
    box = fritzbox(http_echo)
    url = box.url + "igddesc.xml"
    out = run_local(site, tmp_path, url, "--both", "--v6-prefix", "56", "-v")
    assert out.exitcode == 0, out.output
    assert "public address from UPnP router %s: %s, 2003:a:1234:5600::" % (url, PUBLIC) \
        in out.output
    assert b"#X_AVM_DE_GetIPv6Prefix" not in box.posted[0]  # the body names the action
    assert [b"X_AVM_DE_GetIPv6Prefix" in body for body in box.posted] == [False, True]
    # a name whose AAAA left the prefix is a mismatch, as from any source
    site.set_records({NAME: [PUBLIC, OUTSIDE]})
    out = run_local(site, tmp_path, url, "-6", "--v6-prefix", "56", "--grace", "0")
    assert out.exitcode == 2, out.output
    assert "%s resolves to %s, public address is 2003:a:1234:5600::" % (NAME, OUTSIDE) \
        in out.status_line, out.output


def test_an_ipv4_comparison_asks_no_prefix(site, http_echo, tmp_path):
    box = fritzbox(http_echo)
    out = run_local(site, tmp_path, box.url + "igddesc.xml")
    assert out.exitcode == 0, out.output
    assert len(box.posted) == 1 and b"GetExternalIPAddress" in box.posted[0]


def test_ds_lite_has_an_ipv6_prefix_and_no_public_ipv4(site, http_echo, tmp_path):
    """Many FRITZ!Box lines (DS-Lite) have no public IPv4 address of their own: IPv6 is
    judged, IPv4 is named as what it is."""
    site.set_records({NAME: [PUBLIC, PREFIX_HOST]})
    box = fritzbox(http_echo, address="fritzbox_GetExternalIPAddress_ds-lite_synthetic.xml")
    url = box.url + "igddesc.xml"
    out = run_local(site, tmp_path, url, "-6", "--v6-prefix", "56")
    assert out.exitcode == 0, out.output
    assert out.status_line.startswith(
        "DYNDNS_MATCH OK - %s resolves to %s, in the public /56 prefix of 2003:a:1234:5600:: |"
        % (NAME, PREFIX_HOST)), out.output
    out = run_local(site, tmp_path, url, "--both", "--v6-prefix", "56")
    assert out.exitcode == 3, out.output
    assert "cannot tell the public IPv4 address: no source gave a public IPv4 address: UPnP " \
           "router %s: the router has no public IPv4 address: behind carrier-grade NAT?" % url \
        in out.status_line, out.output


@pytest.mark.parametrize("argv, message", [
    (["--v6-prefix", "64"], "the router's IPv6 prefix %s cannot tell the first 64 bits of an "
                            "address: compare at most 56 (--v6-prefix 56)" % PREFIX),
    ([], "the router's IPv6 prefix %s cannot tell the first 128 bits of an address: compare "
         "at most 56 (--v6-prefix 56)" % PREFIX),
], ids=["longer than the prefix", "the whole address"])
def test_more_bits_than_the_prefix_has_are_unknown(site, http_echo, tmp_path, argv, message):
    site.set_records({NAME: [PREFIX_HOST]})
    box = fritzbox(http_echo)
    url = box.url + "igddesc.xml"
    out = run_local(site, tmp_path, url, "-6", *argv)
    assert out.exitcode == 3, out.output
    assert out.status_line.startswith(
        "DYNDNS_MATCH UNKNOWN - cannot tell the public IPv6 address: no source gave a public "
        "IPv6 address: UPnP router %s: %s" % (url, message)), out.output


@pytest.mark.parametrize("answer, message", [
    (fixture("upnp", "fritzbox_X_AVM_DE_GetIPv6Prefix_none_synthetic.xml"),
     "the router has no IPv6 prefix (none delegated by the provider)"),
    (PREFIX_ANSWER.replace("2003:a:1234:5600::", "2003:a:zz | x::"),
     "NewIPv6Prefix/NewPrefixLength is not an IPv6 prefix: '2003:a:zz / x::/56'"),
    (PREFIX_ANSWER.replace(">56<", ">999<"),
     "NewIPv6Prefix/NewPrefixLength is not an IPv6 prefix: '2003:a:1234:5600::/999'"),
    (PREFIX_ANSWER.replace("2003:a:1234:5600::", "fd00:1234:5600::"),
     "the router's IPv6 prefix fd00:1234:5600::/56 is not a public one"),
    (PREFIX_ANSWER.replace("NewPrefixLength", "Other"),
     "the SOAP answer holds no NewPrefixLength"),
    ("<html>", "the SOAP answer is not XML ("),
], ids=["none delegated", "garbage prefix", "garbage length", "ULA prefix", "no length",
        "not XML"])
def test_a_garbage_prefix_is_unknown_in_one_line(site, http_echo, tmp_path, answer, message):
    site.set_records({NAME: [PREFIX_HOST]})
    box = fritzbox(http_echo, prefix=answer)
    url = box.url + "igddesc.xml"
    out = run_local(site, tmp_path, url, "-6", "--v6-prefix", "56")
    assert out.exitcode == 3, out.output
    assert out.status_line.startswith(
        "DYNDNS_MATCH UNKNOWN - cannot tell the public IPv6 address: no source gave a public "
        "IPv6 address: UPnP router %s: %s" % (url, message)), out.output
    assert len(out.output.splitlines()) == 1 or out.output.count("|") == 1
    assert "Traceback" not in out.output + out.stderr


@pytest.mark.parametrize("server", [dict(drip=0.2), dict(hang=True)],
                         ids=["answer dripping a byte at a time", "answer never sent"])
def test_a_slow_router_is_cut_off_by_the_timeout(site, http_echo, tmp_path, server):
    echo = http_echo(**server)
    started = time.monotonic()
    out = run_local(site, tmp_path, echo.url + "igd.xml", "-t", "3")
    assert time.monotonic() - started < 3 + 1 + 1.5  # a whole process: start-up on top
    assert out.exitcode == 3, out.output
    assert "UPnP router %sigd.xml: no answer within" % echo.url in out.status_line


def test_an_unreachable_url_is_unknown(site, tmp_path):
    url = "http://%s/igd.xml" % closed_port()
    out = run_local(site, tmp_path, url)
    assert out.exitcode == 3, out.output
    assert "UPnP router %s: cannot connect: Connection refused" % url in out.status_line


def test_a_url_that_is_no_url_is_a_usage_error(site, tmp_path):
    out = run_local(site, tmp_path, "192.168.178.1:49000")
    assert out.exitcode == 3
    assert "is not an http:// or https:// URL" in out.status_line
    assert len(out.output.splitlines()) == 1


# -- the recorded miniupnpd answers (no root needed) -------------------------------------

def test_recorded_ssdp_answer():
    answer = upnp.parse_ssdp(fixture("upnp", "miniupnpd-2.3.1_ssdp-igd1.txt").encode(),
                             "192.168.178.1")
    assert answer.location == "http://192.168.178.1:49000/rootDesc.xml"
    assert "MiniUPnPd/2.3.1" in answer.server


@pytest.mark.parametrize("datagram,sender,message", [
    (b"HTTP/1.1 200 OK\r\nLOCATION: http://10.0.0.9:80/x.xml\r\n\r\n", "192.168.178.1",
     "LOCATION on another host"),
    (b"HTTP/1.1 200 OK\r\nST: x\r\n\r\n", "192.168.178.1", "without an http:// LOCATION"),
    (b"NOTIFY * HTTP/1.1\r\n\r\n", "192.168.178.1", "something else than HTTP 200"),
    (b"\xff\x00|", "192.168.178.1", "something else than HTTP 200"),
    (b"HTTP/1.1 200 OK\r\nLOCATION: file:///etc/passwd\r\n\r\n", "192.168.178.1",
     "without an http:// LOCATION"),
])
def test_ssdp_answers_that_are_not_followed(datagram, sender, message):
    with pytest.raises(upnp.UpnpError, match=message):
        upnp.parse_ssdp(datagram, sender)


def test_recorded_description():
    location = "http://192.168.178.1:49000/rootDesc.xml"
    services = upnp.parse_description(fixture("upnp", "miniupnpd-2.3.1_rootDesc.xml").encode(),
                                      location)
    assert services == [upnp.Service("urn:schemas-upnp-org:service:WANIPConnection:2",
                                     "http://192.168.178.1:49000/ctl/IPConn")]


def test_a_control_url_on_another_host_is_not_called():
    body = DESCRIPTION_SYNTHETIC.replace("/ctl/PPPConn", "http://203.0.113.9/ctl").encode()
    with pytest.raises(upnp.UpnpError, match="offers no WANIPConnection"):
        upnp.parse_description(body, "http://192.168.178.1:49000/igd.xml")


def test_recorded_soap_answers():
    assert upnp.parse_external_address(fixture(
        "upnp", "miniupnpd-2.3.1_GetExternalIPAddress_public.xml").encode()) == PUBLIC
    with pytest.raises(upnp.NoPublicAddress, match="behind carrier-grade NAT"):
        upnp.parse_external_address(fixture(
            "upnp", "miniupnpd-2.3.1_GetExternalIPAddress_cgnat-100.64.7.2.xml").encode())


def test_recorded_fritzbox_prefix_synthetic():
    box = "http://192.168.178.1:49000/igddesc.xml"
    services = upnp.parse_description(fixture("upnp", "fritzbox_igddesc_synthetic.xml")
                                      .encode(), box)
    assert [(s.service_type, s.control_url) for s in services] == [
        ("urn:schemas-upnp-org:service:WANIPConnection:1",
         "http://192.168.178.1:49000/igdupnp/control/WANIPConn1")]
    answer = PREFIX_ANSWER
    network = upnp.parse_ipv6_prefix(answer.encode())
    assert str(network) == PREFIX
    # some firmware writes the prefix with its length
    assert upnp.parse_ipv6_prefix(answer.replace("5600::<", "5600::/56<").encode()) == network
    assert upnp.prefix_address(network, 56) == upnp.prefix_address(network, 48) == \
        "2003:a:1234:5600::"
    with pytest.raises(upnp.UpnpError, match="compare at most 56"):
        upnp.prefix_address(network, 57)
    headers, body = upnp.soap_request(services[0].service_type, upnp.PREFIX_ACTION)
    assert headers["SOAPAction"] == \
        '"urn:schemas-upnp-org:service:WANIPConnection:1#X_AVM_DE_GetIPv6Prefix"'
    assert b"<u:X_AVM_DE_GetIPv6Prefix xmlns:u=" in body
