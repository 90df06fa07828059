"""check_dyndns_match's public-address sources against real peers: a local HTTP echo
service (address, HTML, garbage, an error status, one that never answers), a closed port,
this machine's own interfaces (psutil); the name served by dnsmasq."""
import time

import pytest

from osop_checks.checks import dyndns_match
from osop_checks.sources import publicip
from lab.peers import run_inprocess, run_plugin
from lab.peers.dns import closed_port

pytestmark = pytest.mark.peer



NAME = "office.dyn.test"
PUBLIC4 = "198.51.100.23"


@pytest.fixture
def site(dns_site):
    dns_site.set_records({NAME: [PUBLIC4]})
    return dns_site


def check(site, tmp_path, *argv, process=False):
    args = ["-H", NAME, "--server", site.auth.server, "--state-file",
            str(tmp_path / "state.json")] + list(argv)
    if process:
        return run_plugin("check_dyndns_match", args)
    return run_inprocess(dyndns_match, args)


def test_echo_match(site, http_echo, tmp_path):
    echo = http_echo(PUBLIC4 + "\n")
    out = check(site, tmp_path, "--ip-url", echo.url, "-v", process=True)
    assert out.exitcode == 0, out.output
    assert "public_address_time=" in out.status_line
    assert "public address from %s: %s" % (echo.url, PUBLIC4) in out.output
    assert echo.requests == 1


def test_echo_mismatch(site, http_echo, tmp_path):
    echo = http_echo("203.0.113.7")
    out = check(site, tmp_path, "--ip-url", echo.url)
    assert out.exitcode == 1
    assert ("office.dyn.test resolves to 198.51.100.23, public address is 203.0.113.7 "
            "(mismatch for 0s, grace 10m)") in out.status_line


def test_two_echo_sources_agree(site, http_echo, tmp_path):
    one, two = http_echo(PUBLIC4), http_echo("  %s\r\n" % PUBLIC4)
    out = check(site, tmp_path, "--ip-url", one.url, "--ip-url", two.url)
    assert out.exitcode == 0, out.output


def test_two_echo_sources_disagree(site, http_echo, tmp_path):
    one, two = http_echo(PUBLIC4), http_echo("198.51.100.99")
    out = check(site, tmp_path, "--ip-url", one.url, "--ip-url", two.url, process=True)
    assert out.exitcode == 3
    assert out.status_line.startswith(
        "DYNDNS_MATCH UNKNOWN - cannot tell the public IPv4 address: the public address "
        "sources disagree: %s says 198.51.100.23, %s says 198.51.100.99" % (one.url, two.url))


def test_echo_returning_html(site, http_echo, tmp_path):
    echo = http_echo("<!DOCTYPE html>\n<html><head><title>Hotel WiFi login</title></head>"
                     "<body>Please log in</body></html>", content_type="text/html")
    out = check(site, tmp_path, "--ip-url", echo.url, process=True)
    assert out.exitcode == 3
    assert out.status_line.startswith(
        "DYNDNS_MATCH UNKNOWN - cannot tell the public IPv4 address: no source gave a public "
        "IPv4 address: %s: the answer is an HTML page, not an IP address ('<!DOCTYPE html> "
        "<html><head><title>Hotel WiFi login" % echo.url)
    assert len(out.output.splitlines()[0]) < 500


def test_echo_returning_garbage(site, http_echo, tmp_path):
    echo = http_echo(b"\x00\x01|garbage\nsecond line")
    out = check(site, tmp_path, "--ip-url", echo.url)
    assert out.exitcode == 3
    assert "%s: the answer is not an IP address:" % echo.url in out.status_line
    assert out.status_line.count("|") == 1  # only the perfdata separator


def test_echo_error_status(site, http_echo, tmp_path):
    echo = http_echo("busy", status=503)
    out = check(site, tmp_path, "--ip-url", echo.url)
    assert out.exitcode == 3
    assert "%s: HTTP 503 Service Unavailable" % echo.url in out.status_line


def test_echo_unreachable(site, tmp_path):
    url = "http://%s/" % closed_port()
    out = check(site, tmp_path, "--ip-url", url)
    assert out.exitcode == 3
    assert "%s: cannot connect: Connection refused" % url in out.status_line


def test_echo_that_never_answers_within_timeout(site, http_echo, tmp_path):
    echo = http_echo(hang=True)
    started = time.monotonic()
    out = check(site, tmp_path, "--ip-url", echo.url, "-t", "3")
    assert time.monotonic() - started < 3 + 1
    assert out.exitcode == 3, out.output
    assert "%s: no answer within" % echo.url in out.status_line


def test_one_of_three_echo_sources_failing(site, http_echo, tmp_path):
    one, bad, three = http_echo(PUBLIC4), http_echo("<html></html>"), http_echo(PUBLIC4)
    out = check(site, tmp_path, "--ip-url", one.url, "--ip-url", bad.url, "--ip-url", three.url)
    assert out.exitcode == 1, out.output
    assert "1 of 3 address sources failed: %s: the answer is an HTML page" % bad.url \
        in out.status_line


def test_fetch_echo_normalises_ipv6(http_echo):
    echo = http_echo("2001:DB8:0:0::0001\n")
    reading = publicip.fetch_echo(echo.url, timeout=2)
    assert reading.error is None and reading.addresses == ["2001:db8::1"]
    assert reading.seconds > 0


def test_fetch_echo_refuses_a_long_body(http_echo):
    echo = http_echo("1" * 5000)
    reading = publicip.fetch_echo(echo.url, timeout=2)
    assert "longer than 1024 bytes" in reading.error


def test_loopback_interface_has_no_global_address(site, tmp_path):
    out = check(site, tmp_path, "--interface", "lo")
    assert out.exitcode == 3
    assert "interface lo has no global address" in out.status_line


def test_real_interfaces_are_read():
    import psutil

    for name in psutil.net_if_addrs():
        reading = publicip.interface_addresses(name)
        assert reading.error or reading.addresses


def test_https_to_a_plain_http_echo_is_a_tls_error(http_echo):
    echo = http_echo(PUBLIC4)
    reading = publicip.fetch_echo(echo.url.replace("http://", "https://"), timeout=2)
    assert reading.error.startswith("https://127.0.0.1:")
    assert ": TLS error: " in reading.error and "SSLError" not in reading.error


def test_echo_services_are_asked_at_the_same_time(site, http_echo, tmp_path):
    """Two services that never answer and one that does: all three are asked at once, so
    the dead ones cost one share of the time, not two, and are named."""
    dead1, good, dead2 = http_echo(hang=True), http_echo(PUBLIC4), http_echo(hang=True)
    started = time.monotonic()
    out = check(site, tmp_path, "--ip-url", dead1.url, "--ip-url", good.url, "--ip-url",
                dead2.url, "-t", "4")
    elapsed = time.monotonic() - started
    assert out.exitcode == 1, out.output
    assert "2 of 3 address sources failed: %s: no answer within" % dead1.url in out.status_line
    assert "%s: no answer within" % dead2.url in out.status_line
    assert "resolves to 198.51.100.23, the public address" in out.status_line
    assert elapsed < 4 * 0.5 + 1, elapsed  # one share of the time (half), not two
