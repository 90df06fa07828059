"""check_tls_expiry's judgement on constructed chains (certificates made by the test CA,
parsed by the real source), with the fetch step injected: no sockets here."""
import datetime
import subprocess
import sys
import threading

import nagiosplugin
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from osop_checks import deadline, runtime
from osop_checks.checks import tls_expiry
from osop_checks.sources import tls

NOW = datetime.datetime.now(datetime.timezone.utc)


def parsed(cert):
    return tls.parse_certificate(cert.public_bytes(Encoding.DER))


@pytest.fixture(scope="module")
def chains(tls_ca):
    """name -> list of tls.Certificate, leaf first, as a server would present them."""
    ca = tls_ca
    short = ca.make_intermediate("Short Intermediate", 5.3)
    made = {
        "valid": ca.issue("c-valid", days=90.3),
        "w": ca.issue("c-w", days=15.3),
        "c": ca.issue("c-c", days=3.1),
        "hours": ca.issue("c-hours", days=0.4),
        "expired": ca.issue("c-expired", days=-2.3),
        "notyet": ca.issue("c-notyet", days=95, not_before=NOW.replace(tzinfo=None)
                           + datetime.timedelta(days=5)),
        "self": ca.issue("c-self", self_signed=True),
        "intermediate_soon": ca.issue("c-int", days=60, issuer=short),
        "weak": ca.issue("c-weak", key_kind="rsa1024", hash_name="sha1", days=700,
                         not_before=NOW.replace(tzinfo=None) - datetime.timedelta(days=100)),
        "wildcard": ca.issue("c-wild", names=("*.example.org", "example.org"), ips=()),
    }
    return {name: [parsed(c) for c in issued.chain] for name, issued in made.items()}


def presenter(chains_by_host, trust=None, version="TLSv1.3", older=(), failures=None):
    """A fetch that 'presents' chains_by_host[host] for an endpoint, no network."""
    def fetch(endpoint, cafile=None, min_version=None, attempt=None):
        if failures and endpoint.host in failures:
            raise failures[endpoint.host]
        chain = chains_by_host[endpoint.host]
        return tls.Presented(endpoint, chain, "192.0.2.1", version, "TLS_AES_128_GCM_SHA256",
                             (trust or {}).get(endpoint.host, tls.Trust()),
                             tls.name_matches(chain[0], endpoint.name),
                             list(older))
    return fetch


def one_address(host, port, family, timeout):
    """A resolver that answers one address for every name (so each stays one endpoint)."""
    return [(4, "192.0.2.1")]


def run(argv, fetch=None, load_file=tls.load_file, now=NOW, resolve=one_address):
    """The Verdict of build_check (no process), and its lines as runtime renders them."""
    args = tls_expiry.build_parser().parse_args(argv)
    verdict = tls_expiry.build_check(args, fetch=fetch or presenter({}), load_file=load_file,
                                     now=now, resolve=resolve)
    return verdict, rendered(verdict)


def rendered(verdict):
    return runtime.render(tls_expiry.NAME, verdict)


def status(lines):
    return lines[0]


# -- endpoints and options ----------------------------------------------------------------

@pytest.mark.parametrize("spec, host, port, starttls, sni", [
    ("www.example.org", "www.example.org", 443, None, None),
    ("mail.example.org:587", "mail.example.org", 587, "smtp", None),
    ("mail.example.org:465", "mail.example.org", 465, None, None),
    ("mail.example.org/imap", "mail.example.org", 143, "imap", None),
    ("ldap.lan:389", "ldap.lan", 389, "ldap", None),
    ("db:5432", "db", 5432, "postgres", None),
    ("chat:5222", "chat", 5222, "xmpp", None),
    ("ftp.lan:21", "ftp.lan", 21, "ftp", None),
    ("pop.lan:110", "pop.lan", 110, "pop3", None),
    ("odd:25/none", "odd", 25, None, None),
    ("[2001:db8::1]:8443", "2001:db8::1", 8443, None, None),
    ("[::1]", "::1", 443, None, None),
    ("2001:db8::5", "2001:db8::5", 443, None, None),
    ("www.example.org@192.0.2.10:443", "192.0.2.10", 443, None, "www.example.org"),
])
def test_parse_endpoint(spec, host, port, starttls, sni):
    endpoint = tls_expiry.parse_endpoint(spec)
    assert (endpoint.host, endpoint.port, endpoint.starttls, endpoint.sni) == (
        host, port, starttls, sni)


@pytest.mark.parametrize("spec", ["", "host:0", "host:x", "host:443/gopher", "@host",
                                  "[::1]x", ":443"])
def test_parse_endpoint_rejects(spec):
    with pytest.raises(ValueError):
        tls_expiry.parse_endpoint(spec)


def test_labels_name_host_port_and_protocol():
    assert tls_expiry.make_endpoint("mail.example.org", 587).label == \
        "mail.example.org:587 (smtp)"
    assert tls.Endpoint("::1", 443).label == "[::1]:443"


