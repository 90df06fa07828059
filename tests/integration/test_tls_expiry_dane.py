"""check_tls_expiry --dane against a STARTTLS SMTP server (lab/peers/tls.py) whose TLSA
records a validating unbound on loopback serves from a zone signed by ldns-signzone
(lab/peers/unbound.py), and from an unsigned zone.

mail.dane.test rolled its certificate over from ``old`` to ``new``: the SMTP server on
``current`` is published with the TLSA of the new key (3 1 1), the one on ``stale`` still
with that of the old key (the rollover forgotten), the one on ``anchor`` with the
intermediate that issued both (2 0 1, which a rollover does not change).
"""
import contextlib
import re

import pytest

from lab.peers import need, need_root, run_plugin
from lab.peers.tls import TestCA, TLSServer
from lab.peers.unbound import ValidatingResolver, tlsa_record

pytestmark = pytest.mark.peer

NAMES = ("mail.dane.test", "mail.unsigned.test")


@pytest.fixture(scope="module")
def dane_site(tmp_path_factory):
    need("unbound", "ldns-signzone", "ldns-keygen")
    need_root()  # unbound runs as the user that starts it; root in CI
    directory = tmp_path_factory.mktemp("dane")
    ca = TestCA(str(directory / "ca"))
    old = ca.issue("old", names=NAMES, ips=())
    new = ca.issue("new", names=NAMES, ips=())
    with contextlib.ExitStack() as stack:
        ports = {name: stack.enter_context(TLSServer(new.chain_path, new.key_path,
                                                     starttls="smtp")).port
                 for name in ("current", "stale", "anchor")}
        dane = ["mail IN A 127.0.0.1",
                tlsa_record("_%d._tcp.mail" % ports["current"], new.cert),
                tlsa_record("_%d._tcp.mail" % ports["stale"], old.cert),
                tlsa_record("_%d._tcp.mail" % ports["anchor"], ca.intermediate,
                            usage=2, selector=0)]
        unsigned = [tlsa_record("_%d._tcp.mail" % ports["current"], new.cert)]
        resolver = stack.enter_context(ValidatingResolver(
            str(directory / "unbound"), {"dane.test.": dane, "unsigned.test.": unsigned},
            signed={"dane.test."}))
        yield ca, ports, resolver


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

