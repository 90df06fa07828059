"""check_tls_expiry against real TLS and STARTTLS servers on loopback (lab/peers/tls.py).

Most runs are in-process (runtime.execute: the same code path, real sockets, real OpenSSL);
a few run the installed console script as Icinga would, for the exit code and the timeout.
"""
import datetime
import re
import time

import pytest

from osop_checks.checks import tls_expiry
from lab.peers import need, run_inprocess, run_plugin

pytestmark = pytest.mark.peer

THRESHOLDS = ["-w", "21d", "-c", "7d"]


def check(scenario, *extra):
    return run_inprocess(tls_expiry, scenario.args + THRESHOLDS + list(extra))


def assert_clean(outcome):
    assert outcome.output.startswith("TLS_EXPIRY ")
    assert "Traceback" not in outcome.output


@pytest.mark.parametrize("name, code, words", [
    ("valid", 0, r"OK - localhost@127\.0\.0\.1:\d+ certificate expires in 90 days "
                 r"\(\d{4}-\d\d-\d\d\), issuer osop Test Intermediate CA"),
    ("soon", 2, r"CRITICAL - \S+ certificate expires in 3 days \("),
    ("expired", 2, r"CRITICAL - \S+ certificate expired 2 days ago \("),
    ("notyet", 2, r"CRITICAL - \S+ certificate not yet valid \(valid from "),
    ("wronghost", 2, r"CRITICAL - \S+ name mismatch: 'localhost' is not among the "
                     r"certificate's names \(DNS:other\.example\.org\)"),
    ("selfsigned", 2, r"CRITICAL - \S+ self-signed certificate, not trusted"),
    ("nointermediate", 1, r"WARNING - \S+ incomplete chain: the server sent no intermediate "
                          r"for the issuer 'osop Test Intermediate CA'"),
    ("intermediate_soon", 2, r"CRITICAL - \S+ intermediate 'osop Short-lived Intermediate "
                             r"CA' expires in 5 days \(.*\), before the leaf"),
    ("smtp", 0, r"OK - \S+ \(smtp\) certificate expires in 90 days"),
    ("imap", 0, r"OK - \S+ \(imap\) certificate expires in 90 days"),
    ("pop3", 0, r"OK - \S+ \(pop3\) certificate expires in 90 days"),
    ("ftp", 0, r"OK - \S+ \(ftp\) certificate expires in 90 days"),
    ("ldap", 0, r"OK - \S+ \(ldap\) certificate expires in 90 days"),
    ("postgres", 0, r"OK - \S+ \(postgres\) certificate expires in 90 days"),
    ("xmpp", 0, r"OK - \S+ \(xmpp\) certificate expires in 90 days"),
    ("smtp_refused", 2, r"CRITICAL - \S+ \(smtp\) STARTTLS failed: refused by the server: "
                        r"502 5\.5\.1"),
    ("http", 2, r"CRITICAL - 127\.0\.0\.1:\d+ TLS handshake failed: the server does not "
                r"speak TLS here"),
    ("refused", 2, r"CRITICAL - 127\.0\.0\.1:\d+ connect failed: 127\.0\.0\.1: connection "
                   r"refused"),
])
def test_scenario(tls_scenarios, name, code, words):
    outcome = check(tls_scenarios[name])
    assert_clean(outcome)
    assert outcome.exitcode == code, outcome.output
    assert re.search("^TLS_EXPIRY " + words, outcome.status_line), outcome.output


def test_perfdata_days_left_for_leaf_and_soonest_chain_element(tls_scenarios):
    scenario = tls_scenarios["intermediate_soon"]
    outcome = check(scenario)
    label = "localhost@127.0.0.1:%d" % scenario.port
    perf = dict(re.findall(r"'([^']+)'=([-\d.]+)d;21:;7:", outcome.status_line))
    assert 59.9 < float(perf[label + "_days_leaf"]) <= 60
    assert 5.4 < float(perf[label + "_days_chain"]) <= 5.5


def test_untrusted_without_the_test_ca(tls_scenarios):
    scenario = tls_scenarios["valid"]
    args = ["-H", "127.0.0.1", "-p", str(scenario.port), "--sni", "localhost"]
    outcome = run_inprocess(tls_expiry, args)
    assert outcome.exitcode == 2
    assert "untrusted: the issuer 'osop Test Root CA' is not trusted" in outcome.status_line
    assert run_inprocess(tls_expiry, args + ["--untrusted", "warn"]).exitcode == 1
    assert run_inprocess(tls_expiry, args + ["--untrusted", "ignore"]).exitcode == 0