@pytest.mark.parametrize("argv, words", [
    ([], "nothing to check"),
    (["-p", "443", "--endpoint", "x"], "go with -H"),
    (["--endpoint", "host:99999"], "not a port"),
    (["-H", "x", "-w", "soon"], "not a duration in days"),
    (["-H", "x", "--untrusted", "maybe"], "is not one of ok, warning, critical"),
    (["-H", "x", "-4", "-6"], "not allowed with"),
    (["--endpoint-file", "/nonexistent/endpoints"], "cannot read the endpoint file"),
    (["-H", "x", "--ca-file", "/nonexistent/ca.pem"], "cannot read the --ca-file"),
])
def test_usage_errors_are_one_unknown_line(argv, words):
    from lab.peers import run_inprocess

    outcome = run_inprocess(tls_expiry, argv)
    assert outcome.exitcode == 3
    assert outcome.output.startswith("TLS_EXPIRY UNKNOWN - ")
    assert words in outcome.output
    assert len(outcome.output.strip().splitlines()) == 1


def test_thresholds_in_days_and_hours():
    args = tls_expiry.build_parser().parse_args(["-H", "x", "-w", "36h", "-c", "12h"])
    assert args.warning.start == 1.5 and args.critical.start == 0.5
    args = tls_expiry.build_parser().parse_args(["-H", "x"])
    assert (args.warning, args.critical) == (tls_expiry.DEFAULT_WARNING,
                                             tls_expiry.DEFAULT_CRITICAL)
    args = tls_expiry.build_parser().parse_args(["-H", "x", "-w", "33%", "-c", "10%"])
    assert (args.warning.share, args.warning.cap, args.critical.share) == (0.33, None, 0.1)


@pytest.mark.parametrize("argv, words", [
    (["-w", "0%"], "above 0% and at most 100%"),
    (["-c", "150%"], "above 0% and at most 100%"),
    (["-w", "x%"], "not a percentage"),
    (["-w", "5%", "-c", "10%"], "-w/--warning 5% can never fire"),
    (["-w", "5d", "-c", "10d"], "-w/--warning 5d: can never fire"),
])
def test_threshold_usage_errors(argv, words):
    from lab.peers import run_inprocess

    outcome = run_inprocess(tls_expiry, ["-H", "x"] + argv)
    assert outcome.exitcode == 3 and words in outcome.output, outcome.output


def test_the_same_endpoint_twice_is_checked_once():
    args = tls_expiry.build_parser().parse_args(
        ["-H", "www.example.org", "--endpoint", "www.example.org:443", "--endpoint", "x"])
    assert [e.label for e in tls_expiry.endpoints_from(args)] == ["www.example.org:443",
                                                                  "x:443"]


def test_endpoint_file(tmp_path):
    path = tmp_path / "endpoints"
    path.write_text("# vhosts\nwww.example.org\n\nmail.example.org:587  # submission\n")
    args = tls_expiry.build_parser().parse_args(["--endpoint-file", str(path), "-4"])
    endpoints = tls_expiry.endpoints_from(args)
    assert [e.label for e in endpoints] == ["www.example.org:443",
                                            "mail.example.org:587 (smtp)"]
    assert all(e.family == 4 for e in endpoints)
    path.write_text("good.example\nbad:port\n")
    with pytest.raises(tls_expiry.cli.UsageError, match="line 2"):
        tls_expiry.endpoints_from(tls_expiry.build_parser().parse_args(
            ["--endpoint-file", str(path)]))


# -- expiry -------------------------------------------------------------------------------

@pytest.mark.parametrize("name, state, words", [
    ("valid", nagiosplugin.Ok, "certificate expires in 90 days"),
    ("w", nagiosplugin.Warn, "certificate expires in 15 days"),
    ("c", nagiosplugin.Critical, "certificate expires in 3 days"),
    ("hours", nagiosplugin.Critical, "certificate expires in 10 hours"),  # 0.4d
    ("expired", nagiosplugin.Critical, "certificate expired 2 days ago"),
    ("notyet", nagiosplugin.Critical, "certificate not yet valid (valid from"),
])
def test_expiry_states(chains, name, state, words):
    check, lines = run(["-H", "localhost", "-w", "21d", "-c", "7d"],
                       presenter({"localhost": chains[name]}))
    assert check.state == state
    assert status(lines).startswith("TLS_EXPIRY %s - localhost:443 " % str(state).upper())
    assert words in status(lines)


def test_expired_and_not_yet_valid_are_critical_whatever_the_thresholds(chains):
    for name in ("expired", "notyet"):
        check, lines = run(["-H", "h", "-w=-1000d", "-c=-1000d"], presenter({"h": chains[name]}))
        assert check.state == nagiosplugin.Critical, lines


def test_ok_names_date_and_issuer_and_perfdata(chains):
    check, lines = run(["-H", "localhost"], presenter({"localhost": chains["valid"]}))
    leaf = chains["valid"][0]
    assert check.state == nagiosplugin.Ok
    assert "(%s), issuer osop Test Intermediate CA" % leaf.not_after.strftime("%Y-%m-%d") \
        in status(lines)
    perf = status(lines).split(" | ")[1]
    assert "'localhost:443_days_leaf'=90.3d;21:;7:" in perf
    assert "'localhost:443_days_chain'=90.3d;21:;7:" in perf


def test_intermediate_expiring_before_the_leaf_is_reported(chains):
    check, lines = run(["-H", "h", "-w", "21d", "-c", "7d"],
                       presenter({"h": chains["intermediate_soon"]}))
    assert check.state == nagiosplugin.Critical
    assert "intermediate 'Short Intermediate' expires in 5 days" in status(lines)
    assert "before the leaf" in status(lines)
    assert "'h:443_days_leaf'=60.0d" in status(lines)
    assert "'h:443_days_chain'=5.3d" in status(lines)


