"""check_tls_expiry in the IPv6 test network (lab/peers/ipv6.py): a dual-stack host whose
IPv4 and IPv6 listeners present different certificates on the same port, and an IPv6-only
host, resolved through the network's own DNS (dnsmasq; AAAA only for the IPv6-only name).
The check runs as Icinga would run it, as a process in the client namespace."""
import re

import pytest

from lab.peers import run_plugin
from lab.peers.ipv6 import DUAL4, DUAL6, V6ONLY
from lab.peers.tls import serve_in

pytestmark = pytest.mark.peer

PORT, STARTTLS_PORT = 8443, 587


@pytest.fixture(scope="module")
def hosts(ipv6_net, tls_ca):
    """IPv4 of the dual host: a valid certificate; its IPv6: one expired 2 days ago; the
    IPv6-only host: a valid one on PORT and behind SMTP STARTTLS on STARTTLS_PORT."""
    net = ipv6_net
    good = tls_ca.issue("dual-good", names=(net.dual_name,), ips=(), days=90.3)
    expired = tls_ca.issue("dual-expired", names=(net.dual_name,), ips=(), days=-2)
    only6 = tls_ca.issue("v6only", names=(net.v6only_name,), ips=(V6ONLY,), days=60.3)
    serve_in(net, net.dual, good, DUAL4, PORT)
    serve_in(net, net.dual, expired, DUAL6, PORT)
    serve_in(net, net.v6only, only6, V6ONLY, PORT)
    serve_in(net, net.v6only, only6, V6ONLY, STARTTLS_PORT, starttls="smtp")
    return net


def check(net, tls_ca, *argv):
    outcome = run_plugin("check_tls_expiry", ["--ca-file", tls_ca.ca_path, "-w", "21d",
                                              "-c", "7d"] + list(argv),
                         wrap=net.wrap(net.client))
    assert "Traceback" not in outcome.output, outcome.output  # each test asserts its state
    return outcome


def result_lines(outcome):
    return [line for line in outcome.output.splitlines()[1:]
            if re.match(r"(OK|WARNING|CRITICAL|UNKNOWN): ", line)]


def test_dual_stack_name_with_one_bad_listener_is_critical_naming_the_address(hosts, tls_ca):
    name = hosts.dual_name
    outcome = check(hosts, tls_ca, "-H", name, "-p", str(PORT))
    assert outcome.exitcode == 2, outcome.output
    assert outcome.status_line.startswith(
        "TLS_EXPIRY CRITICAL - %s@[%s]:%d certificate expired 2 days ago (" % (
            name, DUAL6, PORT)), outcome.status_line
    assert "; 1 other ok | " in outcome.status_line
    perf = dict(re.findall(r"'([^']+)_days_leaf'=([-\d.]+)d", outcome.status_line))
    assert sorted(perf) == sorted(["%s@[%s]:%d" % (name, DUAL6, PORT),
                                   "%s@%s:%d" % (name, DUAL4, PORT)])
    assert float(perf["%s@%s:%d" % (name, DUAL4, PORT)]) > 90
    lines = result_lines(outcome)
    assert len(lines) == 2
    assert lines[0].startswith("CRITICAL: %s@[%s]:%d, at %s, " % (name, DUAL6, PORT, DUAL6))
    assert lines[1].startswith("OK: %s@%s:%d, at %s, " % (name, DUAL4, PORT, DUAL4))
    assert "name %r matches" % name in lines[1]


def test_first_address_sees_only_the_first(hosts, tls_ca):
    name = hosts.dual_name
    first = hosts.exec(hosts.client, ["getent", "ahosts", name]).stdout.split()[0]
    outcome = check(hosts, tls_ca, "-H", name, "-p", str(PORT), "--first-address")
    [line] = result_lines(outcome)
    assert line.startswith("%s: %s:%d, at %s, " % (
        "CRITICAL" if first == DUAL6 else "OK", name, PORT, first)), outcome.output
    assert outcome.exitcode == (2 if first == DUAL6 else 0)
    assert "'%s:%d_days_leaf'=" % (name, PORT) in outcome.status_line  # today's label


@pytest.mark.parametrize("flag, address, code", [("-4", DUAL4, 0), ("-6", DUAL6, 2),
                                                 ("--ipv4", DUAL4, 0)])
def test_family_options_narrow_to_one_address_with_todays_label(hosts, tls_ca, flag,
                                                                address, code):
    name = hosts.dual_name
    outcome = check(hosts, tls_ca, "-H", name, "-p", str(PORT), flag)
    assert outcome.exitcode == code, outcome.output
    [line] = result_lines(outcome)
    assert line.startswith("%s: %s:%d, at %s, " % (
        "OK" if code == 0 else "CRITICAL", name, PORT, address)), line
    assert "'%s:%d_days_leaf'=" % (name, PORT) in outcome.status_line


@pytest.mark.parametrize("how", ["name", "literal", "bracketed", "endpoint", "sni@literal"])
def test_ipv6_only_host_by_name_and_by_literal(hosts, tls_ca, how):
    name = hosts.v6only_name
    argv = {"name": ["-H", name, "-p", str(PORT)],
            "literal": ["-H", V6ONLY, "-p", str(PORT)],
            "bracketed": ["-H", "[%s]" % V6ONLY, "-p", str(PORT)],
            "endpoint": ["--endpoint", "[%s]:%d" % (V6ONLY, PORT)],
            "sni@literal": ["--endpoint", "%s@[%s]:%d" % (name, V6ONLY, PORT)]}[how]
    outcome = check(hosts, tls_ca, *argv)
    assert outcome.exitcode == 0, outcome.output
    assert re.match(r"TLS_EXPIRY OK - \S+ certificate expires in 60 days", outcome.status_line)
    assert ", at %s, " % V6ONLY in result_lines(outcome)[0]


def test_ipv6_only_host_asked_for_ipv4_says_it_has_none(hosts, tls_ca):
    outcome = check(hosts, tls_ca, "-H", hosts.v6only_name, "-p", str(PORT), "-4")
    assert outcome.exitcode == 2, outcome.output
    assert outcome.status_line.startswith("TLS_EXPIRY CRITICAL - %s:%d resolve failed: "
                                          "cannot resolve %s" % (hosts.v6only_name, PORT,
                                                                 hosts.v6only_name))


def test_starttls_over_ipv6(hosts, tls_ca):
    outcome = check(hosts, tls_ca, "--endpoint", "%s:%d" % (hosts.v6only_name, STARTTLS_PORT))
    assert outcome.exitcode == 0, outcome.output
    assert outcome.status_line.startswith("TLS_EXPIRY OK - %s:%d (smtp) certificate expires "
                                          "in 60 days" % (hosts.v6only_name, STARTTLS_PORT))
    assert ", at %s, " % V6ONLY in result_lines(outcome)[0]


def test_ambiguous_endpoint_is_a_usage_error_with_the_bracketed_spelling(hosts, tls_ca):
    outcome = check(hosts, tls_ca, "--endpoint", "%s:%d" % (V6ONLY, PORT))
    assert outcome.exitcode == 3
    assert outcome.output.count("\n") == 1
    assert "write [%s]:%d for port %d" % (V6ONLY, PORT, PORT) in outcome.output
