"""check_dyndns_match --router-tr064 against a FRITZ!Box's TR-064 interface built from AVM's
published descriptions (lab/peers/fritzbox_tr064.py: TLS with a self-signed certificate,
HTTP digest authentication, the SOAP actions of the constructed SCPDs); the name served by
dnsmasq (lab/peers/dns.py). No real FRITZ!Box was at hand.

80.81.82.83 and 2003:a:1234:5600::/56 are made-up public addresses of the peer's WAN side;
nothing leaves this machine.
"""
import json
import time

import pytest

from lab.peers import fritzbox_tr064, run_plugin

pytestmark = pytest.mark.peer

NAME = "practice.dyn.test"
PUBLIC = "80.81.82.83"
PREFIX_HOST = "2003:a:1234:5601::10"


@pytest.fixture(scope="module")
def box():
    with fritzbox_tr064.running() as peer:
        yield peer


@pytest.fixture
def site(dns_site):
    dns_site.set_records({NAME: [PUBLIC, PREFIX_HOST]})
    return dns_site


def check(site, box, tmp_path, *argv, password=None):
    secret = tmp_path / "fritzbox.password"
    secret.write_text((box.password if password is None else password) + "\n")
    return run_plugin("check_dyndns_match", [
        "-H", NAME, "--server", site.auth.server, "--state-file", str(tmp_path / "s.json"),
        "--router-tr064", box.url, "--router-user", box.user,
        "--router-password-file", str(secret)] + list(argv))


def test_wan_address_read_through_tr064_with_a_login(site, box, tmp_path):
    box.connection, box.connected_at = "ppp", time.time() - 3 * 3600 - 120
    box.calls.clear()
    out = check(site, box, tmp_path)
    assert out.exitcode == 0, out.output
    assert out.status_line.startswith(
        "DYNDNS_MATCH OK - %s resolves to %s, the public address |" % (NAME, PUBLIC))
    lines = out.output.splitlines()
    assert "public address from TR-064 router %s (WANPPPConnection): %s" % (box.url, PUBLIC) \
        in " ".join(lines)
    assert any(line.startswith("router connection (TR-064 WANPPPConnection): Connected for "
                               "3h 2m, last reconnect ") for line in lines), out.output
    assert any(line.startswith("trusted the certificate of ") for line in lines)
    # the SOAP calls were made with the login (digest: challenged once, then answered)
    assert ("GetExternalIPAddress", True) in box.calls
    assert not any(action == "GetExternalIPAddress" and not authorized
                   for action, authorized in box.calls[1:])
    kept = json.loads((tmp_path / "s.json").read_text())["router"]["fingerprints"]
    assert list(kept.values()) == [box.fingerprint]
    # the next run: the kept fingerprint is the pin, nothing more is trusted
    again = check(site, box, tmp_path)
    assert again.exitcode == 0 and "trusted the certificate" not in again.output


def test_wrong_password_is_a_clear_unknown(site, box, tmp_path):
    out = check(site, box, tmp_path, password="not the password")
    assert out.exitcode == 3, out.output
    assert out.status_line.startswith(
        "DYNDNS_MATCH UNKNOWN - cannot tell the public IPv4 address: no source gave a public "
        "IPv4 address: TR-064 router %s: the router refused the login of user 'monitoring' "
        "(HTTP 401): wrong --router-user or --router-password-file?" % box.url)
    assert "not the password" not in out.output + out.stderr


def test_a_certificate_not_the_pinned_one_is_unknown(site, box, tmp_path):
    out = check(site, box, tmp_path, "--router-fingerprint", "ab" * 32)
    assert out.exitcode == 3, out.output
    assert "the router's certificate is not the pinned one: SHA-256 %s, pinned AB:AB:" % (
        ":".join(box.fingerprint[i:i + 2] for i in range(0, 64, 2)).upper()) in out.output
    assert check(site, box, tmp_path, "--router-fingerprint",
                 box.fingerprint.upper()).exitcode == 0


def test_cable_box_and_its_ipv6_prefix(site, box, tmp_path):
    box.connection = "ip"
    try:
        out = check(site, box, tmp_path, "--both", "--v6-prefix", "56")
    finally:
        box.connection = "ppp"
    assert out.exitcode == 0, out.output
    assert "%s resolves to %s, in the public /56 prefix of 2003:a:1234:5600::" % (
        NAME, PREFIX_HOST) in out.status_line
    assert "router's delegated IPv6 prefix: 2003:a:1234:5600::/56" in out.output
    assert "(WANIPConnection)" in out.output


def test_reconnects_flagged_only_when_repeated_within_minutes(site, box, tmp_path):
    now = time.time()
    box.connected_at = now - 20 * 3600  # last night's forced reconnect
    assert check(site, box, tmp_path).exitcode == 0
    for ago in (900, 500):
        box.reconnect(now - ago)
        out = check(site, box, tmp_path)
        assert out.exitcode == 0, out.output
    box.reconnect(now - 100)
    out = check(site, box, tmp_path)
    assert out.exitcode == 1, out.output
    assert "the router reconnected 3 times within 30m (last " in out.status_line