def test_long_output_lists_every_chain_element(chains):
    _, lines = run(["-H", "localhost"], presenter({"localhost": chains["valid"]}))
    leaf, intermediate = chains["valid"]
    assert lines[1].startswith("OK: localhost:443, at 192.0.2.1, TLSv1.3 "
                               "TLS_AES_128_GCM_SHA256, chain of 2 presented, trusted, "
                               "name 'localhost' matches")
    assert "#1: subject CN=localhost; SANs DNS:localhost, IP:127.0.0.1; issuer " \
           "CN=osop Test Intermediate CA,O=osop tests; serial %s" % leaf.serial in lines[2]
    assert "notBefore %s" % leaf.not_before.strftime("%Y-%m-%d %H:%M:%SZ") in lines[2]
    assert "notAfter %s" % leaf.not_after.strftime("%Y-%m-%d %H:%M:%SZ") in lines[2]
    assert "#2: subject CN=osop Test Intermediate CA" in lines[3]


# -- trust and names ----------------------------------------------------------------------

@pytest.mark.parametrize("problem, option, default_state", [
    ("untrusted", "--untrusted", nagiosplugin.Critical),
    ("self-signed", "--self-signed", nagiosplugin.Critical),
    ("incomplete", "--incomplete", nagiosplugin.Warn),
])
def test_trust_problems_have_their_own_severity(chains, problem, option, default_state):
    fetch = presenter({"localhost": chains["valid"]},
                      trust={"localhost": tls.Trust(problem, "the reason")})
    check, lines = run(["-H", "localhost"], fetch)
    assert check.state == default_state
    assert problem in status(lines)
    if problem != "self-signed":
        assert "the reason" in status(lines)
    for severity, state in (("warn", nagiosplugin.Warn), ("crit", nagiosplugin.Critical),
                            ("ignore", nagiosplugin.Ok)):
        check, lines = run(["-H", "localhost", option, severity], fetch)
        assert check.state == state, lines


def test_name_mismatch_and_its_severity(chains):
    fetch = presenter({"www.example.org": chains["valid"]})
    check, lines = run(["-H", "www.example.org"], fetch)
    assert check.state == nagiosplugin.Critical
    assert "name mismatch: 'www.example.org' is not among the certificate's names " \
           "(DNS:localhost, IP:127.0.0.1)" in status(lines)
    check, _ = run(["-H", "www.example.org", "--mismatch", "ignore"], fetch)
    assert check.state == nagiosplugin.Ok


def test_sni_is_the_name_matched(chains):
    fetch = presenter({"192.0.2.10": chains["wildcard"]})
    check, lines = run(["-H", "192.0.2.10", "--sni", "www.example.org"], fetch)
    assert check.state == nagiosplugin.Ok, lines
    check, lines = run(["-H", "192.0.2.10"], fetch)
    assert check.state == nagiosplugin.Critical and "'192.0.2.10' is not among" in lines[0]


@pytest.mark.parametrize("name, expected", [
    ("www.example.org", True), ("WWW.Example.Org.", True), ("example.org", True),
    ("a.b.example.org", False), ("example.com", False), ("xexample.org", False),
    ("192.0.2.1", False),
])
def test_name_matches_follows_rfc6125(chains, name, expected):
    assert tls.name_matches(chains["wildcard"][0], name) is expected


def test_ip_names_match_ip_sans_only(chains):
    leaf = chains["valid"][0]
    assert tls.name_matches(leaf, "127.0.0.1")
    assert not tls.name_matches(leaf, "127.0.0.2")


# -- policy -------------------------------------------------------------------------------

def test_policy_checks(chains):
    fetch = presenter({"h": chains["weak"]}, version="TLSv1.1", older=["TLSv1"])
    check, lines = run(["-H", "h", "--mismatch", "ignore", "--min-key-size", "2048",
                        "--max-validity", "398d", "--min-tls-version", "1.2"], fetch)
    assert check.state == nagiosplugin.Warn
    for words in ("certificate has a weak key (RSA 1024 bits, minimum 2048)",
                  "certificate is signed with SHA-1",
                  "certificate is valid for 800 days, longer than 398",
                  "negotiated TLSv1.1, below TLS 1.2", "accepts TLSv1, below TLS 1.2"):
        assert words in status(lines)
    check, _ = run(["-H", "h", "--mismatch", "ignore", "--min-key-size", "2048",
                    "--weak-key", "crit", "--weak-signature", "ignore"], fetch)
    assert check.state == nagiosplugin.Critical
    check, _ = run(["-H", "h", "--mismatch", "ignore", "--weak-key", "ok",
                    "--max-validity", "398d", "--policy", "crit",
                    "--weak-signature", "ignore"], fetch)
    assert check.state == nagiosplugin.Critical


def test_weak_keys_and_sha1_warn_by_default_the_rest_of_the_policy_is_off(chains):
    check, lines = run(["-H", "h", "--mismatch", "ignore"], presenter({"h": chains["weak"]}))
    assert check.state == nagiosplugin.Warn
    assert "certificate has a weak key (RSA 1024 bits, minimum 2048)" in status(lines)
    assert "SHA-1" in status(lines) and "longer than" not in status(lines)
    check, _ = run(["-H", "h", "--mismatch", "ignore", "--weak-signature", "ignore",
                    "--weak-key", "ok"], presenter({"h": chains["weak"]}))
    assert check.state == nagiosplugin.Ok
    check, _ = run(["-H", "h", "--mismatch", "ignore", "--weak-signature", "ignore",
                    "--min-key-size", "1024"], presenter({"h": chains["weak"]}))
    assert check.state == nagiosplugin.Ok


