"""check_tls_expiry --dane and --ari: the matching of TLSA records against real chains of
the test CA, the RFC 9773 certificate identifier, the parsing of the CA's answers, the
judgement on plain data, and the cache. No network here (the peers are in
tests/integration/test_tls_expiry_dane.py and test_tls_expiry_ari.py)."""
import datetime
import hashlib
import os

import nagiosplugin
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from lab.peers import FIXTURES
from osop_checks import state
from osop_checks.checks import tls_expiry
from osop_checks.sources import ari, dane

NOW = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.timezone.utc)
UTC = datetime.timezone.utc


def settings(*argv):
    return tls_expiry.DaneAriSettings(tls_expiry.build_parser().parse_args(
        ["-H", "example.org"] + list(argv)))


# -- DANE ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(tls_ca):
    """The chain a server sends (leaf, intermediate) as DER, and another leaf's."""
    issued = tls_ca.issue("dane-leaf", names=("mail.example.org",), ips=())
    other = tls_ca.issue("dane-other", names=("mail.example.org",), ips=())
    return ([c.public_bytes(Encoding.DER) for c in issued.chain],
            other.cert.public_bytes(Encoding.DER))


def spki(der):
    return x509.load_der_x509_certificate(der).public_key().public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def test_tlsa_name():
    assert dane.tlsa_name("mx.example.org", 25) == "_25._tcp.mx.example.org."
    assert dane.tlsa_name("mx.example.org.", 443) == "_443._tcp.mx.example.org."


@pytest.mark.parametrize("selector, mtype", [(s, m) for s in (0, 1) for m in (0, 1, 2)])
def test_every_selector_and_matching_type(served, selector, mtype):
    chain, other = served
    for usage, position in ((3, 0), (2, 1)):
        data = chain[position] if selector == 0 else spki(chain[position])
        data = {0: data, 1: hashlib.sha256(data).digest(),
                2: hashlib.sha512(data).digest()}[mtype]
        record = dane.Record(usage, selector, mtype, data)
        assert dane.compare([record], chain)[0].position == position
        assert dane.compare([record], [other])[0].position is None


def test_ee_matches_the_leaf_only_and_ta_never_the_leaf(served):
    chain, _ = served
    leaf = hashlib.sha256(spki(chain[0])).digest()
    issuer = hashlib.sha256(spki(chain[1])).digest()
    assert dane.compare([dane.Record(2, 1, 1, leaf)], chain)[0].position is None
    assert dane.compare([dane.Record(3, 1, 1, issuer)], chain)[0].position is None


def test_pkix_usages_are_not_checked(served):
    chain, _ = served
    record = dane.Record(1, 1, 1, hashlib.sha256(spki(chain[0])).digest())
    assert not record.usable
    assert dane.compare([record], chain)[0].position is None


def lookup(records=(), validated=True, kind="ok", error=None):
    return dane.Lookup("_25._tcp.mx.example.org.", kind, list(records), "127.0.0.1:53",
                       validated, "DNSSEC-validated by 127.0.0.1:53 (AD bit, resolver on "
                       "loopback)" if validated else "no AD bit in the answer of 192.0.2.53",
                       error)


RECORD = dane.Record(3, 1, 1, bytes(range(32)))


def result(records=(RECORD,), positions=(0,), **kwargs):
    found = lookup(records, **kwargs)
    return tls_expiry.DaneResult(found, [dane.Comparison(r, p)
                                         for r, p in zip(records, positions)])


def test_a_matching_record_is_ok():
    assert tls_expiry.dane_findings(result(), settings("--dane")) == []


def test_no_record_matching_is_critical_naming_them():
    other = dane.Record(2, 0, 2, bytes(64))
    [(state, words)] = tls_expiry.dane_findings(
        result((RECORD, other), (None, None)), settings("--dane"))
    assert state == nagiosplugin.Critical
    assert words == ("DANE: TLSA mismatch, no record of _25._tcp.mx.example.org. matches the "
                     "served chain (3 1 1 0001020304050607…; 2 0 2 0000000000000000…)")


