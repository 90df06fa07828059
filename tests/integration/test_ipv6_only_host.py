"""Every network check against the IPv6-only host of lab/peers/ipv6.py (no IPv4 address at
all, its name has an AAAA record only), by name and by literal, run in the client namespace
as a satellite would run it: check_disk_partitions over SNMP (udp6), check_three_copies over
ssh in every spelling of an IPv6 location, check_dyndns_match asking the host's DNS server
and its SNMP agent. check_tls_expiry has its own file (test_tls_expiry_ipv6.py)."""
import os
import shutil

import pytest

from lab.peers import run_plugin
from lab.peers.ipv6 import V6ONLY

pytestmark = pytest.mark.peer

NAME = "v6only.osop.test"
BY = [NAME, "[%s]" % V6ONLY, V6ONLY]  # the name, the bracketed and the bare literal


@pytest.fixture(scope="module")
def host(ipv6_net, tmp_path_factory):
    net = ipv6_net
    snmpd = net.start_snmpd(net.v6only)
    sshd = net.start_sshd(net.v6only)
    base = tmp_path_factory.mktemp("v6only")
    source = base / "source"
    (source / "docs").mkdir(parents=True)
    for number in range(5):
        (source / "docs" / ("letter-%d.txt" % number)).write_text("dear client %d\n" % number)
    copy = base / "copy"  # the namespaces share this machine's files: the host's copy
    shutil.copytree(source, copy, copy_function=shutil.copy2)
    shutil.copystat(source, copy)
    return {"net": net, "sshd": sshd, "source": source, "copy": copy, "base": base,
            "community": snmpd.write_secret("community", snmpd.community)}


def run(host, check, argv):
    outcome = run_plugin(check, [str(a) for a in argv] + ["-t", "10"],
                         wrap=host["net"].wrap(host["net"].client))
    assert "Traceback" not in outcome.output + outcome.stderr, outcome.output
    return outcome


@pytest.mark.parametrize("where", BY)
def test_disk_partitions_over_snmp_udp6(host, where):
    outcome = run(host, "check_disk_partitions", [
        "--snmp", "-H", where, "--community-file", host["community"], "-p", "/"])
    assert outcome.exitcode == 0, outcome.output
    assert outcome.status_line.startswith("DISK_PARTITIONS OK - 1 partition ok, least free: /")


@pytest.mark.parametrize("location", [
    NAME + ":{copy}", "[%s]:{copy}" % V6ONLY, "root@[%s]:{copy}" % V6ONLY,
    "ssh://root@[%s]:22{copy}" % V6ONLY, "ssh://%s{copy}" % NAME])
def test_three_copies_over_ssh(host, location, tmp_path):
    outcome = run(host, "check_three_copies", [
        "--source", host["source"], "--copy", "office=" + location.format(copy=host["copy"]),
        "--min-copies", "1", "--settle", "0", "--state-file", tmp_path / "state.json",
        "--ssh-identity", host["sshd"].client_key,
        "--ssh-known-hosts", host["sshd"].known_hosts])
    assert outcome.exitcode == 0, outcome.output
    assert outcome.status_line.startswith("THREE_COPIES OK - 1 of 1 copy ok, all in sync")


def test_three_copies_refuses_the_bare_ipv6_location_showing_the_brackets(host, tmp_path):
    outcome = run(host, "check_three_copies", [
        "--source", host["source"], "--copy", "office=%s:%s" % (V6ONLY, host["copy"]),
        "--min-copies", "1", "--settle", "0", "--state-file", tmp_path / "state.json"])
    assert outcome.exitcode == 3, outcome.output
    assert "write [%s]:%s (an IPv6 address in brackets)" % (V6ONLY, host["copy"]) \
        in outcome.status_line, outcome.output


@pytest.mark.parametrize("public", [
    ["--expect", V6ONLY],
    ["--snmp", NAME, "--snmp-interface", "eth0"],
    ["--snmp", V6ONLY, "--snmp-interface", "eth0", "--server", V6ONLY],
    ["--snmp", "[%s]" % V6ONLY, "--snmp-interface", "eth0", "--server", "[%s]:53" % V6ONLY],
])
def test_dyndns_match_by_the_hosts_dns_and_snmp(host, public, tmp_path):
    outcome = run(host, "check_dyndns_match", [
        "-H", NAME, "-6", "--state-file", tmp_path / "state.json",
        "--community-file", host["community"]] + public)
    assert outcome.exitcode == 0, outcome.output
    assert outcome.status_line.startswith(
        "DYNDNS_MATCH OK - %s resolves to %s, the public address" % (NAME, V6ONLY))


def test_dyndns_match_mismatch_on_the_ipv6_only_host_is_reported(host, tmp_path):
    outcome = run(host, "check_dyndns_match", [
        "-H", NAME, "-6", "--state-file", tmp_path / "state.json", "--grace", "0",
        "--expect", "2001:db8:16:9::9"])
    assert outcome.exitcode == 2, outcome.output
    assert outcome.status_line.startswith(
        "DYNDNS_MATCH CRITICAL - %s resolves to %s, public address is 2001:db8:16:9::9" % (
            NAME, V6ONLY)), outcome.output
    assert os.path.exists(tmp_path / "state.json")