def test_a_chain_the_default_security_level_refuses_is_not_called_trusted(chains):
    refused = tls.Trust(refused="OpenSSL at its default security level refuses the chain: "
                                "EE certificate key too weak")
    check, lines = run(["-H", "localhost"], presenter({"localhost": chains["weak"]},
                                                      trust={"localhost": refused}))
    assert check.state == nagiosplugin.Warn
    assert "trusted," not in lines[1].replace("not trusted", "")
    assert "not trusted (OpenSSL at its default security level refuses the chain: EE " \
           "certificate key too weak; it verifies at security level 0 only)" in lines[1]
    # a refusal the weak key and signature findings do not explain is a finding itself
    legacy = tls.Trust(refused="no handshake at OpenSSL's default security level (failed: "
                               "no shared cipher)")
    check, lines = run(["-H", "localhost"], presenter({"localhost": chains["valid"]},
                                                      trust={"localhost": legacy}))
    assert check.state == nagiosplugin.Warn
    assert "no handshake at OpenSSL's default security level" in status(lines)
    assert run(["-H", "localhost", "--weak-key", "ok"], presenter(
        {"localhost": chains["valid"]}, trust={"localhost": legacy}))[0].state == \
        nagiosplugin.Ok


def test_elliptic_curves_count_as_their_rsa_strength(chains):
    fetch = presenter({"localhost": chains["valid"]})  # P-256 all along the chain
    assert run(["-H", "localhost", "--min-key-size", "3072"], fetch)[0].state == \
        nagiosplugin.Ok
    assert run(["-H", "localhost", "--min-key-size", "4096"], fetch)[0].state == \
        nagiosplugin.Warn


# -- several endpoints, failures ----------------------------------------------------------

def test_several_endpoints_each_with_its_own_result(chains):
    fetch = presenter({"a": chains["valid"], "b": chains["w"], "c": chains["valid"]},
                      failures={"d": tls.ConnectionFailed("connect", "connection refused")})
    check, lines = run(["--endpoint", "a", "--endpoint", "b:993", "--endpoint", "c:587",
                        "--endpoint", "d", "--mismatch", "ignore"], fetch)
    assert check.state == nagiosplugin.Critical
    assert status(lines).startswith(
        "TLS_EXPIRY CRITICAL - d:443 connect failed: connection refused; "
        "b:993 certificate expires in 15 days")
    assert "; 2 others ok" in status(lines)
    assert "'c:587_days_leaf'" in status(lines)
    # long output: worst first, each endpoint on its own line with its chain below
    assert [line.replace(",", "").split(" ")[:2] for line in lines[1:] if line[0].isupper()] == [
        ["CRITICAL:", "d:443"], ["WARNING:", "b:993"], ["OK:", "a:443"],
        ["OK:", "c:587"]]


def test_all_ok_names_the_soonest(chains):
    fetch = presenter({"a": chains["valid"], "b": chains["w"]})
    check, lines = run(["--endpoint", "a", "--endpoint", "b", "--mismatch", "ignore",
                        "-w", "10d", "-c", "5d"], fetch)
    assert check.state == nagiosplugin.Ok
    assert status(lines).startswith("TLS_EXPIRY OK - 2 endpoints ok, soonest: b:443 "
                                    "certificate expires in 15 days")


@pytest.mark.parametrize("error, words", [
    (tls.ConnectionFailed.timeout("TLS handshake"),
     "h:443 no answer within the --timeout during TLS handshake"),
    (tls.ConnectionFailed("STARTTLS", "refused by the server: 502 no"),
     "h:443 STARTTLS failed: refused by the server: 502 no"),
    (ConnectionResetError(104, "Connection reset by peer"),
     "h:443 starting failed: the server closed the connection (not TLS, or it refused "
     "our TLS versions and ciphers)"),
])
def test_connection_failures_are_critical_naming_the_stage(error, words):
    check, lines = run(["-H", "h"], presenter({}, failures={"h": error}))
    assert check.state == nagiosplugin.Critical
    assert status(lines) == "TLS_EXPIRY CRITICAL - " + words


def test_a_bug_in_fetch_is_unknown_not_critical():
    def broken(endpoint, **_):
        raise KeyError("oops")

    outcome = runtime.execute(tls_expiry.NAME, tls_expiry.build_parser,
                              lambda a: tls_expiry.build_check(a, fetch=broken), ["-H", "h"])
    assert outcome.exitcode == 3
    assert outcome.status_line.startswith("TLS_EXPIRY UNKNOWN - internal error: KeyError")


def test_endpoints_run_concurrently():
    endpoints = [tls.Endpoint("h%d" % i, 443) for i in range(20)]
    barrier = threading.Barrier(len(endpoints), timeout=10)

    def fetch(endpoint, attempt=None, **_):
        barrier.wait()  # passes only when all 20 are running at once
        raise tls.ConnectionFailed("connect", "done")

    attempts = tls.fetch_all(endpoints, fetch=fetch)
    assert [a.error.reason for a in attempts] == ["done"] * 20


