"""check_disk_partitions -H --snmp against a real Net-SNMP snmpd on 127.0.0.1 (lab/peers/snmpd):
its filesystems compared with this machine's own df, v2c and v3, the failures an admin meets
(wrong community, wrong keys, unknown user, agent down, a filesystem that went away, a filter
matching nothing), and secrets that never reach the output."""
import os
import subprocess
import tempfile
import time

import pytest

from osop_checks.sources import snmp, snmp_storage
from lab.peers import need, need_root, run_plugin
from lab.peers.snmpd import Snmpd

FAST = ["--snmp-timeout", "0.5", "--snmp-retries", "0"]


def df_rows():
    """mount point -> (size, used, avail, inode use %) from df -B1, as this host sees it."""
    out = subprocess.run(["df", "-B1", "--output=target,size,used,avail,ipcent"],
                         capture_output=True, text=True, env=dict(os.environ, LC_ALL="C"))
    rows = {}
    for line in out.stdout.splitlines()[1:]:
        target, size, used, avail, ipcent = line.rsplit(None, 4)
        rows[target] = (int(size), int(used), int(avail),
                        None if ipcent == "-" else int(ipcent.rstrip("%")))
    return rows


def v2c_target(agent):
    return snmp.Target("127.0.0.1", agent.port, community=agent.community, timeout=1,
                       retries=1)


def check(agent, extra, v3=False, **kw):
    args = agent.v3_args() if v3 else agent.v2c_args()
    return run_plugin("check_disk_partitions", args + list(extra), **kw)


def _device(path):
    try:
        return os.stat(path).st_dev if os.path.ismount(path) else None
    except OSError:
        return None


