"""osop_checks.address: the one rule for a host (issue 15; issue 16 grows it into the address
parser)."""
import re

import pytest

from osop_checks import address


@pytest.mark.parametrize("value, host", [
    ("nas", "nas"), ("backup-01.example.org", "backup-01.example.org"),
    ("office.dyn.test.", "office.dyn.test."), ("_srv.example", "_srv.example"),
    ("192.0.2.7", "192.0.2.7"), ("[2001:db8::1]", "2001:db8::1"), ("::1", "::1"),
    ("[fe80::1%eth0]", "fe80::1%eth0"),
])
def test_hosts_and_addresses_pass(value, host):
    assert address.check_host(value) == host


@pytest.mark.parametrize("value", [
    "", "-oProxyCommand=id", "a b", "$(id)", "`id`", "host\nname", "a@evil", "[a@evil]",
    "[nas]", "[192.0.2.7]", "nas-", "a..b", "x" * 64 + ".example", "1::2::3", "[::1]:22",
])
def test_anything_else_is_refused_with_the_rule(value):
    with pytest.raises(ValueError, match="host name, an IPv4 address or an IPv6 address in "
                                         "brackets"):
        address.check_host(value)


def test_a_location_wants_brackets_around_ipv6():
    with pytest.raises(ValueError):
        address.check_host("::1", bracketed_only=True)
    assert address.check_host("[::1]", bracketed_only=True) == "::1"


# -- parse_host (issue 16) ------------------------------------------------------------------

@pytest.mark.parametrize("value, host", [
    ("[::1]", "::1"), ("::1", "::1"), ("2001:db8::7", "2001:db8::7"),
    ("[fe80::1%eth0]", "fe80::1%eth0"), ("192.0.2.7", "192.0.2.7"), ("vault", "vault"),
])
def test_parse_host(value, host):
    assert address.parse_host(value) == host


@pytest.mark.parametrize("value, words", [
    ("192.0.2.300", "is not a valid IPv4 address"), ("127.1", "is not a valid IPv4 address"),
    ("[::1", "is not a host name"), ("[vault]", "is not an IPv6 address in brackets"),
    ("::1::2", "is not a host name"), ("fe80::1%a b", "is not a host name"),
])
def test_parse_host_refuses_in_one_line(value, words):
    with pytest.raises(ValueError, match=words) as info:
        address.parse_host(value)
    assert "\n" not in str(info.value)


# -- parse_endpoint --------------------------------------------------------------------------

@pytest.mark.parametrize("value, host, port", [
    ("mail.example.org", "mail.example.org", 443),
    ("mail.example.org:993", "mail.example.org", 993),
    ("192.0.2.7:25", "192.0.2.7", 25), ("[::1]:993", "::1", 993), ("[::1]", "::1", 443),
    ("::1", "::1", 443), ("2001:db8::7", "2001:db8::7", 443), ("[fe80::1%eth0]:8443",
                                                               "fe80::1%eth0", 8443),
    ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8", 443), ("::1:abcd", "::1:abcd", 443),
])
def test_endpoints(value, host, port):
    endpoint = address.parse_endpoint(value, 443)
    assert endpoint == address.Endpoint(host, port)
    assert (endpoint.host, endpoint.port) == (host, port)
    assert address.parse_endpoint(str(endpoint), 1) == endpoint  # str() writes it back


def test_an_ambiguous_endpoint_shows_both_bracketed_spellings():
    with pytest.raises(ValueError) as info:
        address.parse_endpoint("::1:993", 443)
    assert str(info.value) == ("'::1:993' is ambiguous: write [::1]:993 for port 993, or "
                               "[::1:993] for the address")
    with pytest.raises(ValueError, match=r"write \[1:2:3:4:5:6:7:8\]:443 for port 443"):
        address.parse_endpoint("1:2:3:4:5:6:7:8:443", 443)


@pytest.mark.parametrize("value, words", [
    ("host:0", "is not a port"), ("host:65536", "is not a port"), ("host:x", "is not a port"),
    ("host:", "is not a port"), ("[::1]:", "is not a port"), ("[::1]x", "expected"),
    ("[::1", "expected"), (":993", "has no host"), ("a b:1", "is not a host name"),
    ("", "is not a host name"), ("[::1]:99999", "is not a port"), ("host:+80", "not a port"),
])
def test_bad_endpoints(value, words):
    with pytest.raises(ValueError, match=words) as info:
        address.parse_endpoint(value, 443)
    assert "\n" not in str(info.value)


