"""check_tls_expiry --dane against STARTTLS SMTP servers (lab/peers/tls.py) whose TLSA
records a validating unbound on loopback serves from a zone signed by ldns-signzone, and
from an unsigned zone: lab/peers/unbound.start_dane_site, mail.dane.test after a
certificate rollover (``current`` published with the new key, ``stale`` still with the old
one, ``anchor`` with the issuing intermediate).
"""
import contextlib
import re
import time

import pytest

from lab.peers import need, run_plugin
from lab.peers.unbound import start_dane_site

pytestmark = pytest.mark.peer


@pytest.fixture(scope="module")
def dane_site(tmp_path_factory):
    need("unbound", "ldns-signzone", "ldns-keygen")
    with contextlib.ExitStack() as stack:
        yield start_dane_site(stack, str(tmp_path_factory.mktemp("dane")))


def check(dane_site, port, name="mail.dane.test", *extra):
    ca, ports, resolver = dane_site
    return run_plugin("check_tls_expiry", [
        "-H", "127.0.0.1", "-p", ports[port], "--sni", name, "--starttls", "smtp",
        "--ca-file", ca.ca_path, "--dane", "--dns-server", resolver.server, "-v"]
        + list(extra))


def test_matching_record_is_ok(dane_site):
    outcome = check(dane_site, "current")
    assert outcome.exitcode == 0, outcome.output
    assert re.search(r"DANE: TLSA 3 1 1 [0-9a-f]{64} matches certificate", outcome.output)
    assert "DNSSEC-validated by 127.0.0.1:" in outcome.output


def test_trust_anchor_record_survives_the_rollover(dane_site):
    outcome = check(dane_site, "anchor")
    assert outcome.exitcode == 0, outcome.output
    assert "matches intermediate 'osop Test Intermediate CA'" in outcome.output


def test_mismatch_after_rollover_is_critical(dane_site):
    outcome = check(dane_site, "stale")
    assert outcome.exitcode == 2, outcome.output
    assert re.search(r"^TLS_EXPIRY CRITICAL - \S+ \(smtp\) DANE: TLSA mismatch, no record of "
                     r"_\d+\._tcp\.mail\.dane\.test\. matches the served chain "
                     r"\(3 1 1 [0-9a-f]{16}…\)", outcome.status_line), outcome.output


def test_unsigned_answer_is_never_ok(dane_site):
    outcome = check(dane_site, "current", "mail.unsigned.test")
    assert outcome.exitcode == 3, outcome.output
    assert "not DNSSEC-validated: no AD bit in the answer of 127.0.0.1:" in outcome.status_line
    warned = check(dane_site, "current", "mail.unsigned.test", "--dane-unknown", "warning")
    assert warned.exitcode == 1, warned.output
    refused = check(dane_site, "current", "mail.unsigned.test", "--dane-unknown", "ok")
    assert refused.exitcode == 3 and "'ok' is not one of" in refused.output, refused.output


def test_each_endpoint_its_own_verdict(dane_site):
    ca, ports, resolver = dane_site
    outcome = run_plugin("check_tls_expiry", [
        "-H", "127.0.0.1", "-p", ports["current"], "--sni", "mail.dane.test", "--starttls",
        "smtp", "--ca-file", ca.ca_path, "--dane", "--dns-server", resolver.server,
        "--endpoint", "mail.dane.test@127.0.0.1:%d/smtp" % ports["stale"]])
    assert outcome.exitcode == 2, outcome.output  # the stale one; the current one is fine
    assert "1 other ok" in outcome.status_line



def test_a_resolver_that_never_answers_is_unknown_within_the_timeout(dane_site,
                                                                     blackhole_udp):
    ca, ports, _ = dane_site
    started = time.monotonic()
    outcome = run_plugin("check_tls_expiry", [
        "-H", "127.0.0.1", "-p", ports["current"], "--sni", "mail.dane.test", "--starttls",
        "smtp", "--ca-file", ca.ca_path, "--dane", "--dns-server",
        "127.0.0.1:%d" % blackhole_udp.port, "-t", "4"])
    assert time.monotonic() - started < 6
    assert outcome.exitcode == 3, outcome.output
    assert re.search(r"UNKNOWN - \S+ \(smtp\) DANE: no TLSA answer for _\d+\._tcp\.mail\."
                     r"dane\.test\.: no answer from DNS server 127\.0\.0\.1:\d+ within",
                     outcome.status_line), outcome.output
