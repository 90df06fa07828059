"""check_tls_expiry's revocation checks against real peers on loopback (lab/peers/tls.py
RevocationPKI): a test CA whose CRLs are served over HTTP, TLS servers, a black hole as a
CRL server that never answers, openssl s_server stapling an OCSP answer, openssl ocsp."""
import contextlib
import time

import pytest

from lab.peers import faked_clock, run_inprocess, run_plugin
from lab.peers.tls import RevocationPKI
from osop_checks.checks import tls_expiry

pytestmark = pytest.mark.peer


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    with contextlib.ExitStack() as stack:
        yield RevocationPKI(stack, str(tmp_path_factory.mktemp("revocation")))


def test_a_good_chain_is_ok_and_says_where_revocation_was_read(pki):
    outcome = run_inprocess(tls_expiry, pki.args("good"))
    assert outcome.exitcode == 0, outcome.output
    lines = outcome.output.splitlines()
    assert "revocation: good per the CRL %s (fetched now" % pki.http.url("issuing.crl") \
        in lines[2]
    assert "revocation: good per the CRL %s" % pki.http.url("root.crl") in lines[3]
    assert "revocation: not published (the trust anchor)" in lines[4]


def test_a_revoked_leaf_is_critical_with_serial_date_and_reason(pki):
    outcome = run_inprocess(tls_expiry, pki.args("revoked"))
    assert outcome.exitcode == 2, outcome.output
    serial = "%X" % pki.leaves["revoked"].cert.serial_number
    assert "certificate REVOKED 20" in outcome.status_line
    assert "(keyCompromise), serial %s, per the CRL %s" % (
        serial, pki.http.url("issuing.crl")) in outcome.status_line


def test_a_revoked_intermediate_is_critical(pki):
    outcome = run_inprocess(tls_expiry, pki.args("under_revoked_ca"))
    assert outcome.exitcode == 2, outcome.output
    assert "intermediate 'osop Revoked CA' REVOKED " in outcome.status_line
    assert "per the CRL %s" % pki.http.url("root.crl") in outcome.status_line
    assert "certificate REVOKED" not in outcome.status_line


def test_a_crl_server_down_with_and_without_a_valid_cached_crl(pki):
    first = run_inprocess(tls_expiry, pki.args("cached", "cache-kept"))
    assert first.exitcode == 0, first.output
    pki.cached_http.stop()
    # two hours on, the cached copy is due for a refresh; its server is gone
    later = run_plugin("check_tls_expiry", pki.args("cached", "cache-kept"),
                       wrap=faked_clock("+2h"))
    assert later.exitcode == 0, later.output
    assert "revocation: good per the CRL %s (its server failed (cannot connect: " % \
        pki.cached_http.url("intermediate.crl") in later.output
    assert "the copy cached 20" in later.output and ", valid until 20" in later.output
    never = run_inprocess(tls_expiry, pki.args("cached", "cache-empty"))
    assert never.exitcode == 1, never.output
    assert "certificate revocation not known: CRL %s unreachable: cannot connect" % \
        pki.cached_http.url("intermediate.crl") in never.status_line
    assert run_inprocess(tls_expiry, pki.args("cached", "cache-empty") + [
        "--revocation-unknown", "critical"]).exitcode == 2


def test_a_crl_server_that_never_answers_is_a_warning_within_the_timeout(pki):
    started = time.monotonic()
    outcome = run_plugin("check_tls_expiry", pki.args("black_hole") + ["-t", "4"])
    took = time.monotonic() - started
    assert outcome.exitcode == 1, outcome.output
    assert "certificate revocation not known: CRL http://127.0.0.1:%d/x.crl unreachable: " \
           "no answer within" % pki.hole.port in outcome.status_line
    assert took < 4.5, took


@pytest.mark.parametrize("name", ["stapled", "stapled12"])  # TLS 1.3, TLS 1.2
def test_a_stapled_revoked_answer_is_critical_without_network(pki, name):
    started = time.monotonic()
    outcome = run_inprocess(tls_expiry, pki.args(name) + ["-t", "20"])
    assert time.monotonic() - started < 5  # the leaf's CRL (a black hole) was not asked
    assert outcome.exitcode == 2, outcome.output
    serial = "%X" % pki.leaves["stapled"].cert.serial_number
    assert "certificate REVOKED 20" in outcome.status_line
    assert "(keyCompromise), serial %s, per the stapled OCSP" % serial in outcome.status_line


def test_a_must_staple_certificate_served_without_a_staple_is_critical(pki):
    outcome = run_inprocess(tls_expiry, pki.args("must_staple"))
    assert outcome.exitcode == 2, outcome.output
    assert "certificate demands a stapled OCSP answer (must-staple) but the server sent " \
           "none" in outcome.status_line
    assert run_inprocess(tls_expiry, pki.args("must_staple") + [
        "--revocation", "off"]).exitcode == 0


def test_the_ocsp_responder_is_asked_with_revocation_ocsp(pki):
    outcome = run_inprocess(tls_expiry, pki.args("ocsp_revoked") + ["--revocation", "ocsp"])
    assert outcome.exitcode == 2, outcome.output
    serial = "%X" % pki.leaves["ocsp_revoked"].cert.serial_number
    assert "(keyCompromise), serial %s, per the OCSP %s" % (serial, pki.responder.url) \
        in outcome.status_line
    outcome = run_inprocess(tls_expiry, pki.args("ocsp_good") + ["--revocation", "ocsp"])
    assert outcome.exitcode == 0, outcome.output
    assert "revocation: good per the OCSP %s (produced " % pki.responder.url in outcome.output
    # auto asks no responder: the certificate names no CRL, so nothing is published there
    outcome = run_inprocess(tls_expiry, pki.args("ocsp_revoked"))
    assert outcome.exitcode == 0, outcome.output
    assert "revocation: not published" in outcome.output
