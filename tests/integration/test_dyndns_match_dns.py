"""check_dyndns_match against real DNS servers on loopback: dnsmasq (authoritative for
dyn.test and a forwarding resolver in front of it), misbehaving UDP peers, a closed port."""
import json
import re
import time

import pytest

from osop_checks.checks import dyndns_match
from osop_checks.sources import dns
from lab.peers import run_inprocess, run_plugin
from lab.peers.dns import closed_port

pytestmark = pytest.mark.peer



NAME = "office.dyn.test"
PUBLIC4 = "198.51.100.23"
PUBLIC6 = "2001:db8:1::5"


def check(site_or_server, tmp_path, *argv, process=False):
    server = site_or_server if isinstance(site_or_server, str) else site_or_server.auth.server
    args = ["-H", NAME, "--server", server, "--state-file", str(tmp_path / "state.json")]
    args += list(argv)
    if process:
        return run_plugin("check_dyndns_match", args)
    return run_inprocess(dyndns_match, args)


def test_match(dns_site, tmp_path):
    dns_site.set_records({NAME: [PUBLIC4]})
    out = check(dns_site, tmp_path, "--expect", PUBLIC4, process=True)
    assert out.exitcode == 0, out.output
    assert out.status_line.startswith(
        "DYNDNS_MATCH OK - office.dyn.test resolves to 198.51.100.23, the public address | ")
    assert "dns_A_time=" in out.status_line and "mismatch_seconds=0s;0;600;0" in out.status_line
    assert "TTL 600s, authoritative" in out.output


def test_mismatch_within_and_beyond_grace(dns_site, tmp_path):
    dns_site.set_records({NAME: ["203.0.113.7"]})
    first = check(dns_site, tmp_path, "--expect", PUBLIC4, "--grace", "10m")
    assert first.exitcode == 1, first.output
    assert ("office.dyn.test resolves to 203.0.113.7, public address is 198.51.100.23 "
            "(mismatch for 0s, grace 10m)") in first.status_line
    # 42 minutes later, as the state file tells it.
    state_file = tmp_path / "state.json"
    state = json.loads(state_file.read_text())
    state["A"]["since"] -= 42 * 60
    state_file.write_text(json.dumps(state))
    later = check(dns_site, tmp_path, "--expect", PUBLIC4, "--grace", "10m", process=True)
    assert later.exitcode == 2, later.output
    assert re.match(
        r"DYNDNS_MATCH CRITICAL - office\.dyn\.test resolves to 203\.0\.113\.7, public "
        r"address is 198\.51\.100\.23 \(mismatch for 42m( \d+s)?\) \| ", later.status_line)
    assert re.search(r"mismatch_seconds=252\ds;0;600;0", later.status_line)
    # The DynDNS update arrives: OK again, and the mismatch is forgotten.
    dns_site.set_records({NAME: [PUBLIC4]})
    fixed = check(dns_site, tmp_path, "--expect", PUBLIC4)
    assert fixed.exitcode == 0
    assert json.loads(state_file.read_text()) == {}


def test_a_matches_but_aaaa_does_not(dns_site, tmp_path):
    dns_site.set_records({NAME: [PUBLIC4, "2001:db8:9::5"]})
    out = check(dns_site, tmp_path, "--both", "--expect", PUBLIC4, "--expect", PUBLIC6)
    assert out.exitcode == 1, out.output
    assert ("office.dyn.test resolves to 2001:db8:9::5, public address is 2001:db8:1::5 "
            "(mismatch for 0s, grace 10m); office.dyn.test resolves to 198.51.100.23, the "
            "public address") in out.status_line
    assert "dns_AAAA_time=" in out.status_line


def test_prefix_only_ipv6_match(dns_site, tmp_path):
    dns_site.set_records({NAME: ["2001:db8:1:0:aaaa::5"]})
    whole = check(dns_site, tmp_path, "-6", "--expect", "2001:db8:1:0:bbbb::5")
    assert whole.exitcode == 1
    prefix = check(dns_site, tmp_path, "-6", "--expect", "2001:db8:1:0:bbbb::5",
                   "--v6-prefix", "64")
    assert prefix.exitcode == 0, prefix.output
    assert "in the public /64 prefix of 2001:db8:1:0:bbbb::5" in prefix.status_line


