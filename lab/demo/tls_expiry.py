"""`make demo` for check_tls_expiry: the issue's scenarios, served on loopback by
lab/peers/tls.py (a test CA, TLS and STARTTLS servers, a black hole); as root also a
dual-stack name whose IPv6 listener serves an expired certificate, in the IPv6 test network
of lab/peers/ipv6.py. --dane against a validating unbound with a signed zone (when unbound
and ldnsutils are installed), --ari against pebble 2.6 from Debian 13 (as root). Revocation:
the test CA's CRLs over HTTP on loopback, openssl s_server stapling, openssl ocsp."""
import os
import tempfile

from lab.peers import faked_clock
from lab.peers.tls import start_scenarios

TITLES = [
    ("valid", "a valid certificate with its intermediate", []),
    ("soon", "a certificate expiring in 3 days", []),
    ("expired", "an expired certificate", []),
    ("notyet", "a certificate not yet valid", []),
    ("wronghost", "a certificate for another host name", []),
    ("selfsigned", "a self-signed certificate", []),
    ("nointermediate", "a server that does not send its intermediate", []),
    ("intermediate_soon", "an intermediate expiring before the leaf", []),
    ("rsa1024", "an RSA-1024 leaf: warns by default, not 'trusted' (see the long output)",
     []),
    ("weak", "policy: RSA 1024, SHA-1, 800 days validity", ["--max-validity", "398d"]),
    ("tls10", "policy: a server still accepting TLS 1.0/1.1", ["--min-tls-version", "1.2"]),
    ("smtp", "SMTP with STARTTLS", []),
    ("imap", "IMAP with STARTTLS", []),
    ("pop3", "POP3 with STLS", []),
    ("ldap", "LDAP with the StartTLS extended operation", []),
    ("smtp_refused", "an SMTP server that refuses STARTTLS", []),
    ("http", "plain HTTP on the TLS port", []),
    ("refused", "nothing listening", []),
    ("blackhole", "a server that accepts TCP and never answers (-t 3)", ["-t", "3"]),
]


def scenarios(stack):
    directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="osop-tls-demo-"))
    started = start_scenarios(stack, directory)
    runs = [(title, ["check_tls_expiry"] + started[name].args + ["-w", "21d", "-c", "7d"]
             + extra) for name, title, extra in TITLES]
    several = ["check_tls_expiry", "--ca-file", started["valid"].ca.ca_path]
    for name, suffix in (("valid", ""), ("smtp", "/smtp"), ("imap", "/imap"), ("soon", "")):
        several += ["--endpoint", "localhost@127.0.0.1:%d%s" % (started[name].port, suffix)]
    six = ["check_tls_expiry"] + started["sixday"].args
    runs.append(("a 6-day certificate with 4 days left: OK by the default thresholds "
                 "(min(21d, 33%), min(7d, 10%) of its lifetime)", six))
    runs.append(("the same with -w 21d -c 7d: fixed days cry wolf on short lifetimes",
                 six + ["-w", "21d", "-c", "7d"]))
    runs.append(("the 90-day certificate with -w 99%: alert on a share of its lifetime",
                 ["check_tls_expiry"] + started["valid"].args + ["-w", "99%"]))
    demanding = ["check_tls_expiry"] + started["clientcert"].args
    client = started["valid"].ca.issue("demo-client", names=("monitoring.example.org",),
                                       ips=())
    os.chmod(client.key_path, 0o600)
    runs.append(("a server that demands a client certificate, asked without one",
                 demanding))
    runs.append(("the same with --client-cert/--client-key (the key file mode 0600)",
                 demanding + ["--client-cert", client.chain_path,
                              "--client-key", client.key_path]))
    runs.append(("four endpoints in one run, checked concurrently", several))
    runs.append(("a local certificate bundle (leaf + intermediate)",
                 ["check_tls_expiry", "--file", started["intermediate_soon"].issued.chain_path,
                  "-w", "21d", "-c", "7d"]))
    return (runs + revocation(stack, directory) + dual_stack(stack, started["valid"].ca)
            + dane_and_ari(stack, directory))