def test_a_stuck_endpoint_is_reported_with_its_stage_at_the_deadline():
    release = threading.Event()

    def fetch(endpoint, attempt=None, **_):
        attempt.stage = "STARTTLS"
        release.wait(10)
        raise tls.ConnectionFailed("late", "too late")

    deadline.start(1.0)  # 0.5 s usable after the margin
    try:
        attempts = tls.fetch_all([tls.Endpoint("h", 25, "smtp")], fetch=fetch)
    finally:
        deadline.start(None)
        release.set()
    assert (attempts[0].error.stage, attempts[0].error.reason) == (
        "STARTTLS", "no answer within the --timeout")


# -- files --------------------------------------------------------------------------------

def test_files_pem_bundle_der_and_pkcs7(tls_ca, tmp_path):
    from cryptography.hazmat.primitives.serialization import pkcs7

    issued = tls_ca.issue("f-bundle", days=40.3)
    bundle = issued.chain_path  # leaf + intermediate, PEM
    der = tls_ca.write("f-leaf.der", [issued.cert], der=True)
    p7 = tmp_path / "chain.p7b"
    p7.write_bytes(pkcs7.serialize_certificates(issued.chain, Encoding.DER))
    for path, count in ((bundle, 2), (der, 1), (str(p7), 2)):
        certs = tls.load_file(path)
        assert len(certs) == count
        assert certs[0].subject == "CN=localhost"
    check, lines = run(["--file", bundle, "--file", der, "-w", "45d", "-c", "7d"])
    assert check.state == nagiosplugin.Warn
    assert "%s certificate 'localhost' (#1) expires in 40 days" % bundle in status(lines)
    assert "%s certificate expires in 40 days" % der in status(lines)


def test_a_file_is_parsed_once_per_change_of_its_bytes(tls_ca, tmp_path, monkeypatch):
    """--file keeps what it read in the cache under the file's sha256: an unchanged file
    is not parsed again (no cryptography at all: its import is most of such a run), a
    renewed one is; the record kept gives back the very certificates."""
    from osop_checks import state

    path = tmp_path / "chain.pem"
    path.write_bytes(open(tls_ca.issue("f-cached", days=30.3).chain_path, "rb").read())
    cache = state.Cache(str(tmp_path), "tls_expiry-file", {"file": str(path)}, "cryptography")
    first = tls.load_file(str(path), cache)
    assert [c.to_json() for c in first] == [tls.Certificate.from_json(c.to_json()).to_json()
                                            for c in first]

    def no_parsing(data):
        raise AssertionError("parsed again")

    with monkeypatch.context() as patched:
        patched.setattr(tls, "parse_bundle", no_parsing)
        assert tls.load_file(str(path), cache) == first
    path.write_bytes(open(tls_ca.issue("f-renewed", days=90.3).chain_path, "rb").read())
    renewed = tls.load_file(str(path), cache)
    assert renewed[0].not_after > first[0].not_after
    with monkeypatch.context() as patched:
        patched.setattr(tls, "parse_bundle", no_parsing)
        assert tls.load_file(str(path), cache) == renewed


def test_file_problems_are_critical_in_words(tmp_path):
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"not a certificate")
    check, lines = run(["--file", str(garbage), "--file", str(tmp_path / "missing.pem")])
    assert check.state == nagiosplugin.Critical
    assert "%s cannot read the file: no certificate in it (PEM, DER or PKCS#7 expected)" \
        % garbage in status(lines)
    assert "missing.pem cannot read the file: no such file or directory" in status(lines)


def test_perfdata_labels_are_sanitized(tls_ca, tmp_path):
    issued = tls_ca.issue("f-odd", days=40)
    odd = tmp_path / "we'ird=name.pem"
    odd.write_bytes(open(issued.chain_path, "rb").read())
    _, lines = run(["--file", str(odd)])
    perf = status(lines).split(" | ")[1]
    assert "we_ird_name.pem_days_leaf'=" in perf
    assert perf.count("'") == 4