def test_nxdomain(dns_site, tmp_path):
    out = check(dns_site, tmp_path, "--expect", PUBLIC4, "--grace", "0")
    assert out.exitcode == 2, out.output
    assert out.status_line.startswith(
        "DYNDNS_MATCH CRITICAL - office.dyn.test does not exist (NXDOMAIN from %s), public "
        "address is 198.51.100.23 (mismatch for 0s)" % dns_site.auth.server)


def test_no_aaaa_record(dns_site, tmp_path):
    dns_site.set_records({NAME: [PUBLIC4]})
    out = check(dns_site, tmp_path, "-6", "--expect", PUBLIC6, "--grace", "0")
    assert out.exitcode == 2
    assert "office.dyn.test has no AAAA record (answer from %s)" % dns_site.auth.server \
        in out.status_line


def test_stale_resolver_versus_authoritative(dns_site, tmp_path):
    """The resolver still hands out the old address; --authoritative asks the zone's own
    server (found through the resolver: SOA walk-up, NS, its address) and sees the new one."""
    dns_site.set_records({NAME: [PUBLIC4]})
    dns_site.resolver.set_records({NAME: ["203.0.113.7"]})
    stale = check(dns_site.resolver.server, tmp_path, "--expect", PUBLIC4)
    assert stale.exitcode == 1
    assert "resolves to 203.0.113.7" in stale.status_line
    fresh = check(dns_site.resolver.server, tmp_path, "--expect", PUBLIC4, "--authoritative",
                  "--auth-port", str(dns_site.port), "-v", process=True)
    assert fresh.exitcode == 0, fresh.output
    assert "resolves to 198.51.100.23, the public address" in fresh.status_line
    assert "dns_zone_time=" in fresh.status_line
    assert "DNS asked: authoritative servers of dyn.test (ns1.dyn.test %s)" % (
        dns_site.auth.server) in fresh.output


def test_authoritative_mode_unit_steps(dns_site):
    dns_site.set_records({NAME: [PUBLIC4]})
    resolver = [dns.parse_server(dns_site.resolver.server)]
    assert dns.find_zone(NAME, resolver) == "dyn.test."
    assert dns.find_zone("deep.below." + NAME, resolver) == "dyn.test."
    assert dns.authoritative_servers("dyn.test.", resolver, dns_site.port) == [
        ("ns1.dyn.test.", ("127.0.0.1", dns_site.port))]


def test_authoritative_server_unreachable(dns_site, tmp_path):
    """The zone's NS address answers nothing on the port asked: said so, within time."""
    dns_site.set_records({NAME: [PUBLIC4]})
    port = int(closed_port().rsplit(":", 1)[1])
    out = check(dns_site.resolver.server, tmp_path, "--expect", PUBLIC4, "--authoritative",
                "--auth-port", str(port))
    assert out.exitcode == 3
    assert "cannot look up office.dyn.test A: DNS server 127.0.0.1:%d refused the " \
           "connection" % port in out.status_line


def test_refused(dns_site, tmp_path):
    out = check(dns_site.resolver.server, tmp_path, "-H", "www.other.test", "--expect", PUBLIC4)
    assert out.exitcode == 3
    assert "refused to answer for www.other.test (REFUSED)" in out.status_line


def test_server_down(tmp_path):
    server = closed_port()
    started = time.monotonic()
    out = check(server, tmp_path, "--expect", PUBLIC4, process=True)
    assert out.exitcode == 3
    assert out.status_line == ("DYNDNS_MATCH UNKNOWN - cannot look up office.dyn.test A: DNS "
                               "server %s refused the connection (nothing listens there)"
                               % server) + out.status_line[out.status_line.index(" |"):]
    assert time.monotonic() - started < 10
    assert "Traceback" not in out.output + out.stderr