def revocation(stack, directory):
    """CRLs served over HTTP on loopback, a stapling openssl s_server, openssl ocsp."""
    from lab.peers.tls import RevocationPKI

    pki = RevocationPKI(stack, os.path.join(directory, "revocation"))

    def run(name, cache="cache", *extra):
        return ["check_tls_expiry"] + pki.args(name, cache) + list(extra)

    return [
        ("revocation: a good chain, each certificate's CRL fetched and checked", run("good")),
        ("a revoked leaf, through its CRL", run("revoked")),
        ("a leaf under a revoked intermediate, through the root's CRL",
         run("under_revoked_ca")),
        ("a server stapling a 'revoked' OCSP answer (its CRL server never answers: the "
         "staple needs no network)", run("stapled")),
        ("a must-staple certificate served without a staple", run("must_staple")),
        ("a CRL server that never answers (-t 4): WARNING in time", run("black_hole", "cache",
                                                                         "-t", "4")),
        ("a CRL fetched and cached", run("cached", "kept")),
        ("the same two hours later, its CRL server down: the cached CRL while valid",
         run("cached", "kept"), pki.cached_http.stop, faked_clock("+2h")),
        ("the same with an empty cache: WARNING", run("cached", "empty")),
        ("--revocation ocsp: the OCSP responder (openssl ocsp) the certificate names",
         run("ocsp_revoked", "cache", "--revocation", "ocsp")),
    ]


def dual_stack(stack, ca):
    """A name with an A and an AAAA record, the IPv6 listener's certificate expired: every
    address, then -4 and --first-address. Needs root (namespaces); else left out."""
    if os.geteuid() != 0:
        return []
    from lab.peers.ipv6 import DUAL4, DUAL6, Ipv6Net
    from lab.peers.tls import serve_in

    net = stack.enter_context(Ipv6Net())
    serve_in(net, net.dual, ca.issue("dual-ok", names=(net.dual_name,), ips=()), DUAL4, 443)
    serve_in(net, net.dual, ca.issue("dual-expired", names=(net.dual_name,), ips=(),
                                     days=-3), DUAL6, 443)
    base = ["check_tls_expiry", "-H", net.dual_name, "--ca-file", ca.ca_path]
    wrap = net.wrap(net.client)
    return [("a dual-stack name: every address, the IPv6 listener expired", base, None, wrap),
            ("the same name over IPv4 only (-4)", base + ["-4"], None, wrap),
            ("the same name, first address only (--first-address)",
             base + ["--first-address"], None, wrap)]


def dane_and_ari(stack, directory):
    """--dane: mail.dane.test after a certificate rollover (lab/peers/unbound.py), its TLSA
    record updated, forgotten, and served from an unsigned zone. --ari: a certificate from
    pebble (lab/peers/pebble.py), before and after its revocation."""
    import os
    import shutil

    runs = []
    if shutil.which("unbound", path="/usr/sbin:/usr/bin") and shutil.which("ldns-signzone"):
        from lab.peers.unbound import start_dane_site

        ca, ports, resolver = start_dane_site(stack, os.path.join(directory, "dane"))

        def dane(port, name="mail.dane.test"):
            return ["check_tls_expiry", "-H", "127.0.0.1", "-p", str(ports[port]), "--sni",
                    name, "--starttls", "smtp", "--ca-file", ca.ca_path, "--dane",
                    "--dns-server", resolver.server]

        runs += [("DANE: the TLSA record of the new certificate (3 1 1)", dane("current")),
                 ("DANE: the TLSA record still of the certificate before the rollover",
                  dane("stale")),
                 ("DANE: a TLSA record of the issuing intermediate (2 0 1)", dane("anchor")),
                 ("DANE: a matching TLSA record from an unsigned zone (not validated)",
                  dane("current", "mail.unsigned.test"))]
    if os.geteuid() == 0:
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding

        from lab.peers.pebble import AcmeClient, Pebble
        from lab.peers.tls import TestCA

        ca = TestCA(os.path.join(directory, "ari-ca"))
        pebble = stack.enter_context(Pebble(os.path.join(directory, "pebble"), ca.issue(
            "pebble", names=("localhost",), ips=("127.0.0.1",))))
        client = AcmeClient(pebble.directory_url, ca.ca_path)
        chain, _ = client.issue(["www.ari.test"])
        path = os.path.join(directory, "ari.pem")
        with open(path, "w") as handle:
            handle.write(chain)
        wrap = ("env", "REQUESTS_CA_BUNDLE=" + ca.ca_path)

        def ari(cache):
            os.makedirs(os.path.join(directory, cache), mode=0o700, exist_ok=True)
            return ["check_tls_expiry", "--file", path, "--ari", pebble.directory_url,
                    "--cache-dir", os.path.join(directory, cache)]

        def revoke():
            client.revoke(x509.load_pem_x509_certificate(chain.encode()).public_bytes(
                Encoding.DER))

        runs += [("ARI: a certificate from pebble, asked on the day it was issued",
                  ari("ari-1"), None, wrap),
                 ("ARI: the same, 59.5 days into its 90 (inside the suggested window)",
                  ari("ari-1"), None, wrap + tuple(faked_clock("+1428h"))),
                 ("ARI: the same certificate after pebble revoked it",
                  ari("ari-2"), revoke, wrap)]
    return runs
