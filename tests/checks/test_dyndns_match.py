"""check_dyndns_match judged on constructed answers: sources injected, no network, clock
injected to walk through the grace period."""
import contextlib
import io
import json
import re
import socket
import subprocess
import sys
from types import SimpleNamespace

import pytest
from hypothesis import given, strategies as st
from nagiosplugin import Critical, Ok, Unknown, Warn

from osop_checks import runtime, units
from osop_checks.checks import dyndns_match as check
from osop_checks.sources import dns, publicip
from lab.peers import fixture, run_plugin

NAME = "office.dyn.test"




def answer(rdtype="A", *addresses, kind=dns.OK, error=None, seconds=0.004):
    return dns.Answer(NAME, rdtype, kind, list(addresses), server="192.0.2.53",
                      seconds=seconds, ttl=60, authoritative=True, error=error)


def resolution(*answers, discovery=None):
    return dns.Resolution(list(answers), "server 192.0.2.53", discovery_seconds=discovery)


def echo(mapping):
    """fetch_echo stand-in: url -> address text or Exception text (an error)."""
    def fetch(url, timeout=None):
        value = mapping[url]
        if value.startswith("!"):
            return publicip.Reading(url, error="%s: %s" % (url, value[1:]), seconds=0.01)
        return publicip.Reading(url, [value], seconds=0.01)
    return fetch