@pytest.mark.parametrize("found, words", [
    (result(validated=False), "DANE: TLSA of _25._tcp.mx.example.org. not DNSSEC-validated: "
                              "no AD bit in the answer of 192.0.2.53"),
    (result((), (), kind="nodata", error="_25._tcp.mx.example.org. has no TLSA record"),
     "DANE: _25._tcp.mx.example.org. has no TLSA record (DNSSEC-validated)"),
    (result((dane.Record(1, 1, 1, bytes(32)),), (None,)),
     "DANE: no usable TLSA record at _25._tcp.mx.example.org. (1 1 1 0000000000000000…; "
     "only usages 2 and 3 are checked)"),
    (result((), (), kind="servfail", error="DNS server 127.0.0.1 failed"),
     "DANE: no TLSA answer for _25._tcp.mx.example.org.: DNS server 127.0.0.1 failed"),
    (tls_expiry.DaneResult(error="no host name for TLSA records (192.0.2.1 is an address: "
                                 "give --sni or a name)"),
     "DANE: no host name for TLSA records (192.0.2.1 is an address: give --sni or a name)"),
])
def test_no_validated_answer_is_unknown_or_the_chosen_state(found, words):
    assert tls_expiry.dane_findings(found, settings("--dane")) == [
        (nagiosplugin.Unknown, words)]
    assert tls_expiry.dane_findings(found, settings("--dane", "--dane-unknown", "warning")) \
        == [(nagiosplugin.Warn, words)]


def test_an_unvalidated_matching_answer_is_never_ok():
    assert tls_expiry.dane_findings(result(validated=False), settings("--dane"))[0][0] \
        == nagiosplugin.Unknown
    with pytest.raises(SystemExit):
        tls_expiry.build_parser().parse_args(["-H", "x.org", "--dane-unknown", "ok"])


# -- ARI ----------------------------------------------------------------------------------

def rfc_example():
    """The example certificate of RFC 9773 Appendix A (serial 0x87654321: a leading zero)."""
    with open(os.path.join(FIXTURES, "ari", "rfc9773-appendix-a-example-constructed.pem"),
              "rb") as handle:
        return x509.load_pem_x509_certificate(handle.read()).public_bytes(Encoding.DER)


def test_certificate_id_of_the_rfc_example():
    assert ari.certificate_id(rfc_example()) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"


def test_certificate_without_aki_has_no_id(served):
    chain, _ = served
    try:
        x509.load_der_x509_certificate(chain[0]).extensions.get_extension_for_class(
            x509.AuthorityKeyIdentifier)
        pytest.skip("the test CA writes an Authority Key Identifier now")
    except x509.ExtensionNotFound:
        pass
    with pytest.raises(ari.AriError, match="no Authority Key Identifier"):
        ari.certificate_id(chain[0])


def test_parse_renewal_info_as_go_writes_it():
    start, end, explanation = ari.parse_renewal_info(
        b'{"suggestedWindow": {"start": "2026-12-05T10:59:59.123456789Z", '
        b'"end": "2026-12-07T10:59:59.123456789+00:00"}, "explanationURL": "https://x/y"}')
    assert start == datetime.datetime(2026, 12, 5, 10, 59, 59, 123456, tzinfo=UTC)
    assert end == datetime.datetime(2026, 12, 7, 10, 59, 59, 123456, tzinfo=UTC)
    assert explanation == "https://x/y"


@pytest.mark.parametrize("body, words", [
    (b"<html>", "not a renewal information object"),
    (b'{"suggestedWindow": {"start": "2026-12-05"}}', "not a renewal information object"),
    (b'{"suggestedWindow": {"start": "2026-12-07T00:00:00Z", "end": "2026-12-05T00:00:00Z"}}',
     "ends .* before it starts"),
])
def test_parse_renewal_info_refuses_garbage(body, words):
    with pytest.raises(ari.AriError, match=words):
        ari.parse_renewal_info(body)


@pytest.mark.parametrize("header, seconds", [
    (None, 6 * 3600), ("", 6 * 3600), ("garbage", 6 * 3600), ("21600", 21600),
    ("5", 60), ("999999", 86400), ("Sun, 06 Dec 2026 13:00:00 GMT", 3600),
])
def test_retry_after_is_held_between_a_minute_and_a_day(header, seconds):
    assert ari.retry_after(header, NOW.timestamp()) == seconds


def renewal(start_days, end_days, **kwargs):
    return ari.Renewal("https://ca/renewal-info/x.y", "x.y",
                       NOW + datetime.timedelta(days=start_days),
                       NOW + datetime.timedelta(days=end_days), **kwargs)


def test_before_the_window_nothing_to_say():
    assert tls_expiry.ari_findings(renewal(3, 5), settings("--ari", "https://ca/d"), NOW) == []


def test_inside_the_window_warns_since_when():
    assert tls_expiry.ari_findings(renewal(-1, 1), settings(), NOW) == [
        (nagiosplugin.Warn, "ARI: the CA suggests renewing since 2026-12-05 12:00:00Z "
                            "(window until 2026-12-07 12:00:00Z)")]


def test_past_the_window_is_critical():
    assert tls_expiry.ari_findings(renewal(-3, -2), settings(), NOW) == [
        (nagiosplugin.Critical, "ARI: the CA's suggested renewal window ended 2 days ago "
                                "(2026-12-04 12:00:00Z): renew now")]