def test_agent_filesystems_match_this_machines_df(snmpd):
    # Same machine: the agent's fixed disks are df's filesystems, size exact to the byte
    # (hrStorage units are the block size) and used/avail equal up to what a busy disk
    # writes between the two readings; retried because other tests write meanwhile.
    for _attempt in range(5):
        before = df_rows()
        remote = [p for p in snmp_storage.fetch(v2c_target(snmpd)) if p.fstype == "fixedDisk"]
        after = df_rows()
        assert remote, "the agent reports no fixed disk"
        problems = []
        listed = {_device(m) for m in before}
        for part in remote:
            if part.mountpoint not in before:
                # df leaves out a second mount of a filesystem it shows (the bind mount
                # /run/netns that `ip netns add` makes), and a test's temporary mount may be
                # gone by now: neither is a disagreement between the agent and df.
                if _device(part.mountpoint) not in listed | {None}:
                    problems.append("%s not in df" % part.mountpoint)
                continue
            size, used, avail, ipcent = before[part.mountpoint]
            _, used2, avail2, _ = after[part.mountpoint]
            slack = max(64 * 4096, abs(used2 - used) * 2, size // 2000)
            if part.size != size:
                problems.append("%s size %d != df %d" % (part.mountpoint, part.size, size))
            if abs(part.used - used) > slack:
                problems.append("%s used %d != df %d" % (part.mountpoint, part.used, used))
            # dskAvail is KiB: exact for 4 KiB blocks, else rounded down by under 1 KiB.
            if abs(part.free - avail) > slack + 1024:
                problems.append("%s free %d != df avail %d" % (part.mountpoint, part.free,
                                                                avail))
            if ipcent is not None and part.inodes_total:
                if abs((100 - part.inodes_free) - ipcent) > 1:
                    problems.append("%s inode use %d%% != df %d%%" % (
                        part.mountpoint, 100 - part.inodes_free, ipcent))
        if not problems:
            break
        time.sleep(0.5)
    assert not problems, problems
    # Every block-device filesystem df shows is one the agent reports.
    devices = subprocess.run(["df", "--output=source,target"], capture_output=True,
                             text=True).stdout.splitlines()[1:]
    local_disks = {line.split()[1] for line in devices if line.startswith("/dev/")}
    assert local_disks <= {p.mountpoint for p in remote}


def test_v2c_whole_process_ok_with_perfdata(snmpd):
    outcome = check(snmpd, ["-p", "/", "-w", "1%", "-c", "0%"])
    assert outcome.exitcode == 0, outcome.output
    assert outcome.status_line.startswith("DISK_PARTITIONS OK - 1 partition ok, least free: / ")
    assert "'/'=" in outcome.status_line and "'/ inodes'=" in outcome.status_line


def test_v3_authpriv_works(snmpd):
    outcome = check(snmpd, ["-p", "/", "-w", "1%", "-c", "0%"], v3=True)
    assert outcome.exitcode == 0, outcome.output
    assert "1 partition ok" in outcome.status_line


def test_v3_keys_from_the_environment(snmpd):
    args = ["-H", "127.0.0.1", "--snmp", "--snmp-port", str(snmpd.port), "--snmp-version",
            "3", "--snmp-user", snmpd.user, "-p", "/", "-w", "1%", "-c", "0%"]
    outcome = run_plugin("check_disk_partitions", args, env={
        "OSOP_SNMP_AUTH_KEY": snmpd.auth_key, "OSOP_SNMP_PRIV_KEY": snmpd.priv_key})
    assert outcome.exitcode == 0, outcome.output


def test_wrong_community_is_a_timeout_in_words(snmpd, tmp_path):
    wrong = tmp_path / "community"
    wrong.write_text("not-the-community\n")
    start = time.monotonic()
    outcome = run_plugin("check_disk_partitions", [
        "-H", "127.0.0.1", "--snmp", "--snmp-port", str(snmpd.port),
        "--community-file", str(wrong)] + FAST)
    assert outcome.exitcode == 3
    assert outcome.status_line.startswith(
        "DISK_PARTITIONS UNKNOWN - no SNMP response from 127.0.0.1:%d within 0.5 s" % snmpd.port)
    assert "wrong community" in outcome.status_line
    assert "not-the-community" not in outcome.output
    assert time.monotonic() - start < 10


@pytest.mark.parametrize("change,words", [
    ({"auth_key": "wrong-auth-key"}, "wrong authentication key or protocol (wrong digest)"),
    ({"auth_proto": "SHA-512"}, "wrong authentication key or protocol (wrong digest)"),
    ({"priv_key": "wrong-priv-key"}, "wrong privacy key or protocol"),
    ({"user": "nobody"}, "does not know the SNMP v3 user nobody (unknown user name)"),
])
def test_wrong_v3_credentials_in_words(snmpd, change, words):
    args = ["-H", "127.0.0.1", "--snmp", "--snmp-port", str(snmpd.port), "--snmp-version",
            "3", "--snmp-user", change.get("user", snmpd.user),
            "--auth-proto", change.get("auth_proto", "SHA"), "-vvv"] + FAST
    env = {"OSOP_SNMP_AUTH_KEY": change.get("auth_key", snmpd.auth_key),
           "OSOP_SNMP_PRIV_KEY": change.get("priv_key", snmpd.priv_key)}
    outcome = run_plugin("check_disk_partitions", args, env=env)
    assert outcome.exitcode == 3, outcome.output
    assert outcome.status_line.startswith("DISK_PARTITIONS UNKNOWN - ")
    assert words in outcome.status_line, outcome.output
    for secret in (env["OSOP_SNMP_AUTH_KEY"], env["OSOP_SNMP_PRIV_KEY"]):
        assert secret not in outcome.output + outcome.stderr
    assert "Traceback" not in outcome.output


def test_authnopriv_against_a_priv_only_user_says_so(snmpd):
    outcome = run_plugin("check_disk_partitions", [
        "-H", "127.0.0.1", "--snmp", "--snmp-port", str(snmpd.port), "--snmp-version", "3",
        "--snmp-user", snmpd.user] + FAST, env={"OSOP_SNMP_AUTH_KEY": snmpd.auth_key})
    assert outcome.exitcode == 3
    assert "authorizationError" in outcome.status_line and "authPriv" in outcome.status_line


def test_agent_down_ends_within_the_timeout():
    need("snmpd")
    with Snmpd() as agent:
        args = agent.v2c_args()
        agent.stop()  # the port is now closed: nothing answers
        start = time.monotonic()
        outcome = run_plugin("check_disk_partitions", args + ["-t", "3"])
        elapsed = time.monotonic() - start
    assert outcome.exitcode == 3, outcome.output
    assert outcome.status_line.startswith("DISK_PARTITIONS UNKNOWN - no SNMP response from "
                                          "127.0.0.1:%d" % agent.port)
    assert elapsed < 3 + 1 + 1  # --timeout + 1 s, + 1 s for interpreter start-up


def test_unresolvable_host(snmpd):
    outcome = run_plugin("check_disk_partitions", [
        "-H", "no-such-host.invalid", "--snmp", "--community", "x"] + FAST)
    assert outcome.exitcode == 3
    assert outcome.status_line.startswith(
        "DISK_PARTITIONS UNKNOWN - cannot resolve the SNMP host no-such-host.invalid")


def test_a_filter_matching_nothing(snmpd):
    outcome = check(snmpd, ["--match", "^/no-such-mount-anywhere$"])
    assert outcome.exitcode == 3
    assert outcome.output == ("DISK_PARTITIONS UNKNOWN - no storage of 127.0.0.1 matches "
                              "--match '^/no-such-mount-anywhere$'\n")


def test_other_storage_types(snmpd):
    outcome = check(snmpd, ["--storage-type", "ram", "-w", "0%", "-c", "0%", "-v"])
    assert outcome.exitcode == 0, outcome.output
    assert "Physical memory" in outcome.output and "'/'=" not in outcome.output


def test_secrets_never_in_the_output_even_at_vvv(snmpd):
    # The discouraged way (argv) on purpose: even then no secret is echoed.
    runs = [
        check(snmpd, ["-vvv", "-p", "/"]),
        run_plugin("check_disk_partitions", [
            "-H", "127.0.0.1", "--snmp", "--snmp-port", str(snmpd.port), "-vvv",
            "--community", snmpd.community, "-p", "/"]),
        run_plugin("check_disk_partitions", [
            "-H", "127.0.0.1", "--snmp", "--snmp-port", str(snmpd.port), "-vvv",
            "--snmp-version", "3", "--snmp-user", snmpd.user, "--auth-key", snmpd.auth_key,
            "--priv-key", snmpd.priv_key, "-p", "/"]),
        run_plugin("check_disk_partitions", [
            "-H", "127.0.0.1", "--snmp", "--snmp-port", str(snmpd.port), "-vvv",
            "--snmp-version", "3", "--snmp-user", snmpd.user, "--auth-key", snmpd.auth_key,
            "--priv-key", "wrong" + snmpd.priv_key] + FAST),
    ]
    for outcome in runs:
        assert outcome.exitcode in (0, 3), outcome.output
        text = outcome.output + outcome.stderr
        assert "asking SNMP" in text  # -vvv did log the peer asked ...
        for secret in (snmpd.community, snmpd.auth_key, snmpd.priv_key):
            assert secret not in text  # ... but never a secret


def test_a_filesystem_that_disappears_from_the_agent():
    """A tmpfs the agent sees in its own mount namespace: present, then gone after the
    agent restarts without it. -p names it: OK, then CRITICAL in words."""
    need("snmpd", "unshare")
    need_root()
    mountpoint = tempfile.mkdtemp(prefix="osop-snmp-vanish-")
    try:
        with Snmpd(private_mounts=[mountpoint]) as agent:
            outcome = check(agent, ["-p", mountpoint, "-p", "/", "-w", "1%", "-c", "0%"])
            assert outcome.exitcode == 0, outcome.output
            assert "2 partitions ok" in outcome.status_line
            assert "'%s'=0B;" % mountpoint in outcome.status_line
            assert not os.path.ismount(mountpoint)  # the host never saw it
            agent.restart(private_mounts=[])
            outcome = check(agent, ["-p", mountpoint, "-p", "/", "-w", "1%", "-c", "0%"])
            assert outcome.exitcode == 2, outcome.output
            assert outcome.status_line.startswith(
                "DISK_PARTITIONS CRITICAL - %s is not in the storage table of 127.0.0.1" %
                mountpoint)
            outcome = check(agent, ["-p", mountpoint, "--ignore-missing"])
            assert outcome.exitcode == 0 and "(ignored)" in outcome.status_line
    finally:
        os.rmdir(mountpoint)


def test_the_source_facade_against_the_agent(snmpd):
    """snmp.get / walk / table as other checks use them (dyndns reads IP-MIB ipAddrTable)."""
    target = v2c_target(snmpd)
    assert snmp.get(target, ["1.3.6.1.2.1.1.5.0"]) == [b"osop-test-agent"]
    with pytest.raises(snmp.SnmpError, match=r"has no such instance at 1\.3\.6\.1\.2\.1\.1\.5\.7"):
        snmp.get(target, ["1.3.6.1.2.1.1.5.7"])
    assert snmp.get(target, ["1.3.6.1.2.1.1.5.7"], missing_ok=True) == [None]
    rows = snmp.walk(target, "1.3.6.1.2.1.4.20.1.1")  # ipAdEntAddr
    assert ((1, 3, 6, 1, 2, 1, 4, 20, 1, 1, 127, 0, 0, 1), "127.0.0.1") in rows
    table = snmp.table(target, "1.3.6.1.2.1.4.20.1", [1, 2, 3])
    assert table[(127, 0, 0, 1)][3] == "255.0.0.0"
    assert snmp.walk(target, "1.3.6.1.4.1.99999") == []
    addresses = snmp.table(target, "1.3.6.1.2.1.4.34.1", [3, 4])  # IP-MIB ipAddressTable
    assert ("ipv4", "127.0.0.1", ()) in [snmp.inet_address(index) for index in addresses]
    v3 = snmp.Target("127.0.0.1", snmpd.port, "3", user=snmpd.user, auth_key=snmpd.auth_key,
                     priv_key=snmpd.priv_key, timeout=1, retries=1)
    assert snmp.get(v3, ["1.3.6.1.2.1.1.5.0"]) == [b"osop-test-agent"]


PROTOCOLS = [("MD5", "DES"), ("SHA", "AES"), ("SHA-224", "AES"), ("SHA-256", "AES-192"),
             ("SHA-384", "AES-256"), ("SHA-512", "AES-256")]


@pytest.fixture(scope="module")
def snmpd_all_protocols():
    need("snmpd")
    users = [("user%d" % i, auth, "auth-%s-key" % i, priv, "priv-%s-key" % i)
             for i, (auth, priv) in enumerate(PROTOCOLS)]
    with Snmpd(extra_users=users) as agent:
        yield agent, users


@pytest.mark.parametrize("number", range(len(PROTOCOLS)),
                         ids=["%s+%s" % p for p in PROTOCOLS])
def test_every_v3_protocol_pair_net_snmp_knows(snmpd_all_protocols, number):
    # Net-SNMP's AES-192/AES-256 are Blumenthal's key extension; that is what ours mean too.
    agent, users = snmpd_all_protocols
    user, auth, auth_key, priv, priv_key = users[number]
    target = snmp.Target("127.0.0.1", agent.port, "3", user=user, auth_proto=auth,
                         auth_key=auth_key, priv_proto=priv, priv_key=priv_key, timeout=1,
                         retries=1)
    assert snmp.get(target, ["1.3.6.1.2.1.1.5.0"]) == [b"osop-test-agent"]