class Clock:
    def __init__(self, now=1_800_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def run(argv, tmp_path, resolved, echoes=None, clock=None, interfaces=None):
    """Run the check in-process with injected sources; returns the Outcome."""
    state = ["--state-file", str(tmp_path / "state.json")]

    def build(args):
        return check.build_check(
            args, resolve=lambda name, rdtypes: resolved,
            fetch_echo=echo(echoes or {}), clock=clock or Clock(),
            interface_addresses=interfaces or publicip.interface_addresses)

    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            return runtime.execute(check.NAME, check.build_parser, build,
                                   ["-H", NAME] + state + list(argv))
    except SystemExit as exc:
        return runtime.Outcome(exc.code, out.getvalue())


def test_match_is_ok_with_perfdata(tmp_path):
    out = run(["--ip-url", "http://e1/"], tmp_path, resolution(answer("A", "198.51.100.23")),
              {"http://e1/": "198.51.100.23"})
    assert out.exitcode == 0, out.output
    assert out.status_line.startswith(
        "DYNDNS_MATCH OK - office.dyn.test resolves to 198.51.100.23, the public address |")
    assert "dns_A_time=0.004s;;;0" in out.status_line
    assert "mismatch_seconds=0s;0;600;0" in out.status_line
    assert re.search(r"public_address_time=[0-9.e-]+s;;;0", out.status_line)


def test_mismatch_warning_within_grace_then_critical(tmp_path):
    clock = Clock()
    args = ["--ip-url", "http://e1/", "--grace", "10m"]
    resolved = resolution(answer("A", "203.0.113.7"))
    echoes = {"http://e1/": "198.51.100.23"}
    first = run(args, tmp_path, resolved, echoes, clock)
    assert first.exitcode == 1, first.output
    assert ("office.dyn.test resolves to 203.0.113.7, public address is 198.51.100.23 "
            "(mismatch for 0s, grace 10m)") in first.status_line
    clock.now += 5 * 60
    second = run(args, tmp_path, resolved, echoes, clock)
    assert second.exitcode == 1
    assert "mismatch for 5m, grace 10m" in second.status_line
    assert "mismatch_seconds=300s;0;600;0" in second.status_line
    clock.now += 37 * 60
    third = run(args, tmp_path, resolved, echoes, clock)
    assert third.exitcode == 2
    assert third.status_line.startswith(
        "DYNDNS_MATCH CRITICAL - office.dyn.test resolves to 203.0.113.7, public address is "
        "198.51.100.23 (mismatch for 42m) |")


def test_match_forgets_the_mismatch(tmp_path):
    clock = Clock()
    echoes = {"http://e1/": "198.51.100.23"}
    run(["--ip-url", "http://e1/"], tmp_path, resolution(answer("A", "203.0.113.7")), echoes,
        clock)
    assert "A" in json.loads((tmp_path / "state.json").read_text())
    clock.now += 3600
    ok = run(["--ip-url", "http://e1/"], tmp_path, resolution(answer("A", "198.51.100.23")),
             echoes, clock)
    assert ok.exitcode == 0
    assert json.loads((tmp_path / "state.json").read_text()) == {}
    clock.now += 60
    again = run(["--ip-url", "http://e1/"], tmp_path, resolution(answer("A", "203.0.113.7")),
                echoes, clock)
    assert again.exitcode == 1 and "mismatch for 0s" in again.status_line


def test_grace_zero_is_critical_at_once(tmp_path):
    out = run(["--expect", "198.51.100.23", "--grace", "0"], tmp_path,
              resolution(answer("A", "203.0.113.7")))
    assert out.exitcode == 2
    assert "(mismatch for 0s)" in out.status_line


def test_a_matches_but_aaaa_does_not(tmp_path):
    out = run(["--both", "--expect", "198.51.100.23", "--expect", "2001:db8:1::5"], tmp_path,
              resolution(answer("A", "198.51.100.23"), answer("AAAA", "2001:db8:9::5")))
    assert out.exitcode == 1, out.output
    assert out.status_line.startswith(
        "DYNDNS_MATCH WARNING - office.dyn.test resolves to 2001:db8:9::5, public address is "
        "2001:db8:1::5 (mismatch for 0s, grace 10m); office.dyn.test resolves to "
        "198.51.100.23, the public address |")
    lines = out.output.splitlines()
    assert "OK: office.dyn.test A 198.51.100.23 (answer from 192.0.2.53, TTL 60s, " \
           "authoritative, 0.004 s)" in lines
    assert any(line.startswith("WARNING: office.dyn.test AAAA 2001:db8:9::5") for line in lines)
    assert "dns_AAAA_time=" in out.status_line and "dns_A_time=" in out.status_line


def test_v6_prefix_only_match(tmp_path):
    resolved = resolution(answer("AAAA", "2001:db8:1:0:aaaa::5"))
    whole = run(["-6", "--expect", "2001:db8:1:0:bbbb::5"], tmp_path, resolved)
    assert whole.exitcode == 1
    prefix = run(["-6", "--expect", "2001:db8:1:0:bbbb::5", "--v6-prefix", "64"], tmp_path,
                 resolved)
    assert prefix.exitcode == 0, prefix.output
    assert ("resolves to 2001:db8:1:0:aaaa::5, in the public /64 prefix of "
            "2001:db8:1:0:bbbb::5") in prefix.status_line
    other = run(["-6", "--expect", "2001:db8:2::5", "--v6-prefix", "64"], tmp_path, resolved)
    assert other.exitcode == 1
    assert "(comparing /64 prefixes)" in other.status_line


def test_v6_prefix_does_not_touch_ipv4(tmp_path):
    out = run(["--expect", "198.51.100.24", "--v6-prefix", "8"], tmp_path,
              resolution(answer("A", "198.51.100.23")))
    assert out.exitcode == 1


def test_nxdomain_is_a_mismatch(tmp_path):
    out = run(["--expect", "198.51.100.23"], tmp_path, resolution(answer(
        "A", kind=dns.NXDOMAIN, error="office.dyn.test does not exist (NXDOMAIN from x)")))
    assert out.exitcode == 1
    assert out.status_line.startswith(
        "DYNDNS_MATCH WARNING - office.dyn.test does not exist (NXDOMAIN from x), public "
        "address is 198.51.100.23 (mismatch for 0s, grace 10m)")


def test_no_aaaa_record_is_a_mismatch(tmp_path):
    out = run(["-6", "--expect", "2001:db8::1", "--grace", "0"], tmp_path, resolution(answer(
        "AAAA", kind=dns.NODATA, error="office.dyn.test has no AAAA record (answer from x)")))
    assert out.exitcode == 2
    assert "office.dyn.test has no AAAA record" in out.status_line


@pytest.mark.parametrize("kind,error", [
    (dns.TIMEOUT, "no answer from DNS server 192.0.2.53 within 4.5 s"),
    (dns.SERVFAIL, "DNS server 192.0.2.53 failed to resolve office.dyn.test (SERVFAIL)"),
    (dns.UNREACHABLE, "DNS server 192.0.2.53 refused the connection (nothing listens there)"),
    (dns.GARBAGE, "DNS server 192.0.2.53 sent something that is not a DNS answer (x)"),
])
def test_dns_failures_are_unknown_and_keep_the_state(tmp_path, kind, error):
    clock = Clock()
    run(["--expect", "198.51.100.23"], tmp_path, resolution(answer("A", "203.0.113.7")),
        clock=clock)
    clock.now += 120
    out = run(["--expect", "198.51.100.23"], tmp_path,
              resolution(answer("A", kind=kind, error=error)), clock=clock)
    assert out.exitcode == 3
    assert out.status_line.startswith(
        "DYNDNS_MATCH UNKNOWN - cannot look up office.dyn.test A: " + error)
    assert "mismatch_seconds" not in out.status_line
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["A"]["since"] == clock.now - 120


def test_echo_sources_disagree(tmp_path):
    out = run(["--ip-url", "http://e1/", "--ip-url", "http://e2/"], tmp_path,
              resolution(answer("A", "198.51.100.23")),
              {"http://e1/": "198.51.100.23", "http://e2/": "198.51.100.99"})
    assert out.exitcode == 3
    assert ("cannot tell the public IPv4 address: the public address sources disagree: "
            "http://e1/ says 198.51.100.23, http://e2/ says 198.51.100.99") in out.status_line


def test_one_echo_source_failing_while_others_agree_is_warning(tmp_path):
    out = run(["--ip-url", "http://e1/", "--ip-url", "http://e2/", "--ip-url", "http://e3/"],
              tmp_path, resolution(answer("A", "198.51.100.23")),
              {"http://e1/": "198.51.100.23", "http://e2/": "!no answer within 2.0 s",
               "http://e3/": "198.51.100.23"})
    assert out.exitcode == 1
    assert "1 of 3 address sources failed: http://e2/: no answer within 2.0 s" \
        in out.status_line
    assert "resolves to 198.51.100.23, the public address" in out.status_line


def test_mismatch_is_not_hidden_by_a_failed_source(tmp_path):
    out = run(["--ip-url", "http://e1/", "--ip-url", "http://e2/", "--grace", "0"], tmp_path,
              resolution(answer("A", "203.0.113.7")),
              {"http://e1/": "198.51.100.23", "http://e2/": "!the answer is an HTML page"})
    assert out.exitcode == 2
    assert out.status_line.startswith("DYNDNS_MATCH CRITICAL - office.dyn.test resolves to "
                                      "203.0.113.7, public address is 198.51.100.23")


def test_every_source_failing_is_unknown(tmp_path):
    out = run(["--ip-url", "http://e1/"], tmp_path, resolution(answer("A", "198.51.100.23")),
              {"http://e1/": "!the answer is an HTML page, not an IP address ('<html>')"})
    assert out.exitcode == 3
    assert ("cannot tell the public IPv4 address: no source gave a public IPv4 address: "
            "http://e1/: the answer is an HTML page") in out.status_line


def test_source_of_the_other_family_only(tmp_path):
    out = run(["-6", "--ip-url", "http://e1/"], tmp_path,
              resolution(answer("AAAA", "2001:db8::1")), {"http://e1/": "198.51.100.23"})
    assert out.exitcode == 3
    assert "no source gave a public IPv6 address: http://e1/ gave 198.51.100.23" \
        in out.status_line


def test_interface_source(tmp_path):
    entries = {"ppp0": [SimpleNamespace(family=socket.AF_INET, address="198.51.100.23"),
                        SimpleNamespace(family=socket.AF_INET6, address="fe80::1%ppp0"),
                        SimpleNamespace(family=socket.AF_INET6, address="2001:db8:1::5")]}

    def interfaces(name):
        return publicip.interface_addresses(name, net_if_addrs=lambda: entries)

    out = run(["--both", "--interface", "ppp0"], tmp_path,
              resolution(answer("A", "198.51.100.23"), answer("AAAA", "2001:db8:1::5")),
              interfaces=interfaces)
    assert out.exitcode == 0, out.output
    missing = run(["--interface", "eth9"], tmp_path, resolution(answer("A", "198.51.100.23")),
                  interfaces=interfaces)
    assert missing.exitcode == 3
    assert "interface eth9 does not exist (there are: ppp0)" in missing.status_line


def test_global_addresses_leave_out_local_scopes():
    entries = [SimpleNamespace(family=socket.AF_INET, address=a) for a in
               ("127.0.0.1", "169.254.3.4", "198.51.100.23", "0.0.0.0")]
    entries += [SimpleNamespace(family=socket.AF_INET6, address=a) for a in
                ("::1", "fe80::1%eth0", "fd00::5", "2001:db8::7", "ff02::1")]
    entries.append(SimpleNamespace(family=getattr(socket, "AF_PACKET", 17),
                                   address="52:54:00:12:34:56"))
    assert publicip.global_addresses(entries) == ["198.51.100.23", "2001:db8::7"]


def test_damaged_state_file_is_reset(tmp_path):
    (tmp_path / "state.json").write_text("{not json")
    out = run(["--expect", "198.51.100.23", "-v"], tmp_path, resolution(answer("A", "203.0.113.7")))
    assert out.exitcode == 1, out.output
    assert "state file" in out.output and "reset" in out.output
    assert "A" in json.loads((tmp_path / "state.json").read_text())


def test_state_file_that_cannot_be_written(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = run(["--expect", "198.51.100.23", "--state-file", str(blocker / "sub" / "s.json")],
              tmp_path, resolution(answer("A", "203.0.113.7")))
    assert out.exitcode == 3
    assert out.status_line == ("DYNDNS_MATCH UNKNOWN - cannot use the state directory "
                               "%s: Not a directory" % (blocker / "sub"))
    (tmp_path / "dir.json").mkdir()
    out = run(["--expect", "198.51.100.23", "--state-file", str(tmp_path / "dir.json")],
              tmp_path, resolution(answer("A", "198.51.100.23")))  # exists: opened to clear
    assert out.exitcode == 3
    assert out.status_line.startswith("DYNDNS_MATCH UNKNOWN - cannot open the state file %s: "
                                      "Is a directory" % (tmp_path / "dir.json"))


def test_state_file_in_a_missing_directory_is_not_created(tmp_path):
    path = tmp_path / "missing" / "s.json"
    out = run(["--expect", "198.51.100.23", "--state-file", str(path)], tmp_path,
              resolution(answer("A", "203.0.113.7")))
    assert out.exitcode == 3
    assert "the directory of the state file %s does not exist" % path in out.status_line
    assert not (tmp_path / "missing").exists()


def test_no_state_file_while_all_is_well(tmp_path):
    out = run(["--expect", "198.51.100.23"], tmp_path, resolution(answer("A", "198.51.100.23")))
    assert out.exitcode == 0
    assert "mismatch_seconds=0s" in out.status_line
    assert not (tmp_path / "state.json").exists()
    out = run(["--expect", "198.51.100.23"], tmp_path, resolution(answer(
        "A", kind=dns.TIMEOUT, error="no answer")))
    assert out.exitcode == 3
    assert not (tmp_path / "state.json").exists()


def test_default_state_directory_is_created_private(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))

    def build(args):
        return check.build_check(args, resolve=lambda name, rdtypes: resolution(
            answer("A", "203.0.113.7")), clock=Clock())

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        outcome = runtime.execute(check.NAME, check.build_parser, build,
                                  ["-H", NAME, "--expect", "198.51.100.23"])
    assert outcome.exitcode == 1, outcome.output
    directory = tmp_path / "xdg" / "osop-checks"
    assert (directory / "dyndns_match_office.dyn.test.json").exists()
    assert directory.stat().st_mode & 0o777 == 0o700


def test_default_state_file():
    assert check.default_state_file("office.dyn.test", {"XDG_STATE_HOME": "/s"}, 7) == \
        "/s/osop-checks/dyndns_match_office.dyn.test.json"
    assert check.default_state_file("a_b.test", {}, 7) == \
        "/var/tmp/osop-checks-7/dyndns_match_a_b.test.json"


@pytest.mark.parametrize("argv,message", [
    ([], "give at least one source of the public address"),
    (["--expect", "1.2.3.4", "-4", "-6"], "not allowed with argument"),
    (["--expect", "1.2.3.999"], "'1.2.3.999' is not an IP address"),
    (["--expect", "1.2.3.4", "--server", "dns.example"], "'dns.example' is not an IP address"),
    (["--expect", "1.2.3.4", "--server", "192.0.2.1:99999"], "is not a port (1-65535)"),
    (["--ip-url", "ftp://x/"], "'ftp://x/' is not an http:// or https:// URL"),
    (["--expect", "1.2.3.4", "--v6-prefix", "129"], "outside 1..128"),
    (["--expect", "1.2.3.4", "--grace", "soon"], "is not a duration"),
    (["--expect", "1.2.3.4", "--state-file", ""], "argument --state-file: the path is empty"),
    (["--expect", "1.2.3.4", "--router-user", "x"], "--router-user is for --router-tr064"),
    (["--router-tr064", "--router-fingerprint", "ab:cd"], "is not a SHA-256 fingerprint"),
    (["--router-tr064", "http://192.0.2.1:49000/tr64desc.xml", "--router-fingerprint",
      "ab" * 32], "--router-fingerprint needs an https:// --router-tr064 URL"),
    (["--router-tr064", "--router-password-file", "/nonexistent/pw"],
     "cannot read the router password file /nonexistent/pw"),
])
def test_usage_errors(tmp_path, argv, message):
    out = run(argv, tmp_path, resolution(answer("A", "198.51.100.23")))
    assert out.exitcode == 3
    assert out.output.startswith("DYNDNS_MATCH UNKNOWN - ")
    assert message in out.output
    assert len(out.output.strip().splitlines()) == 1


def test_bad_hostname_is_a_usage_error():
    out = run_plugin("check_dyndns_match", ["-H", "bad name!", "--expect", "1.2.3.4"])
    assert out.exitcode == 3
    assert out.output.startswith("DYNDNS_MATCH UNKNOWN - argument -H/--hostname: "
                                 "'bad name!' is not a DNS name")


def test_help_lists_every_option():
    out = run_plugin("check_dyndns_match", ["--help"])
    assert out.exitcode == 3
    for option in ("--server IP[:PORT]", "--authoritative", "--ip-url URL", "--interface NAME",
                   "--expect ADDR", "--v6-prefix N", "--grace DURATION", "--state-file PATH",
                   "--both", "--snmp HOST"):
        assert option in out.output


def test_importing_the_check_loads_no_heavy_module():
    code = ("import sys, osop_checks.checks.dyndns_match; "
            "print(sorted(m for m in ('dns', 'requests', 'psutil', 'pysnmp', 'cryptography') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


# -- sources: pure parts --------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("192.0.2.1", ("192.0.2.1", 53)),
    ("192.0.2.1:5353", ("192.0.2.1", 5353)),
    ("2001:db8::53", ("2001:db8::53", 53)),
    ("[2001:db8::53]:5353", ("2001:db8::53", 5353)),
    ("[::1]", ("::1", 53)),
])
def test_parse_server(text, expected):
    assert dns.parse_server(text) == expected