# -- parse_remote_path -----------------------------------------------------------------------

@pytest.mark.parametrize("value, remote", [
    ("/data2", (None, None, None, "/data2")),
    ("/mnt/a:b", (None, None, None, "/mnt/a:b")),
    ("vault:/srv/x", (None, "vault", None, "/srv/x")),
    ("backup@vault:/srv/x", ("backup", "vault", None, "/srv/x")),
    ("backup@[::1]:/srv/x", ("backup", "::1", None, "/srv/x")),
    ("[2001:db8::7]:/srv", (None, "2001:db8::7", None, "/srv")),
    ("ssh://backup@[::1]:47022/p", ("backup", "::1", 47022, "/p")),
    ("ssh://vault/srv", (None, "vault", None, "/srv")),
    ("ssh://backup@192.0.2.7:2222/srv", ("backup", "192.0.2.7", 2222, "/srv")),
    ("ssh://[fe80::1%eth0]/srv", (None, "fe80::1%eth0", None, "/srv")),
])
def test_remote_paths(value, remote):
    parsed = address.parse_remote_path(value)
    assert parsed == address.Remote(*remote)
    assert address.parse_remote_path(str(parsed)) == parsed


@pytest.mark.parametrize("value, words", [
    ("ssh://::1:47022/p", r"write ssh://\[::1\]:47022/p for port 47022"),
    ("ssh://backup@::1/p", r"write ssh://backup@\[::1\]/p"),
    ("backup@2001:db8::7:/srv", r"write backup@\[2001:db8::7\]:/srv"),
    ("::1:/srv", r"write \[::1\]:/srv"),
    ("ssh://vault:0/p", "is not a port"), ("ssh://vault:70000/p", "is not a port"),
    ("ssh://vault", "needs an absolute path"), ("vault:srv", "must be absolute"),
    ("data2", "is not an absolute path"), ("a b@vault:/x", "is not a user name"),
    ("%u@vault:/x", "is not a user name"), ("ssh://-oProxy@vault/x", "is not a user name"),
    ("ssh://[a@evil]/x", r"'\[a@evil\]' is not an IPv6 address in brackets"),
    ("-oProxyCommand=id:/x", "is not a host name"), ("ssh:///x", "has no host"),
])
def test_bad_remote_paths(value, words):
    with pytest.raises(ValueError, match=words) as info:
        address.parse_remote_path(value)
    assert "\n" not in str(info.value)


# -- families and resolve --------------------------------------------------------------------

def test_family_options_are_one_pair_with_one_dest():
    from osop_checks import cli

    parser = cli.Parser("X", "check_x", "a check's parser: its options take kind=")
    cli.add_family_options(parser.add_argument_group("g"))
    assert parser.parse_args([]).family is None
    assert parser.parse_args(["-4"]).family == 4
    assert parser.parse_args(["--ipv6"]).family == 6
    with pytest.raises(SystemExit):
        parser.parse_args(["-4", "-6"])


def test_resolve_literals_and_families():
    assert address.resolve("::1", 22) == [(6, "::1")]
    assert address.resolve("127.0.0.1", None, 4) == [(4, "127.0.0.1")]
    with pytest.raises(address.ResolveError, match=r"::1 is an IPv6 address, but -4 asks for "
                                                   r"IPv4 only"):
        address.resolve("::1", 22, 4)


def test_one_encoding_of_the_family_converted_only_at_a_socket_call():
    """The IP version (4, 6, None for either) everywhere; socket's constants only where a
    socket is made or getaddrinfo answers."""
    import socket

    assert [address.socket_family(v) for v in (None, 4, 6)] == [
        socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6]
    assert [address.version_of(f) for f in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX,
                                            socket.AF_UNSPEC)] == [4, 6, None, None]
    for version in (None, 4, 6):
        assert address.version_of(address.socket_family(version)) == version
    assert [address.family_of(h) for h in ("192.0.2.1", "2001:db8::1", "fe80::1%eth0",
                                           "host.example")] == [4, 6, 6, None]
    with pytest.raises(address.ResolveError, match=r"^127.0.0.1 is an IPv4 address, but -6 "
                                                   r"asks for IPv6 only$"):
        address.resolve("127.0.0.1", 22, 6)


def test_resolve_names_what_is_missing():
    with pytest.raises(address.ResolveError, match="cannot resolve nothing.invalid"):
        address.resolve("nothing.invalid", 22)


