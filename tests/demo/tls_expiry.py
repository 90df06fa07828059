"""`make demo` for check_tls_expiry: the issue's scenarios, served on loopback by
tests/peers/tls.py (a test CA, TLS and STARTTLS servers, a black hole)."""
import tempfile

from tests.peers.tls import start_scenarios

TITLES = [
    ("valid", "a valid certificate with its intermediate", []),
    ("soon", "a certificate expiring in 3 days", []),
    ("expired", "an expired certificate", []),
    ("notyet", "a certificate not yet valid", []),
    ("wronghost", "a certificate for another host name", []),
    ("selfsigned", "a self-signed certificate", []),
    ("nointermediate", "a server that does not send its intermediate", []),
    ("intermediate_soon", "an intermediate expiring before the leaf", []),
    ("weak", "policy: RSA 1024, SHA-1, 800 days validity", [
        "--min-key-size", "2048", "--max-validity", "398d"]),
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
    runs.append(("four endpoints in one run, checked concurrently", several))
    runs.append(("a local certificate bundle (leaf + intermediate)",
                 ["check_tls_expiry", "--file", started["intermediate_soon"].issued.chain_path,
                  "-w", "21d", "-c", "7d"]))
    return runs