def test_self_signed_can_be_accepted(tls_scenarios):
    outcome = check(tls_scenarios["selfsigned"], "--self-signed", "ignore")
    assert outcome.exitcode == 0, outcome.output


def test_long_output_shows_the_whole_chain(tls_scenarios):
    scenario = tls_scenarios["valid"]
    outcome = check(scenario)
    lines = outcome.output.splitlines()
    leaf = scenario.issued.cert
    assert re.match(r"OK: localhost@127\.0\.0\.1:\d+, at 127\.0\.0\.1, TLSv1\.3 \S+, chain of 2 "
                    r"presented \(\+1 from the trust store\), trusted, name 'localhost' "
                    r"matches$", lines[1])
    assert "#1: subject CN=localhost; SANs DNS:localhost, IP:127.0.0.1; issuer CN=osop Test " \
           "Intermediate CA,O=osop tests; serial %X; notBefore " % leaf.serial_number in lines[2]
    assert "notAfter %s" % leaf.not_valid_after.strftime("%Y-%m-%d %H:%M:%SZ") in lines[2]
    assert "#2: subject CN=osop Test Intermediate CA,O=osop tests" in lines[3]
    assert "#3: subject CN=osop Test Root CA,O=osop tests" in lines[4]  # the trust anchor


def test_policy_against_a_real_server(tls_scenarios):
    outcome = check(tls_scenarios["weak"], "--min-key-size", "2048", "--max-validity", "398d")
    assert outcome.exitcode == 1
    for words in ("weak key (RSA 1024 bits, minimum 2048)", "signed with SHA-1",
                  "valid for 800 days, longer than 398"):
        assert words in outcome.status_line
    outcome = check(tls_scenarios["tls10"], "--min-tls-version", "1.2")
    assert outcome.exitcode == 1
    assert "accepts TLSv1.1, below TLS 1.2" in outcome.status_line
    assert check(tls_scenarios["valid"], "--min-tls-version", "1.2").exitcode == 0


def test_an_rsa_1024_leaf_warns_by_default_and_is_not_called_trusted(tls_scenarios):
    """OpenSSL at Debian's default security level refuses the chain (Python's default
    context, as curl): the long output says so, the weak key warns without any option."""
    scenario = tls_scenarios["rsa1024"]
    outcome = run_inprocess(tls_expiry, scenario.args)
    assert outcome.exitcode == 1, outcome.output
    assert outcome.status_line.startswith("TLS_EXPIRY WARNING - ")
    assert "certificate has a weak key (RSA 1024 bits, minimum 2048)" in outcome.status_line
    headline = outcome.output.splitlines()[1]
    assert ", trusted," not in headline
    assert "not trusted (OpenSSL at its default security level refuses the chain: EE " \
           "certificate key too weak; it verifies at security level 0 only)" in headline
    assert ", trusted," in run_inprocess(tls_expiry, tls_scenarios["valid"].args).output


def test_many_endpoints_in_one_run(tls_scenarios):
    names = ["valid", "smtp", "imap", "pop3", "soon", "refused"]
    argv = THRESHOLDS + ["--ca-file", tls_scenarios["valid"].ca.ca_path]
    for name in names:
        scenario = tls_scenarios[name]
        suffix = "/%s" % name if name in ("smtp", "imap", "pop3") else ""
        argv += ["--endpoint", "localhost@127.0.0.1:%d%s" % (scenario.port, suffix)]
    outcome = run_inprocess(tls_expiry, argv)
    assert outcome.exitcode == 2
    line = outcome.status_line
    assert "connect failed" in line and "certificate expires in 3 days" in line
    assert "; 4 others ok" in line
    assert len(re.findall(r"_days_leaf'=", line)) == 5
    assert len([line for line in outcome.output.splitlines()
                if re.match(r"[A-Z]+: ", line)]) == 6


def test_whole_process(tls_scenarios):
    outcome = run_plugin("check_tls_expiry", tls_scenarios["valid"].args)
    assert outcome.exitcode == 0 and outcome.stderr == ""
    outcome = run_plugin("check_tls_expiry", tls_scenarios["http"].args)
    assert outcome.exitcode == 2 and "does not speak TLS" in outcome.output