def test_servfail(udp_peer, tmp_path):
    peer = udp_peer("servfail")
    out = check(peer.server, tmp_path, "--expect", PUBLIC4)
    assert out.exitcode == 3
    assert "DNS server %s failed to resolve office.dyn.test (SERVFAIL)" % peer.server \
        in out.status_line


def test_garbage_answer(udp_peer, tmp_path):
    peer = udp_peer("garbage")
    out = check(peer.server, tmp_path, "--expect", PUBLIC4, process=True)
    assert out.exitcode == 3
    assert "DNS server %s sent something that is not a DNS answer" % peer.server \
        in out.status_line
    assert "Traceback" not in out.output + out.stderr


def test_answer_to_another_question(udp_peer, tmp_path):
    peer = udp_peer("other-id")
    out = check(peer.server, tmp_path, "--expect", PUBLIC4)
    assert out.exitcode == 3
    assert "DNS server %s answered a different question" % peer.server in out.status_line


def test_lame_authoritative_server(udp_peer):
    peer = udp_peer("lame")
    server = [dns.parse_server(peer.server)]
    assert dns.lookup(NAME, "A", server).addresses == ["192.0.2.1"]
    lame = dns.lookup(NAME, "A", server, recursion=False, require_aa=True)
    assert lame.kind == dns.LAME
    assert lame.error == ("DNS server %s is listed as authoritative for office.dyn.test but "
                          "did not answer authoritatively (lame delegation)" % peer.server)


@pytest.mark.parametrize("families", [["-4"], ["--both"]])
def test_timeout_within_the_limit(udp_peer, tmp_path, families):
    peer = udp_peer("silent")
    started = time.monotonic()
    # In-process: the bound is the check's own, not the interpreter's start on a busy host.
    out = check(peer.server, tmp_path, "--expect", PUBLIC4, "--expect", PUBLIC6, "-t", "3",
                *families)
    elapsed = time.monotonic() - started
    assert out.exitcode == 3, out.output
    assert elapsed < 3 + 1, elapsed
    assert "cannot look up office.dyn.test A: no answer from DNS server %s within" % (
        peer.server) in out.status_line
    if families == ["--both"]:
        # Each record type had its share of the time, so both say what happened.
        assert "cannot look up office.dyn.test AAAA: no answer" in out.status_line


def test_second_server_answers_when_the_first_is_dead(dns_site, udp_peer):
    dns_site.set_records({NAME: [PUBLIC4]})
    dead = udp_peer("silent")
    servers = [dns.parse_server(dead.server), dns.parse_server(dns_site.auth.server)]
    answer = dns.lookup(NAME, "A", servers, limit=2)
    assert answer.kind == dns.OK and answer.addresses == [PUBLIC4]
    assert answer.server == dns_site.auth.server


def test_tcp_fallback_for_a_truncated_answer(dns_site, caplog):
    """Many addresses do not fit in 512 bytes: dnsmasq truncates, the lookup asks over TCP."""
    many = ["198.51.100.%d" % i for i in range(1, 60)]
    dns_site.set_records({NAME: many})
    with caplog.at_level("INFO", logger="nagiosplugin"):
        answer = dns.lookup(NAME, "A", [dns.parse_server(dns_site.auth.server)])
    assert answer.kind == dns.OK, answer.error
    assert answer.addresses == many
    assert "truncated, asking again over TCP" in caplog.text


def test_system_resolver_gives_one_line(tmp_path):
    """Whatever this machine's resolver says about a name that cannot exist, it is one line
    naming the result, never a traceback."""
    out = run_plugin("check_dyndns_match", ["-H", "does-not-exist.invalid", "--expect",
                                            PUBLIC4, "--state-file",
                                            str(tmp_path / "s.json"), "-t", "5"])
    assert out.exitcode in (1, 3), out.output
    assert out.status_line.startswith("DYNDNS_MATCH ")
    assert "Traceback" not in out.output + out.stderr