def test_importing_the_check_loads_no_heavy_module():
    code = ("import sys, osop_checks.checks.tls_expiry; "
            "print(sorted(m for m in ('cryptography', 'ssl', 'psutil') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- the shape (issue 19) -----------------------------------------------------------------

def test_endpoints_and_files_are_gathered_in_build_check_not_in_rendering(chains, tmp_path):
    asked = []

    def fetch(endpoint, **options):
        asked.append(endpoint.label)
        return presenter({"h": chains["valid"]})(endpoint, **options)

    def load_file(path):
        asked.append(path)
        return chains["w"]

    args = tls_expiry.build_parser().parse_args(["-H", "h", "--file", "/x.pem"])
    verdict = tls_expiry.build_check(args, fetch=fetch, load_file=load_file, now=NOW)
    assert asked == ["h:443", "/x.pem"]  # once, in build_check
    rendered(verdict)
    assert asked == ["h:443", "/x.pem"]  # and not again when the verdict is rendered


def test_judging_and_reporting_change_no_subject(chains):
    import copy

    fetch = presenter({"h": chains["w"]})
    args = tls_expiry.build_parser().parse_args(["-H", "h", "-v"])
    [subject] = tls_expiry.gather(tls_expiry.endpoints_from(args), [], fetch, tls.load_file,
                                  {})
    before = copy.deepcopy(vars(subject))
    verdict = tls_expiry.judge([subject], tls_expiry.Settings(args), NOW)
    assert "certificate expires in 15 days" in rendered(verdict)[0]
    assert vars(subject) == before
    assert [words for _, words in verdict.findings][1] == \
        "h:443 certificate expires in 15 days (%s)" % chains["w"][0].not_after.strftime(
            "%Y-%m-%d")



# -- every address of a name (issue 16) ---------------------------------------------------

def resolver(answers, asked=None):
    """A resolver answering ``answers[host]`` ([(4|6, address)]), else ResolveError."""
    def resolve(host, port, family, timeout):
        if asked is not None:
            asked.append((host, port, family))
        if host not in answers:
            raise tls_expiry.address.ResolveError("cannot resolve %s: no such name" % host)
        return [a for a in answers[host] if family in (None, a[0])]
    return resolve


DUAL = {"localhost": [(6, "2001:db8::1"), (4, "192.0.2.1")]}


def test_every_address_of_a_name_is_checked_and_the_bad_one_named(chains):
    fetch = presenter({"2001:db8::1": chains["expired"], "192.0.2.1": chains["valid"]})
    check, lines = run(["-H", "localhost", "-v"], fetch, resolve=resolver(DUAL))
    assert check.state == nagiosplugin.Critical
    assert status(lines).startswith("TLS_EXPIRY CRITICAL - localhost@[2001:db8::1]:443 "
                                    "certificate expired 2 days ago (")
    assert "; 1 other ok | " in status(lines)
    perf = status(lines).split(" | ")[1]
    assert "'localhost@[2001:db8::1]:443_days_leaf'=-2.3d;21:;7:" in perf
    assert "'localhost@192.0.2.1:443_days_leaf'=90.3d;21:;7:" in perf
    assert [line.split(",")[0] for line in lines[1:] if line[0].isupper()] == [
        "CRITICAL: localhost@[2001:db8::1]:443", "OK: localhost@192.0.2.1:443"]
    assert "name 'localhost' matches" in lines[-3]  # the name is still the one matched


def test_first_address_checks_the_name_as_before(chains):
    asked = []
    fetch = presenter({"localhost": chains["valid"]})
    check, lines = run(["-H", "localhost", "--first-address"], fetch,
                       resolve=resolver(DUAL, asked))
    assert check.state == nagiosplugin.Ok
    assert status(lines).startswith("TLS_EXPIRY OK - localhost:443 certificate expires")
    assert asked == []


@pytest.mark.parametrize("flag, family, addresses", [
    ([], None, ["2001:db8::1", "192.0.2.1"]), (["-4"], 4, ["192.0.2.1"]),
    (["-6"], 6, ["2001:db8::1"])])
def test_family_options_narrow_the_addresses(chains, flag, family, addresses):
    asked, seen = [], []

    def fetch(endpoint, **options):
        seen.append(endpoint.host)
        return presenter({endpoint.host: chains["valid"]})(endpoint, **options)

    check, lines = run(["--endpoint", "localhost:993"] + flag, fetch,
                       resolve=resolver(DUAL, asked))
    assert asked == [("localhost", 993, family)]
    # one address left: the endpoint keeps today's label (and the name its graphs)
    assert seen == (addresses if len(addresses) > 1 else ["localhost"])
    assert check.state == nagiosplugin.Ok, lines


def test_addresses_unresolved_names_and_duplicates_stay_as_they_are(chains):
    asked, seen = [], []

    def fetch(endpoint, **options):
        seen.append(endpoint.label)
        if endpoint.host == "nowhere":
            raise tls.ConnectionFailed("resolve", "cannot resolve nowhere: no such name")
        return presenter({endpoint.host: chains["valid"]})(endpoint, **options)

    check, lines = run(["--endpoint", "localhost", "--endpoint", "192.0.2.7",
                        "--endpoint", "nowhere", "--endpoint", "localhost@192.0.2.1",
                        "--mismatch", "ignore"],
                       fetch, resolve=resolver(DUAL, asked))
    assert [host for host, _, _ in asked] == ["localhost", "nowhere"]  # no literal asked
    assert seen == ["localhost@[2001:db8::1]:443", "localhost@192.0.2.1:443",
                    "192.0.2.7:443", "nowhere:443"]
    assert status(lines).startswith("TLS_EXPIRY CRITICAL - nowhere:443 resolve failed: "
                                    "cannot resolve nowhere: no such name; 3 others ok")


def test_a_bug_in_the_resolver_is_unknown_not_hidden():
    def broken(host, port, family, timeout):
        raise KeyError("oops")

    outcome = runtime.execute(tls_expiry.NAME, tls_expiry.build_parser,
                              lambda a: tls_expiry.build_check(a, resolve=broken), ["-H", "h"])
    assert outcome.exitcode == 3
    assert outcome.status_line.startswith("TLS_EXPIRY UNKNOWN - internal error: KeyError")


@pytest.mark.parametrize("argv, host, port", [
    (["-H", "[::1]"], "::1", 443), (["-H", "::1"], "::1", 443),
    (["-H", "[2001:db8::1]", "-p", "993"], "2001:db8::1", 993),
    (["--endpoint", "[::1]:993"], "::1", 993), (["--endpoint", "mail.example.org:993"],
                                                "mail.example.org", 993),
    (["--endpoint", "www.example.org@[2001:db8::1]:8443/none"], "2001:db8::1", 8443)])
def test_address_forms(argv, host, port):
    [endpoint] = tls_expiry.endpoints_from(tls_expiry.build_parser().parse_args(argv))
    assert (endpoint.host, endpoint.port) == (host, port)


@pytest.mark.parametrize("argv, words", [
    (["--endpoint", "::1:993"], "'::1:993' is ambiguous: write [::1]:993 for port 993, or "
                                "[::1:993] for the address"),
    (["--endpoint", "www@2001:db8::1:993/imap"], "write [2001:db8::1]:993 for port 993"),
    (["-H", "[::1"], "'[::1' is not a host name"),
    (["-H", "192.0.2.300"], "not a valid IPv4 address"),
])
def test_ambiguous_or_malformed_addresses_are_one_unknown_line(argv, words):
    from lab.peers import run_inprocess

    outcome = run_inprocess(tls_expiry, argv)
    assert outcome.exitcode == 3, outcome.output
    assert outcome.output.startswith("TLS_EXPIRY UNKNOWN - ")
    assert words in outcome.output
    assert len(outcome.output.strip().splitlines()) == 1


# -- judge: plain data in, a Verdict out (no certificates made, no parser) ---------------

MOMENT = datetime.datetime(2026, 3, 1, 12, tzinfo=datetime.timezone.utc)


def certificate(days_left, name="leaf", issuer="ca", not_before_days=30):
    return tls.Certificate(
        "CN=" + name, "CN=" + issuer, name, issuer, "01",
        MOMENT - datetime.timedelta(days=not_before_days),
        MOMENT + datetime.timedelta(days=days_left), [name], [], "RSA", 2048, "sha256",
        "00" * 32)


def settings(warning="21d", critical="7d"):
    return tls_expiry.Settings(tls_expiry.build_parser().parse_args(
        ["--file", "x", "-w", warning, "-c", critical]))


def test_judge_one_file_ok_names_the_soonest_and_carries_the_days_left():
    subject = tls_expiry.Subject("/etc/ssl/a.pem", "/etc/ssl/a.pem", [certificate(40)],
                                 is_file=True)
    verdict = tls_expiry.judge([subject], settings(), MOMENT)
    assert verdict.state == nagiosplugin.Ok and verdict.findings == []
    assert verdict.summary == "/etc/ssl/a.pem certificate expires in 40 days (2026-04-10), " \
                              "issuer ca"
    assert sorted(str(p) for p in verdict.perfdata) == [
        "'/etc/ssl/a.pem_days_chain'=40.0d;21:;7:", "'/etc/ssl/a.pem_days_leaf'=40.0d;21:;7:"]
    assert verdict.long[0] == "OK: /etc/ssl/a.pem, file with 1 certificate"
    assert verdict.long[1].startswith("/etc/ssl/a.pem #1: subject CN=leaf; SANs DNS:leaf; issuer "
                                      "CN=ca; serial 01; notBefore 2026-01-30 12:00:00Z; "
                                      "notAfter 2026-04-10 12:00:00Z (40.0 days left)")


def test_judge_problems_worst_first_then_the_others_counted():
    subjects = [tls_expiry.Subject("a:443", "a:443", [certificate(15)]),
                tls_expiry.Subject("b:443", "b:443", error="connect failed: refused"),
                tls_expiry.Subject("c:443", "c:443", [certificate(90)]),
                tls_expiry.Subject("d:443", "d:443")]
    verdict = tls_expiry.judge(subjects, settings(), MOMENT)
    assert verdict.state == nagiosplugin.Critical
    assert verdict.findings == [
        (nagiosplugin.Warn, "a:443 certificate expires in 15 days (2026-03-16)"),
        (nagiosplugin.Critical, "b:443 connect failed: refused"),
        (nagiosplugin.Critical, "d:443 no certificate presented")]
    assert verdict.summary == "b:443 connect failed: refused; d:443 no certificate " \
                              "presented; a:443 certificate expires in 15 days (2026-03-16); " \
                              "1 other ok"
    assert [line.split(" ")[0:2] for line in verdict.long if ":443 #" not in line] == [
        ["CRITICAL:", "b:443"], ["CRITICAL:", "d:443,"], ["WARNING:", "a:443,"],
        ["OK:", "c:443,"]]
    # perfdata for the subjects with a chain only, in their order
    assert [p.label for p in verdict.perfdata] == [
        "a:443_days_leaf", "a:443_days_chain", "c:443_days_leaf", "c:443_days_chain"]


def lifetime(days_left, lifetime_days):
    """A file subject whose one certificate lives ``lifetime_days`` and has ``days_left``."""
    return tls_expiry.Subject("x", "x", [certificate(
        days_left, not_before_days=lifetime_days - days_left)], is_file=True)


def judged(subject, *argv):
    return tls_expiry.judge([subject], tls_expiry.Settings(tls_expiry.build_parser().parse_args(
        ["--file", "x"] + list(argv))), MOMENT)


def test_a_six_day_certificate_is_ok_by_default_until_its_last_tenth():
    verdict = judged(lifetime(4, 6))
    assert verdict.state == nagiosplugin.Ok, verdict
    # the thresholds it was judged by, in days: a third and a tenth of 6 days
    assert str(verdict.perfdata[0]) == "x_days_leaf=4.0d;2:;0.6:"
    assert judged(lifetime(1.5, 6)).state == nagiosplugin.Warn
    verdict = judged(lifetime(0.5, 6))
    assert verdict.state == nagiosplugin.Critical
    assert verdict.summary.startswith("x certificate expires in 12 hours")


def test_default_thresholds_keep_the_days_for_long_lifetimes():
    for left, state in ((25, nagiosplugin.Ok), (20, nagiosplugin.Warn),
                        (6, nagiosplugin.Critical)):
        assert judged(lifetime(left, 90)).state == state, left
    assert str(judged(lifetime(25, 90)).perfdata[0]) == "x_days_leaf=25.0d;21:;7:"


def test_a_share_of_the_lifetime_as_threshold():
    verdict = judged(lifetime(25, 90), "-w", "33%")
    assert verdict.state == nagiosplugin.Warn
    assert str(verdict.perfdata[0]) == "x_days_leaf=25.0d;29.7:;7:"
    assert judged(lifetime(25, 90), "-w", "33%", "-c", "30%").state == nagiosplugin.Critical
    # explicit days keep their meaning whatever the lifetime: a 6-day certificate is critical
    assert judged(lifetime(4, 6), "-w", "21d", "-c", "7d").state == nagiosplugin.Critical


def test_judge_ranges_are_the_users_and_the_subject_unchanged():
    subject = tls_expiry.Subject("x", "x", [certificate(15.5)], is_file=True)
    before = repr(vars(subject))
    for warning, critical, state in (("21d", "7d", nagiosplugin.Warn),
                                     ("10", "7", nagiosplugin.Ok),
                                     ("30d", "20d", nagiosplugin.Critical),
                                     ("@10d:20d", "7d", nagiosplugin.Warn)):
        verdict = tls_expiry.judge([subject], settings(warning, critical), MOMENT)
        assert verdict.state == state, (warning, critical)
    assert repr(vars(subject)) == before


# -- revocation: the judgement on plain revocation.Status data ------------------------------

def served(statuses, must_staple=False, staple=None):
    from osop_checks.sources.revocation import Status  # noqa: F401 - the type judged

    leaf = certificate(60)
    leaf.must_staple = must_staple
    chain = [leaf, certificate(900, name="ca", issuer="root")]
    presented = tls.Presented(tls.Endpoint("h", 443), chain, staple=staple)
    return tls_expiry.Subject("h:443", "h:443", chain, presented, revocation=statuses)


def test_judge_revocation_revoked_unknown_and_must_staple():
    from osop_checks.sources.revocation import Status

    when = MOMENT - datetime.timedelta(days=2)
    revoked = Status("revoked", "CRL http://crl.example.org/ca.crl", revoked_at=when,
                     reason="keyCompromise")
    verdict = tls_expiry.judge([served([revoked, Status("good", "CRL x")])], settings(),
                               MOMENT)
    assert verdict.state == nagiosplugin.Critical
    assert verdict.summary == "h:443 certificate REVOKED 2026-02-27 12:00:00Z " \
                              "(keyCompromise), serial 01, per the CRL " \
                              "http://crl.example.org/ca.crl"
    unknown = Status("unknown", "CRL x", "CRL x unreachable: cannot connect")
    verdict = tls_expiry.judge([served([Status("good", "stapled OCSP"), unknown])],
                               settings(), MOMENT)
    assert verdict.state == nagiosplugin.Warn
    assert "intermediate 'ca' revocation not known: CRL x unreachable" in verdict.summary
    args = tls_expiry.build_parser().parse_args(["--file", "x", "--revocation-unknown",
                                                 "critical"])
    assert tls_expiry.judge([served([Status("good", "s"), unknown])],
                            tls_expiry.Settings(args), MOMENT).state == nagiosplugin.Critical
    verdict = tls_expiry.judge([served([None, None])], settings(), MOMENT)
    assert verdict.state == nagiosplugin.Warn and "no answer within the --timeout" in \
        verdict.summary
    good = [Status("good", "CRL x"), Status("unpublished", why="the trust anchor")]
    verdict = tls_expiry.judge([served(good, must_staple=True)], settings(), MOMENT)
    assert verdict.state == nagiosplugin.Critical
    assert "demands a stapled OCSP answer (must-staple) but the server sent none" in \
        verdict.summary
    assert tls_expiry.judge([served(good, must_staple=True, staple=b"0")], settings(),
                            MOMENT).state == nagiosplugin.Ok
    assert verdict.long[1].endswith("; revocation: good per the CRL x")


def test_stapled_answers_are_read_from_the_handshake_messages():
    """TLS 1.2 CertificateStatus and the status_request extension of the leaf's entry in a
    TLS 1.3 Certificate message (RFC 8446 4.4.2); anything cut short is no staple."""
    answer = b"\x30\x03\x0a\x01\x00"  # the DER of an OCSPResponse does not matter here
    status = b"\x01" + len(answer).to_bytes(3, "big") + answer
    tls12 = b"\x16" + len(status).to_bytes(3, "big") + status
    assert tls._status_body(tls12, 4) == answer
    leaf = b"\x30\x00"
    extension = b"\x00\x05" + len(status).to_bytes(2, "big") + status

    def certificate_message(extension):
        entry = (len(leaf).to_bytes(3, "big") + leaf + len(extension).to_bytes(2, "big")
                 + extension)
        body = b"\x00" + len(entry).to_bytes(3, "big") + entry
        return b"\x0b" + len(body).to_bytes(3, "big") + body

    tls13 = certificate_message(extension)
    assert tls._tls13_staple(tls13) == answer
    assert tls._tls13_staple(tls13[:-3]) is None
    sct = b"\x00\x12" + extension[2:]  # another extension (signed_certificate_timestamp)
    assert tls._tls13_staple(certificate_message(sct)) is None
    assert tls._status_body(b"\x16\x00\x00\x01\x02", 4) is None  # not an OCSP status