def test_resolve_is_bounded_by_its_timeout(monkeypatch):
    import socket
    import threading
    import time

    gate = threading.Event()
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a: gate.wait(5) and [])
    started = time.monotonic()
    with pytest.raises(address.ResolveError, match="no answer within 0.2 s"):
        address.resolve("slow.example", 22, None, 0.2)
    gate.set()
    assert time.monotonic() - started < 1


def test_cli_types_are_usage_errors():
    import argparse

    from osop_checks import cli

    assert cli.host_type("[::1]") == "::1"
    assert cli.endpoint_type(161)("[::1]") == ("::1", 161)
    assert cli.remote_path_type("ssh://u@[::1]:2/p").port == 2
    with pytest.raises(argparse.ArgumentTypeError, match="ambiguous"):
        cli.endpoint_type(443)("::1:993")


# -- through the checks: every address option, one line and exit 3 ---------------------------

# (check, argv with the address, whether the option takes a port: '::1:993' is then ambiguous;
# for a host alone it is the address ::0.1.9.147)
ADDRESS_OPTIONS = [
    ("check_tls_expiry", lambda bad: ["-H", bad], False),
    ("check_tls_expiry", lambda bad: ["--endpoint", bad], True),
    ("check_disk_partitions", lambda bad: ["--snmp", "-H", bad, "--community", "x"], False),
    ("check_three_copies", lambda bad: ["--source", "/", "--copy", "o=%s:/srv" % bad], True),
    ("check_three_copies", lambda bad: ["--source", "/", "--copy", "o=ssh://%s/srv" % bad],
     True),
    ("check_dyndns_match", lambda bad: ["-H", "office.dyn.test", "--snmp", bad,
                                        "--community", "x"], False),
    ("check_dyndns_match", lambda bad: ["-H", "office.dyn.test", "--expect", "192.0.2.1",
                                        "--server", bad], True),
]
MALFORMED = ["::1:993", "[::1", "1::2::3", "[nas]", "host:99999", "[::1]x", "a b"]


@pytest.mark.parametrize("check, argv, bad", [
    pytest.param(check, argv, bad, id="%s %d-%s" % (check, i, bad))
    for i, (check, argv, with_port) in enumerate(ADDRESS_OPTIONS) for bad in MALFORMED
    if with_port or bad != "::1:993"])  # a host alone: ::1:993 is the address ::0.1.9.147
def test_a_malformed_address_is_one_usage_line_in_every_check(check, argv, bad):
    from lab.peers import run_plugin

    outcome = run_plugin(check, argv(bad) + ["-t", "5"])
    assert outcome.exitcode == 3, outcome.output
    assert len(outcome.output.splitlines()) == 1, outcome.output
    assert "Traceback" not in outcome.output + outcome.stderr
    assert outcome.status_line.startswith(check.upper()[6:] + " UNKNOWN - "), outcome.output
    assert "(see --help)" in outcome.status_line, outcome.output
    if bad == "::1:993" and "--copy" not in argv(bad):
        assert "write [::1]:993 for port 993" in outcome.status_line, outcome.output


@pytest.mark.parametrize("check, argv", [
    ("check_tls_expiry", ["-H", "127.0.0.1", "-6"]),
    ("check_tls_expiry", ["--endpoint", "[::1]:993", "-4"]),
    ("check_disk_partitions", ["--snmp", "-H", "::1", "-4", "--community", "x"]),
    ("check_three_copies", ["--source", "/", "--copy", "o=127.0.0.1:/srv", "-6"]),
    ("check_three_copies", ["--source", "/", "--copy", "o=ssh://[::1]/srv", "-4"]),
])  # check_dyndns_match's -4/-6 choose the family compared (A, AAAA), not a transport
def test_an_address_of_the_other_family_than_asked_is_a_usage_error(check, argv):
    """-4/-6 mean the same in every network check; a literal of the other family is no
    lookup failure (CRITICAL) but a contradiction in the arguments."""
    from lab.peers import run_plugin

    outcome = run_plugin(check, argv + ["-t", "5"])
    assert outcome.exitcode == 3, outcome.output
    assert re.search(r"-([46]) asks for IPv\1, but \S+ is an IPv[46] address \(see --help\)$",
                     outcome.status_line), outcome.output


def test_ssh_gets_the_family_of_the_check():
    from osop_checks.sources import ssh

    assert "-6" in ssh.argv("vault", ["true"], ssh.Options(family=6))
    assert "-4" not in ssh.argv("vault", ["true"], ssh.Options())