def test_no_renewal_information_takes_the_chosen_state():
    missing = ari.Renewal("https://ca/d", error="https://ca/d: HTTP 404 Not Found")
    assert tls_expiry.ari_findings(missing, settings(), NOW) == [
        (nagiosplugin.Unknown, "ARI: no renewal information: https://ca/d: HTTP 404 Not Found")]
    assert tls_expiry.ari_findings(missing, settings("--ari-unknown", "ok"), NOW)[0][0] \
        == nagiosplugin.Ok


class Subject:
    label = "www.example.org:443"
    dane = None

    def __init__(self, found):
        self.renewal = found


def test_long_output_names_the_window_and_the_explanation():
    lines = tls_expiry.dane_ari_details(Subject(renewal(
        -1, 1, explanation="https://ca/incident", asked_at=NOW.timestamp(), cached=True)), NOW)
    assert lines == [
        "www.example.org:443 ARI: the CA suggests renewing between 2026-12-05 12:00:00Z and "
        "2026-12-07 12:00:00Z (https://ca/renewal-info/x.y, cached answer of "
        "2026-12-06 12:00:00Z)",
        "www.example.org:443 ARI: explanation https://ca/incident"]


def test_cache_fresh_until_retry_after_then_the_ca_is_asked(tmp_path):
    """A fresh cached answer is used without asking; a stale one is used when the CA does
    not answer (here: nothing listens on the directory's port), and says so."""
    der = rfc_example()
    cert_id = ari.certificate_id(der)
    directory = "http://127.0.0.1:9/directory"  # discard port: refused

    def cache_for(cid):
        return state.Cache(str(tmp_path), "tls_expiry_ari", [directory, cid], "the CA")

    kept = ari.Renewal("http://127.0.0.1:9/renewal-info/" + cert_id, cert_id,
                       NOW, NOW + datetime.timedelta(days=2), "https://ca/why",
                       retry_at=NOW.timestamp() + 3600, asked_at=NOW.timestamp() - 60)
    cache_for(cert_id).store(["renewalInfo", 1], {"renewal": kept.to_json()})
    fresh = ari.renewal_info(directory, der, cache_for, NOW.timestamp())
    assert fresh.cached and fresh.error is None and fresh.start == NOW
    stale = ari.renewal_info(directory, der, cache_for, NOW.timestamp() + 7200)
    assert stale.cached and stale.start == NOW and "cannot connect" in stale.error
    none = ari.renewal_info(directory, der, None, NOW.timestamp())
    assert none.start is None and "cannot connect" in none.error


def test_a_trust_anchor_the_chain_does_not_lead_to_is_no_match(served, tls_ca):
    """A server that sends the published intermediate above a leaf it did not sign (the
    intermediate is public: anyone can send it) does not match its DANE-TA record."""
    chain, _ = served
    stranger = tls_ca.issue("dane-stranger", self_signed=True).cert.public_bytes(Encoding.DER)
    record = dane.Record(2, 0, 1, hashlib.sha256(chain[1]).digest())
    assert dane.compare([record], chain)[0].position == 1
    [forged] = dane.compare([record], [stranger, chain[1]])
    assert forged.position is None
    assert forged.unlinked == "certificate #1 is not signed by #2"


def test_dane_options_need_dane():
    args = tls_expiry.build_parser().parse_args(["-H", "x.org", "--dns-server", "127.0.0.1"])
    with pytest.raises(tls_expiry.cli.UsageError, match="go with --dane"):
        tls_expiry.build_check(args, fetch=None)  # refused before any connection


def test_no_time_left_is_an_answer_not_a_crash(tls_ca):
    """The handshakes used the whole --timeout: the CA is not asked, and says why."""
    from osop_checks import deadline

    deadline.start(deadline.MARGIN / 2)  # less than the margin kept back: nothing left now
    missing = ari.renewal_info("https://ca.example/dir", rfc_example(), None, NOW.timestamp())
    assert missing.start is None and "no time left" in missing.error


@pytest.mark.parametrize("ad, server, trust_ad, validated, words", [
    (True, ("127.0.0.1", 53), False, True, "resolver on loopback"),
    (True, ("::1", 5353), False, True, "resolver on loopback"),
    (True, ("192.0.2.53", 53), False, False, "the path to it is not trusted"),
    (True, ("192.0.2.53", 53), True, True, "trusted path stated"),
    (False, ("127.0.0.1", 53), True, False, "no AD bit in the answer of 127.0.0.1"),
])
def test_the_ad_bit_counts_only_over_a_trusted_path(ad, server, trust_ad, validated, words):
    found, why = dane.validation(ad, server, trust_ad)
    assert found is validated and words in why