def test_black_hole_times_out_within_the_timeout(tls_scenarios):
    started = time.monotonic()
    outcome = run_plugin("check_tls_expiry", tls_scenarios["blackhole"].args + ["-t", "2"])
    elapsed = time.monotonic() - started
    assert elapsed < 3.0
    assert outcome.exitcode == 2
    assert re.match(r"TLS_EXPIRY CRITICAL - 127\.0\.0\.1:\d+ no answer within the --timeout "
                    r"during TLS handshake$", outcome.status_line)


def test_black_hole_among_good_endpoints_keeps_their_results(tls_scenarios):
    hole, good = tls_scenarios["blackhole"], tls_scenarios["valid"]
    started = time.monotonic()
    outcome = run_plugin("check_tls_expiry", [
        "-t", "4", "--ca-file", good.ca.ca_path,
        "--endpoint", "localhost@127.0.0.1:%d" % good.port,
        "--endpoint", "127.0.0.1:%d" % hole.port])
    assert time.monotonic() - started < 5.0  # --timeout + 1 s
    assert outcome.exitcode == 2
    assert "no answer within the --timeout during TLS handshake; 1 other ok" in \
        outcome.status_line


def test_days_left_read_alike_in_status_line_perfdata_and_long_output(tls_ca):
    """A certificate made 10 days from now, served for real: a few seconds later 9.9999 days
    are left. The status line, the perfdata and the long output all say 10, and -w 10d judges
    that same value."""
    from lab.peers.tls import TLSServer

    issued = tls_ca.issue("ten-days", days=10)
    with TLSServer(issued.chain_path, issued.key_path) as server:
        args = ["-H", "127.0.0.1", "-p", str(server.port), "--sni", "localhost",
                "--ca-file", tls_ca.ca_path, "-c", "7d"]
        outcome = run_plugin("check_tls_expiry", args + ["-w", "21d", "-v"])
        assert outcome.exitcode == 1, outcome.output
        assert re.match(r"TLS_EXPIRY WARNING - localhost@127\.0\.0\.1:\d+ certificate expires "
                        r"in 10 days \(", outcome.status_line), outcome.status_line
        assert "_days_leaf'=10.0d;21:;7:" in outcome.status_line
        assert "(10.0 days left)" in outcome.output
        at_ten = run_plugin("check_tls_expiry", args + ["-w", "10d"])
        assert at_ten.exitcode == 0, at_ten.output
        assert "certificate expires in 10 days" in at_ten.status_line


def test_a_ca_file_without_a_certificate_is_unknown_naming_it(tls_scenarios):
    """--ca-file /etc/passwd or a key file is a wrong argument, like a missing file: UNKNOWN
    before any handshake, not a CRITICAL "handshake failed" blamed on the server."""
    scenario = tls_scenarios["valid"]
    for wrong in ("/etc/passwd", scenario.issued.key_path):
        outcome = run_plugin("check_tls_expiry", ["-H", "127.0.0.1", "-p", str(scenario.port),
                                                  "--sni", "localhost", "--ca-file", wrong])
        assert outcome.exitcode == 3, outcome.output
        assert outcome.output == "TLS_EXPIRY UNKNOWN - the --ca-file %s holds no PEM " \
                                 "certificate (OpenSSL: no start line: cadata does not " \
                                 "contain a certificate) (see --help)\n" % wrong


def test_local_files(tls_scenarios, tmp_path):
    scenario = tls_scenarios["soon"]
    outcome = run_inprocess(tls_expiry, ["--file", scenario.issued.chain_path] + THRESHOLDS)
    assert outcome.exitcode == 2
    assert "certificate 'localhost' (#1) expires in 3 days" in outcome.status_line


# -- the same server, asked by Monitoring Plugins' check_http -----------------------------

CHECK_HTTP = "/usr/lib/nagios/plugins/check_http"


def check_http(scenario, *extra):
    import subprocess

    proc = subprocess.run([CHECK_HTTP, "-H", "localhost", "-I", "127.0.0.1", "-p",
                           str(scenario.port), "-S", "--sni"] + list(extra),
                          capture_output=True, text=True, timeout=20)
    return proc.returncode, proc.stdout