@pytest.mark.parametrize("text", ["", "dns.example", "1.2.3.4:", "1.2.3.4:0", "[::1", "[::1]x",
                                  "1.2.3.4:port"])
def test_parse_server_rejects(text):
    with pytest.raises(ValueError):
        dns.parse_server(text)


@given(st.ip_addresses(), st.integers(1, 65535))
def test_server_text_round_trip(address, port):
    server = (str(address), port)
    assert dns.parse_server(dns.format_server(server)) == server


def test_format_server():
    assert dns.format_server(("192.0.2.1", 53)) == "192.0.2.1"
    assert dns.format_server(("2001:db8::1", 5353)) == "[2001:db8::1]:5353"


def test_system_servers_reads_resolv_conf(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("search example.org\nnameserver 192.0.2.53\nnameserver 2001:db8::53\n")
    assert dns.system_servers(str(conf)) == [("192.0.2.53", 53), ("2001:db8::53", 53)]
    empty = tmp_path / "empty.conf"
    empty.write_text("# nothing\n")
    result = dns.resolve(NAME, ("A",), resolv_conf=str(empty))
    assert result.answers[0].kind == dns.UNREACHABLE
    assert "no name server configured in %s" % empty in result.answers[0].error


@pytest.mark.parametrize("body,expected", [
    ("198.51.100.23", "198.51.100.23"),
    ("198.51.100.23\n", "198.51.100.23"),
    (b"  2001:DB8::0001\r\n", "2001:db8::1"),
])
def test_parse_echo(body, expected):
    assert publicip.parse_echo(body) == expected


@pytest.mark.parametrize("body,message", [
    ("", "the answer is empty"),
    ("<!DOCTYPE html><html><title>Login</title>", "an HTML page"),
    ("<html>\n<body>203.0.113.7</body></html>", "an HTML page"),
    ('{"ip": "198.51.100.23"}', "JSON"),
    ("Your IP is 198.51.100.23", "not an IP address: 'Your IP is 198.51.100.23'"),
    ("198.51.100.256", "not an IP address"),
    ("fe80::1%eth0", "not an IP address"),
    (b"\xff\xfe\x00garbage", "binary data"),
    ("x" * 2000, "not an IP address"),
])
def test_parse_echo_rejects(body, message):
    with pytest.raises(publicip.EchoError, match=None) as info:
        publicip.parse_echo(body)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@given(st.ip_addresses(), st.text(" \t\r\n", max_size=3), st.text(" \t\r\n", max_size=3))
def test_parse_echo_reads_every_address(address, before, after):
    assert publicip.parse_echo(before + str(address) + after) == str(address)
    assert publicip.parse_echo((before + address.exploded + after).encode()) == str(address)


@given(st.one_of(st.text(max_size=80), st.binary(max_size=80)))
def test_parse_echo_answers_or_says_why(body):
    try:
        result = publicip.parse_echo(body)
    except publicip.EchoError as exc:
        assert str(exc).startswith("the answer is ")
        assert "\n" not in str(exc) and "|" not in str(exc)
    else:
        import ipaddress
        text = body.decode() if isinstance(body, bytes) else body
        assert result == str(ipaddress.ip_address(text.strip()))


@given(st.text(max_size=60))
def test_parse_echo_rejects_every_html_page(inner):
    with pytest.raises(publicip.EchoError, match="HTML page"):
        publicip.parse_echo("<html>" + inner + "</html>")


# -- comparison: pure ----------------------------------------------------------------------

def test_public_for_agreement_with_prefix():
    readings = [publicip.Reading("a", ["2001:db8:1::5"]), publicip.Reading("b", ["2001:db8:1::9"])]
    assert check.public_for(6, readings, 128)[0] == []
    assert check.public_for(6, readings, 64) == (["2001:db8:1::5"], None)


def test_fixed_address_normalises():
    assert publicip.fixed_address("2001:DB8::0001").addresses == ["2001:db8::1"]


def test_a_state_file_that_is_a_symlink_is_refused_not_followed(tmp_path):
    """Another user's link in a shared directory must not make the check write elsewhere."""
    target = tmp_path / "elsewhere.json"
    target.write_text("{}")
    link = tmp_path / "s.json"
    link.symlink_to(target)
    out = run(["--expect", "198.51.100.23", "--state-file", str(link)], tmp_path,
              resolution(answer("A", "203.0.113.7")))
    assert out.exitcode == 3, out.output
    assert "the state file %s is a symbolic link, which is never followed" % link \
        in out.status_line
    assert target.read_text() == "{}"


# -- the judgement, on plain data ----------------------------------------------------------

NOW = 1_800_000_000.0


def gathered(*answers, readings=None, public_asked=False, discovery=None):
    return check.Gathered(readings if readings is not None else
                          [publicip.fixed_address("198.51.100.23")],
                          resolution(*answers, discovery=discovery), 0.25, public_asked)


def perfdata(verdict):
    return sorted(str(p) for p in verdict.perfdata)


def test_judge_match():
    verdict = check.judge(gathered(answer("A", "198.51.100.23")), check.Limits(), None, NOW)
    assert verdict.state == Ok
    assert verdict.findings == [(Ok, "office.dyn.test resolves to 198.51.100.23, the public "
                                     "address")]
    assert verdict.summary == "office.dyn.test resolves to 198.51.100.23, the public address"
    assert perfdata(verdict) == ["dns_A_time=0.004s;;;0", "mismatch_seconds=0s;0;600;0"]
    assert verdict.long == [
        "OK: office.dyn.test A 198.51.100.23 (answer from 192.0.2.53, TTL 60s, authoritative, "
        "0.004 s)", "DNS asked: server 192.0.2.53",
        "public address from expected: 198.51.100.23 (0.000 s)"]
    assert verdict.save is None  # no previous state: nothing to save


def test_judge_mismatch_ages_from_the_previous_state():
    previous = check.Memory("/nonexistent/s.json", mismatches={"A": {"since": NOW - 300}})
    within = check.judge(gathered(answer("A", "203.0.113.7")), check.Limits(grace=600),
                         previous, NOW)
    assert within.findings == [(Warn, "office.dyn.test resolves to 203.0.113.7, public address "
                                      "is 198.51.100.23 (mismatch for 5m, grace 10m)")]
    assert "mismatch_seconds=300s;0;600;0" in perfdata(within)
    late = check.judge(gathered(answer("A", "203.0.113.7")), check.Limits(grace=60), previous,
                       NOW)
    assert late.findings == [(Critical, "office.dyn.test resolves to 203.0.113.7, public "
                                        "address is 198.51.100.23 (mismatch for 5m)")]
    assert "mismatch_seconds=300s;0;60;0" in perfdata(late)
    # a remembered start in the future or damaged counts from now
    for entry in ({"since": NOW + 60}, {"since": "yesterday"}, "x"):
        fresh = check.judge(gathered(answer("A", "203.0.113.7")), check.Limits(),
                            check.Memory("s.json", mismatches={"A": entry}), NOW)
        assert fresh.findings[0][1].endswith("(mismatch for 0s, grace 10m)")


def test_judge_saves_the_next_state_after_the_output(tmp_path):
    path = str(tmp_path / "s.json")
    previous = check.Memory(path, mismatches={"A": {"since": NOW - 60}, "AAAA": {"since": 1}})
    verdict = check.judge(gathered(answer("A", "203.0.113.7"), answer("AAAA", "2001:db8::5"),
                                   readings=[publicip.fixed_address("198.51.100.23"),
                                             publicip.fixed_address("2001:db8::5")]),
                          check.Limits(), previous, NOW)
    assert not (tmp_path / "s.json").exists()  # judging writes nothing
    verdict.save()
    assert json.loads((tmp_path / "s.json").read_text()) == {
        "A": {"since": NOW - 60, "dns": "203.0.113.7", "public": ["198.51.100.23"]}}


def test_judge_match_without_a_state_file_writes_none(tmp_path):
    path = tmp_path / "s.json"
    verdict = check.judge(gathered(answer("A", "198.51.100.23")), check.Limits(),
                          check.Memory(str(path)), NOW)
    verdict.save()
    assert not path.exists()


def test_judge_undecided_is_unknown_and_keeps_the_state(tmp_path):
    path = str(tmp_path / "s.json")
    remembered = {"A": {"since": NOW - 60, "dns": "203.0.113.7", "public": []}}
    (tmp_path / "s.json").write_text(json.dumps(remembered))  # as gather read it
    verdict = check.judge(gathered(answer("A", kind=dns.TIMEOUT, error="no answer")),
                          check.Limits(), check.Memory(path, mismatches=remembered), NOW)
    assert verdict.findings == [(Unknown, "cannot look up office.dyn.test A: no answer")]
    assert not any("mismatch_seconds" in p for p in perfdata(verdict))
    verdict.save()
    assert json.loads((tmp_path / "s.json").read_text()) == remembered


def test_judge_a_failed_source_warns_and_the_long_output_is_by_exit_code():
    readings = [publicip.Reading("http://e1/", ["198.51.100.23"], seconds=0.1),
                publicip.Reading("http://e2/", error="http://e2/: refused", seconds=0.2)]
    verdict = check.judge(gathered(answer("A", "203.0.113.7"),
                                   answer("AAAA", kind=dns.TIMEOUT, error="no answer"),
                                   readings=readings, public_asked=True, discovery=0.5),
                          check.Limits(grace=0), None, NOW)
    # the AAAA comparison cannot be decided: no warning about the failed source then
    assert verdict.state == Unknown
    assert [state for state, _ in verdict.findings] == [Critical, Unknown]
    assert verdict.summary == (
        "office.dyn.test resolves to 203.0.113.7, public address is 198.51.100.23 (mismatch "
        "for 0s); cannot tell the public IPv6 address: no source gave a public IPv6 address: "
        "http://e2/: refused; http://e1/ gave 198.51.100.23")
    assert [line.split(":")[0] for line in verdict.long[:2]] == ["UNKNOWN", "CRITICAL"]
    assert verdict.long[2:] == ["DNS asked: server 192.0.2.53",
                                "public address from http://e1/: 198.51.100.23 (0.100 s)",
                                "public address source failed: http://e2/: refused (0.200 s)"]
    assert perfdata(verdict) == ["dns_AAAA_time=0.004s;;;0", "dns_A_time=0.004s;;;0",
                                 "dns_zone_time=0.5s;;;0", "mismatch_seconds=0s;0;0;0",
                                 "public_address_time=0.25s;;;0"]
    decided = check.judge(gathered(answer("A", "198.51.100.23"), readings=readings),
                          check.Limits(), None, NOW)
    assert decided.findings[1:] == [(Warn, "1 of 2 address sources failed: http://e2/: "
                                           "refused")]
    assert decided.summary == ("1 of 2 address sources failed: http://e2/: refused; "
                               "office.dyn.test resolves to 198.51.100.23, the public address")


def test_upnp_text_that_is_not_xml_is_its_own_error():
    from osop_checks.sources import upnp

    with pytest.raises(upnp.NotXml, match="the SOAP answer is not XML"):
        upnp.parse_xml(b"<html><body>502 Bad Gateway", "the SOAP answer")
    with pytest.raises(upnp.UpnpError) as refused:
        upnp.parse_xml(b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', "the description")
    assert not isinstance(refused.value, upnp.NotXml)


# -- TR-064 (a FRITZ!Box) ------------------------------------------------------------------

def test_tr064_description_constructed_from_avm_docs():
    from osop_checks.sources import tr064, upnp

    services = upnp.parse_description(
        fixture("tr064/fritzbox_tr64desc_constructed-from-avm-docs.xml").encode(),
        "https://192.168.178.1:49443/tr64desc.xml", tr064.SERVICES)
    assert [(s.service_type, s.control_url) for s in services] == [
        ("urn:dslforum-org:service:WANPPPConnection:1",
         "https://192.168.178.1:49443/upnp/control/wanpppconn1"),
        ("urn:dslforum-org:service:WANIPConnection:1",
         "https://192.168.178.1:49443/upnp/control/wanipconnection1")]


STATUS = ('<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
          '<s:Body><u:GetStatusInfoResponse xmlns:u="urn:dslforum-org:service:WANPPPConnection:1">'
          '<NewConnectionStatus>%s</NewConnectionStatus><NewLastConnectionError>%s'
          '</NewLastConnectionError><NewUptime>%s</NewUptime></u:GetStatusInfoResponse>'
          '</s:Body></s:Envelope>')


def test_tr064_status_and_fingerprints():
    from osop_checks.sources import tr064, upnp

    assert tr064.parse_status((STATUS % ("Connected", "ERROR_NONE", "7201")).encode()) == (
        "Connected", 7201, "ERROR_NONE")
    with pytest.raises(upnp.UpnpError, match="NewUptime is not a number"):
        tr064.parse_status((STATUS % ("Connected", "", "soon")).encode())
    assert tr064.normalize_fingerprint("AB:" * 31 + "CD") == "ab" * 31 + "cd"
    for wrong in ("ab" * 31, "zz" * 32, ""):
        with pytest.raises(ValueError, match="SHA-256 fingerprint"):
            tr064.normalize_fingerprint(wrong)
    assert tr064.endpoint("https://fritz.box:49443/tr64desc.xml") == "fritz.box:49443"


def router_reading(uptime, trusted=None, last_error="ERROR_NONE"):
    reading = publicip.Reading("TR-064 router https://fritz.box:49443/tr64desc.xml "
                               "(WANPPPConnection)", ["198.51.100.23"])
    reading.facts = {"service": "WANPPPConnection", "status": "Connected", "uptime": uptime,
                     "last_error": last_error}
    if trusted:
        reading.facts["trusted"] = trusted
    return reading


def test_judge_router_connection_in_the_long_output_and_first_use_kept():
    previous = check.Memory("/nonexistent/s.json")
    verdict = check.judge(gathered(answer("A", "198.51.100.23"), readings=[router_reading(
        3 * 3600 + 60, trusted={"fritz.box:49443": "ab" * 32},
        last_error="ERROR_IDLE_DISCONNECT")]), check.Limits(), previous, NOW)
    assert verdict.state == Ok
    assert verdict.long[-2:] == [
        "trusted the certificate of fritz.box:49443 on first use: SHA-256 " + ":".join(
            ["AB"] * 32) + " (kept in the state file; --router-fingerprint pins it instead)",
        "router connection (TR-064 WANPPPConnection): Connected for 3h 1m, last reconnect "
        "%s, last connection error ERROR_IDLE_DISCONNECT" % units.format_time(
            NOW - 3 * 3600 - 60)]
    kept = verdict.save.args[2]["router"]
    assert kept == {"fingerprints": {"fritz.box:49443": "ab" * 32},
                    "reconnects": [NOW - 3 * 3600 - 60]}


def test_judge_router_reconnects_flagged_only_when_repeated_within_minutes():
    def run_at(now, uptime, remembered):
        previous = check.Memory("/nonexistent/s.json", mismatches=remembered)
        verdict = check.judge(gathered(answer("A", "198.51.100.23"),
                                       readings=[router_reading(uptime)]),
                              check.Limits(), previous, now)
        return verdict, {"router": verdict.save.args[2]["router"]}

    # a nightly forced reconnect, seen by a check every 5 minutes for two days
    remembered = {}
    for step in range(0, 2 * 86400, 300):
        now = NOW + step
        verdict, remembered = run_at(now, (now - NOW) % 86400 + 10, remembered)
        assert verdict.state == Ok, (step, verdict.summary)
    assert len(remembered["router"]["reconnects"]) <= 2
    # one every few minutes
    remembered, states = {}, []
    for step in range(0, 1800, 300):
        verdict, remembered = run_at(NOW + step, 30, remembered)
        states.append(verdict.state)
    assert states[:2] == [Ok, Ok] and states[2:] == [Warn] * 4
    assert verdict.summary.startswith("the router reconnected 6 times within 30m (last %s)"
                                    % units.format_time(NOW + 1500 - 30))
