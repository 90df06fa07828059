"""`make demo` for check_tls_expiry: the issue's scenarios, served on loopback by
lab/peers/tls.py (a test CA, TLS and STARTTLS servers, a black hole); as root also a
dual-stack name whose IPv6 listener serves an expired certificate, in the IPv6 test network
of lab/peers/ipv6.py."""
import tempfile

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
    runs.append(("the 90-day certificate with -w 95%: alert on a share of its lifetime",
                 ["check_tls_expiry"] + started["valid"].args + ["-w", "95%"]))
    runs.append(("four endpoints in one run, checked concurrently", several))
    runs.append(("a local certificate bundle (leaf + intermediate)",
                 ["check_tls_expiry", "--file", started["intermediate_soon"].issued.chain_path,
                  "-w", "21d", "-c", "7d"]))
    return runs + dual_stack(stack, started["valid"].ca)


def dual_stack(stack, ca):
    """A name with an A and an AAAA record, the IPv6 listener's certificate expired: every
    address, then -4 and --first-address. Needs root (namespaces); else left out."""
    import os

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