@pytest.mark.parametrize("name", ["soon", "valid", "intermediate_soon", "expired"])
def test_same_days_and_dates_as_check_http(tls_scenarios, name):
    need("check_http")
    scenario = tls_scenarios[name]
    code, theirs = check_http(scenario, "-C", "30,14")
    ours = run_inprocess(tls_expiry, scenario.args + ["-w", "30d", "-c", "14d"])
    leaf_after = scenario.issued.cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    if name in ("valid", "intermediate_soon"):
        # check_http names the date only: "will expire on Wed Feb 24 18:14:42 2027 +0000."
        date = re.search(r"will expire on (.+) \+0000", theirs).group(1)
        parsed = datetime.datetime.strptime(date, "%a %b %d %H:%M:%S %Y")
        assert "#1: subject CN=localhost;" in ours.output
        assert "notAfter %s" % parsed.strftime("%Y-%m-%d %H:%M:%SZ") in ours.output
        assert code == 0
        # check_http judges the leaf only and cannot see the intermediate expiring first
        assert ours.exitcode == (0 if name == "valid" else 2)
    elif name == "expired":
        assert "expired on" in theirs and "expired 2 days ago" in ours.status_line
        assert code == ours.exitcode == 2
    else:
        days = int(re.search(r"expires in (\d+) day", theirs).group(1))
        exact = (leaf_after - datetime.datetime.now(datetime.timezone.utc)).total_seconds() \
            / 86400
        assert days == int(exact)  # check_http rounds down; we round to the nearest day
        assert "certificate expires in %d days" % int(exact + 0.5) in ours.status_line
        assert code == ours.exitcode == 2
        perf = re.search(r"_days_leaf'=([\d.]+)d", ours.status_line).group(1)
        assert abs(float(perf) - exact) < 0.01


def test_intermediate_found_only_in_the_trust_store_is_an_incomplete_chain(tls_scenarios,
                                                                            tmp_path):
    scenario = tls_scenarios["nointermediate"]
    bundle = tmp_path / "root-and-intermediate.pem"
    with open(scenario.ca.ca_path, "rb") as root:
        bundle.write_bytes(root.read())
    scenario.ca.write("intermediate-only.pem", [scenario.ca.intermediate])
    with open(scenario.ca.directory + "/intermediate-only.pem", "rb") as intermediate:
        bundle.write_bytes(bundle.read_bytes() + intermediate.read())
    args = ["-H", "127.0.0.1", "-p", str(scenario.port), "--sni", "localhost",
            "--ca-file", str(bundle)]
    outcome = run_inprocess(tls_expiry, args)
    assert outcome.exitcode == 1
    assert "incomplete chain: the server did not send the intermediate 'osop Test " \
           "Intermediate CA' (found in the trust store)" in outcome.status_line
    assert run_inprocess(tls_expiry, args + ["--incomplete", "ignore"]).exitcode == 0


def test_ipv6_loopback(tls_scenarios):
    import socket

    from lab.peers.tls import TLSServer

    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    issued = tls_scenarios["valid"].issued
    with TLSServer(issued.chain_path, issued.key_path, host="::1") as server:
        outcome = run_inprocess(tls_expiry, [
            "-6", "--endpoint", "localhost@[::1]:%d" % server.port,
            "--ca-file", tls_scenarios["valid"].ca.ca_path])
        assert outcome.exitcode == 0, outcome.output
        assert "at ::1, TLS" in outcome.output
        outcome = run_inprocess(tls_expiry, [
            "-4", "--endpoint", "localhost@[::1]:%d" % server.port,
            "--ca-file", tls_scenarios["valid"].ca.ca_path])
        # an address of the other family is a usage error, not a failed connection
        assert outcome.exitcode == 3, outcome.output
        assert "-4 asks for IPv4, but ::1 is an IPv6 address" in outcome.status_line


@pytest.mark.parametrize("protocol, answer", [
    ("imap", "refused by the server: a001 BAD Error in IMAP command received by server."),
    ("pop3", "refused by the server: -ERR Unknown command."),
    ("ftp", "refused by the server: 530 Please login with USER and PASS."),
    ("ldap", "refused by the server: LDAP resultCode 52"),
    ("postgres", "refused by the server: the server does not accept SSL (answered N)"),
    ("xmpp", "refused by the server: no starttls among the stream features"),
])
def test_starttls_refused_by_each_protocol(tls_scenarios, protocol, answer):
    from lab.peers.tls import TLSServer

    issued = tls_scenarios["valid"].issued
    with TLSServer(issued.chain_path, issued.key_path, starttls=protocol,
                   refuse=True) as server:
        outcome = run_inprocess(tls_expiry, ["-H", "127.0.0.1", "-p", str(server.port),
                                             "--starttls", protocol])
    assert outcome.exitcode == 2
    assert outcome.status_line == "TLS_EXPIRY CRITICAL - 127.0.0.1:%d (%s) STARTTLS failed: " \
        "%s" % (server.port, protocol, answer)


# -- client certificates ------------------------------------------------------------------

@pytest.fixture(scope="module")
def demanding(tls_ca, tmp_path_factory):
    """Servers (TLS 1.3 and 1.2) that demand a client certificate of the test CA, and a
    client certificate with its key (mode 0600)."""
    import contextlib
    import os

    from lab.peers.tls import TLSServer

    served = tls_ca.issue("demanding")
    client = tls_ca.issue("client", names=("monitoring.example.org",), ips=())
    os.chmod(client.key_path, 0o600)
    with contextlib.ExitStack() as stack:
        servers = {version: stack.enter_context(TLSServer(
            served.chain_path, served.key_path, client_ca=tls_ca.ca_path,
            max_version=version)) for version in ("1.3", "1.2")}
        yield servers, client


@pytest.mark.parametrize("version", ["1.3", "1.2"])
def test_a_server_demanding_a_client_certificate(tls_ca, demanding, version):
    servers, client = demanding
    argv = ["-H", "127.0.0.1", "-p", str(servers[version].port), "--sni", "localhost",
            "--ca-file", tls_ca.ca_path]
    outcome = run_inprocess(tls_expiry, argv + ["--client-cert", client.chain_path,
                                                "--client-key", client.key_path])
    assert outcome.exitcode == 0, outcome.output
    assert "client certificate asked for, ours accepted" in outcome.output
    assert "TLSv%s" % version in outcome.output
    outcome = run_inprocess(tls_expiry, argv)
    assert outcome.exitcode == 2, outcome.output
    assert "TLS handshake failed: the server demands a client certificate (give " \
           "--client-cert and --client-key; OpenSSL: " in outcome.status_line


def test_a_client_certificate_the_server_refuses(tls_ca, demanding, tmp_path):
    import os

    from lab.peers.tls import TestCA

    servers, _ = demanding
    stranger = TestCA(str(tmp_path / "other-ca")).issue("stranger", names=("x",), ips=())
    os.chmod(stranger.key_path, 0o600)
    outcome = run_inprocess(tls_expiry, [
        "-H", "127.0.0.1", "-p", str(servers["1.3"].port), "--ca-file", tls_ca.ca_path,
        "--client-cert", stranger.chain_path, "--client-key", stranger.key_path])
    assert outcome.exitcode == 2, outcome.output
    assert "the server refused our client certificate (OpenSSL: " in outcome.status_line


def test_client_key_files_are_checked_before_any_connection(tls_ca, tmp_path):
    import os
    import shutil

    client = tls_ca.issue("client-perm", names=("x",), ips=())
    key = str(tmp_path / "client.key")
    shutil.copy(client.key_path, key)
    argv = ["-H", "127.0.0.1", "-p", "1", "--client-cert", client.chain_path,
            "--client-key", key]
    for mode, words in ((0o644, "is readable by others (mode 0644)"),
                        (0o660, "is writable by its group (mode 0660)")):
        os.chmod(key, mode)
        outcome = run_inprocess(tls_expiry, argv)
        assert outcome.exitcode == 3 and words in outcome.output, outcome.output
    os.chmod(key, 0o640)  # Debian's ssl-cert way: accepted (then port 1 refuses)
    assert "connection refused" in run_inprocess(tls_expiry, argv).output
    other = tls_ca.issue("client-other", names=("y",), ips=())
    os.chmod(other.key_path, 0o600)
    outcome = run_inprocess(tls_expiry, argv[:-1] + [other.key_path])
    assert outcome.exitcode == 3 and "does not go with its key" in outcome.output
    outcome = run_inprocess(tls_expiry, argv[:4] + ["--client-key", key])
    assert outcome.exitcode == 3 and "--client-key goes with --client-cert" in outcome.output
    encrypted = _encrypted_copy(client.key, tmp_path / "encrypted.key")
    outcome = run_inprocess(tls_expiry, argv[:-1] + [encrypted])
    assert outcome.exitcode == 3 and "the client key is encrypted" in outcome.output


def _encrypted_copy(key, path):
    import os

    from cryptography.hazmat.primitives import serialization

    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.BestAvailableEncryption(b"secret")))
    os.chmod(path, 0o600)
    return str(path)
