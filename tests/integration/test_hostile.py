"""Hostile peers and other users (issue 15): a check that meets one ends within --timeout + 1 s,
under 64 MiB, in one clear line."""
import os
import re
import subprocess

import pytest

from lab.peers.hostile import assert_contained, assert_contained_lines, forced_key, measured

pytestmark = pytest.mark.peer

FLOOD = "head -c 300000000 /dev/zero"
# The probe (a 'sh -c' that answers 'ok <dev> <stamp>') is answered truly, the listing is
# one 300 MB line.
LISTING_FLOOD = """case "$SSH_ORIGINAL_COMMAND" in *'echo missing'*) eval "$SSH_ORIGINAL_COMMAND";;
*) %s;; esac
""" % FLOOD


def _three_copies(tmp_path, sshd, command, timeout=10):
    source = tmp_path / "source"
    copy = tmp_path / "copy"
    for tree in (source, copy):
        (tree / "docs").mkdir(parents=True)
        (tree / "docs" / "a.txt").write_text("a\n")
    script = tmp_path / "forced.sh"
    script.write_text(command + "\n")
    key = forced_key(sshd, tmp_path / "hostile_key", "sh %s" % script)
    argv = ["--source", source, "--copy", "office=127.0.0.1:%s" % copy,
            "--ssh-port", sshd.port, "--ssh-identity", key,
            "--ssh-known-hosts", sshd.known_hosts, "--settle", "0", "--min-copies", "1",
            "-t", timeout]
    out = measured("check_three_copies", argv)
    assert_contained(out, timeout, "THREE_COPIES")
    return out


@pytest.mark.parametrize("command, words", [
    (FLOOD, "the answer from 127.0.0.1 is more than 1 MiB of output (286 MiB)"),
    (FLOOD + " >&2", "127.0.0.1"),
    (LISTING_FLOOD, "a line longer than 1 MiB"),
], ids=["probe-stdout", "stderr", "listing-line"])
def test_an_ssh_peer_that_floods_is_bounded(tmp_path, sshd, command, words):
    out = _three_copies(tmp_path, sshd, command)
    assert words in out.status_line, out.output


# -- files that never end ------------------------------------------------------------------

@pytest.fixture
def endless_fifo(tmp_path):
    """A FIFO with a writer that never stops."""
    path = str(tmp_path / "fifo")
    os.mkfifo(path)
    writer = subprocess.Popen(["dd", "if=/dev/zero", "of=" + path, "bs=64k"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield path
    finally:
        writer.kill()
        writer.wait()


@pytest.fixture
def zero_link(tmp_path):
    path = str(tmp_path / "backup.log")
    os.symlink("/dev/zero", path)
    return path


@pytest.mark.parametrize("source", ["/dev/zero", "zero_link", "endless_fifo"])
def test_a_log_that_never_ends_is_refused(tmp_path, request, source):
    path = source if source.startswith("/") else request.getfixturevalue(source)
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "f").write_text("x")
    out = measured("check_backup_age", ["-p", tmp_path / "tree", "--log", path, "-t", "5"])
    assert_contained(out, 5, "BACKUP_AGE")
    assert out.exitcode == 3, out.output
    assert "cannot read the --log %s: larger than 4 MiB" % path in out.status_line, \
        out.output


SECRET_AND_ENDPOINT = [
    ("check_disk_partitions", ["--snmp", "-H", "127.0.0.1", "--community-file"],
     "cannot read the SNMP community file %s: larger than 64 KiB"),
    ("check_tls_expiry", ["--endpoint-file"], "cannot read the endpoint file %s: larger than "
                                              "1 MiB"),
]


@pytest.mark.parametrize("source", ["/dev/zero", "endless_fifo"])
@pytest.mark.parametrize("check, argv, words", SECRET_AND_ENDPOINT,
                         ids=["community-file", "endpoint-file"])
def test_a_secret_or_endpoint_file_that_never_ends_is_refused(request, source, check, argv,
                                                              words):
    path = source if source.startswith("/") else request.getfixturevalue(source)
    out = measured(check, argv + [path, "-t", "5"])
    assert_contained(out, 5, check[len("check_"):].upper())
    assert words % path in out.status_line, out.output


# -- the root walk and another user ---------------------------------------------------------

SWAPPER = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
a, b, count = sys.argv[1].encode(), sys.argv[2].encode(), int(sys.argv[3])
print("swapping", flush=True)
for _ in range(count):  # renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE)
    libc.renameat2(-100, a, -100, b, 2)
"""


def test_a_directory_swapped_for_a_symlink_during_the_root_walk_is_not_followed():
    """nobody owns a folder inside the tree root walks, and swaps a directory in it for a
    symlink to a root-only directory over and over while root runs the check 40 times:
    nothing from the root-only directory may show."""
    import time

    from osop_checks.checks import backup_age
    from lab.peers import need_root, run_inprocess
    from lab.peers.foreign_user import shared_tempdir

    need_root()
    old = time.time() - 86400
    with shared_tempdir("hostile-walk-") as base:
        secret = os.path.join(base, "secret")  # root's alone
        os.makedirs(os.path.join(secret, "inner"))
        os.chmod(secret, 0o700)
        with open(os.path.join(secret, "inner", "root-only-file"), "w") as handle:
            handle.write("secret\n")
        top = os.path.join(base, "top")
        shared = os.path.join(top, "shared")
        os.makedirs(os.path.join(shared, "d", "inner"))
        for name in range(200):  # a listing that takes a while: room for the swap
            open(os.path.join(shared, "d", "f%03d" % name), "w").close()
            os.utime(os.path.join(shared, "d", "f%03d" % name), (old, old))
        open(os.path.join(shared, "d", "inner", "mine"), "w").close()
        os.utime(os.path.join(shared, "d", "inner", "mine"), (old, old))
        os.symlink(secret, os.path.join(shared, "x"))
        subprocess.run(["chown", "-R", "-h", "nobody", shared], check=True)
        swapper = subprocess.Popen(
            ["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c", SWAPPER,
             os.path.join(shared, "d"), os.path.join(shared, "x"), "50000000"],
            stdout=subprocess.PIPE, text=True)
        try:
            assert swapper.stdout.readline() == "swapping\n"
            outputs = [run_inprocess(backup_age, ["-p", top, "--workers", "1", "-vv"]).output
                       for _ in range(40)]
        finally:
            swapper.kill()
            swapper.wait()
    leaked = [o for o in outputs if "root-only-file" in o]
    assert leaked == [], "%d of 40 runs showed the root-only file: %s" % (len(leaked),
                                                                          leaked[0])
    assert all(o.startswith("BACKUP_AGE ") for o in outputs), outputs


# -- the os_upgrades cache in a directory others can write ----------------------------------

def _forge(path):
    """The cache file at ``path`` rewritten to say: nothing pending."""
    import json

    with open(path) as handle:
        data = json.load(handle)
    data["pending"]["upgrades"] = []
    return json.dumps(data)


def test_the_os_upgrades_cache_cannot_be_forged_by_another_user(foreign_install):
    """nagios keeps its answer in a cache directory; another user writes a forged answer
    there (the right name and key, 'nothing pending'), or a symlink to /dev/zero: neither is
    believed. A cache directory others may write to is refused."""
    import pwd

    from lab.peers.foreign_user import shared_tempdir

    nagios = pwd.getpwnam("nagios")
    with shared_tempdir("hostile-cache-") as base:
        apt_get = os.path.join(base, "apt-get")  # this host's apt state may be broken
        with open(apt_get, "w") as handle:
            handle.write("#!/bin/sh\ncat <<EOF\n%s%sEOF\n" % ("".join(
                "Inst pkg%d [1.0] (1.1 Debian:12.5/stable [amd64])\n" % i for i in range(134)),
                "134 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n"))
        os.chmod(apt_get, 0o755)
        argv = ["--apt-get", apt_get, "--max-list-age", "0", "-v", "-t", "20"]
        private = os.path.join(base, "private")
        os.mkdir(private, 0o755)
        os.chown(private, nagios.pw_uid, nagios.pw_gid)
        first = foreign_install.run("check_os_upgrades", argv + ["--cache-dir", private])
        # 134 upgrades, none from a security archive: WARNING (a reboot pending here would be
        # WARNING as well)
        assert first.exitcode == 1 and "134" in first.status_line, first.output + first.stderr
        [name] = os.listdir(private)
        forged = _forge(os.path.join(private, name))

        shared = os.path.join(base, "shared")  # as /tmp: everyone may write, sticky
        os.mkdir(shared)
        os.chmod(shared, 0o1777)
        for directory in (shared, private):
            path = os.path.join(directory, name)
            if os.path.exists(path):
                os.unlink(path)
            with open(path, "w") as handle:  # written by nobody
                handle.write(forged)
            os.chown(path, 65534, 65534)
        out = foreign_install.run("check_os_upgrades", argv + ["--cache-dir", shared])
        assert out.exitcode == 3, out.output
        assert "the cache directory %s is not a private directory of this user" % shared \
            in out.status_line, out.output
        assert [n for n in os.listdir(shared) if n != name] == []  # no temporary file left
        out = foreign_install.run("check_os_upgrades", argv + ["--cache-dir", private])
        assert "answer cached at" not in out.output, out.output
        assert "belongs to uid 65534, not to this user" in out.output, out.output
        assert out.status_line.startswith("OS_UPGRADES WARNING - 134 upgrades"), out.output

        path = os.path.join(private, name)
        os.unlink(path)
        os.symlink("/dev/zero", path)
        out = measured("check_os_upgrades", argv + ["--cache-dir", private],
                       user="nagios", bin_dir=foreign_install.bin)
        assert_contained_lines(out, 20, "OS_UPGRADES")
        assert "answer cached at" not in out.output, out.output
        assert "is a symbolic link, which is never followed" in out.output, out.output


# -- an SNMP agent that answers without end ---------------------------------------------------

def test_an_endless_snmp_table_is_cut_at_the_row_limit():
    from lab.peers.endless_snmp import EndlessAgent

    with EndlessAgent() as agent:
        base = ["--snmp", "-H", "127.0.0.1", "--snmp-port", agent.port, "--community",
                "public", "-t", "8"]
        out = measured("check_disk_partitions", base + ["--snmp-max-rows", "200"])
        assert_contained(out, 8, "DISK_PARTITIONS")
        assert "127.0.0.1:%d answered more than 200 rows under 1.3.6.1.2.1.25.2.3.1 " \
               "without an end" % agent.port in out.status_line, out.output
        # the default limit, or the timeout first on a slow machine: either says what happened
        out = measured("check_disk_partitions", base + ["-t", "4"])
        assert_contained(out, 4, "DISK_PARTITIONS")
        assert ("answered more than 10000 rows" in out.status_line
                or "requests, but the walk did not end" in out.status_line), out.output


# -- a "what is my IP" echo that drips or redirects -------------------------------------------

@pytest.mark.parametrize("hostile, says", [
    ({"drip": 0.2}, "no answer within"),
    ({"drip": 0.3, "redirects": 30}, "more than 5 redirects"),
], ids=["drips-bytes", "slow-redirects"])
def test_a_slow_echo_keeps_to_its_share_of_the_time(dns_site, http_echo, tmp_path, hostile,
                                                     says):
    from osop_checks.checks.dyndns_match import PUBLIC_SHARE

    dns_site.set_records({"office.dyn.test": ["198.51.100.23"]})
    echo = http_echo(**hostile)
    out = measured("check_dyndns_match", [
        "-H", "office.dyn.test", "--server", dns_site.auth.server, "--state-file",
        tmp_path / "state.json", "--ip-url", echo.url, "-t", "8"])
    assert_contained_lines(out, 8, "DYNDNS_MATCH")  # its reason: the DNS answer, the source
    assert "DNS asked: server %s" % dns_site.auth.server in out.output, out.output
    assert "%s: %s" % (echo.url, says) in out.status_line, out.output
    # the source's own time, as the long output says it (the whole run adds the start-up)
    took = float(re.search(r"public address source failed: .*\(([\d.]+) s\)$", out.output,
                           re.M).group(1))
    assert took < (8 - 0.5) * PUBLIC_SHARE + 0.5, out.output


# -- a trust store whose root has expired -----------------------------------------------------

def test_an_expired_root_from_the_ca_file_is_judged(tmp_path):
    """The server sends a valid leaf and intermediate; the root they chain to is only in
    --ca-file, and it expired: openssl and curl fail 'certificate has expired', so does the
    check."""
    from lab.peers.tls import TestCA, TLSServer

    ca = TestCA(str(tmp_path / "ca"), root_days=-3)
    issued = ca.issue("leaf", days=60)
    with TLSServer(issued.chain_path, issued.key_path) as server:
        out = measured("check_tls_expiry", [
            "-H", "127.0.0.1", "-p", server.port, "--sni", "localhost", "--ca-file",
            ca.ca_path, "-t", "5"])
    assert_contained_lines(out, 5, "TLS_EXPIRY")  # CRITICAL: the chain follows
    assert out.exitcode == 2, out.output
    assert "root 'osop Test Root CA' expired 3 days ago" in out.status_line, out.output


# -- paths ssh would read otherwise, hosts that are not hosts ---------------------------------

@pytest.mark.parametrize("name", ["empty known_hosts", "known%hosts", "known\thosts"])
def test_a_known_hosts_path_ssh_would_split_or_expand_is_refused(tmp_path, sshd, name):
    """ssh reads UserKnownHostsFile '/x/empty known_hosts' as two files and expands '%': the
    right key in such a file would be looked for elsewhere. Refused, naming the rule."""
    known = tmp_path / name
    known.write_bytes(open(sshd.known_hosts, "rb").read())
    source = tmp_path / "source"
    source.mkdir()
    out = measured("check_three_copies", [
        "--source", source, "--copy", "office=127.0.0.1:%s" % source, "--ssh-port",
        sshd.port, "--ssh-identity", sshd.client_key, "--ssh-known-hosts", known,
        "--min-copies", "1", "--settle", "0", "-t", "5"])
    assert_contained(out, 5, "THREE_COPIES")
    assert out.exitcode == 3, out.output
    assert "argument --ssh-known-hosts: ssh would not read %r as one file: the path may hold " \
           "no blank, '%%', quote or backslash, nor start with '~'" % str(known) \
           in out.status_line, out.output


BAD_HOSTS = ["127.0.0.1 -oProxyCommand=id", "$(id)", "`id`", "host\nname"]


@pytest.mark.parametrize("host", BAD_HOSTS)
def test_a_host_that_is_not_a_host_is_refused_everywhere(tmp_path, sshd, host):
    source = tmp_path / "source"
    source.mkdir()
    rule = "is not a host name, an IPv4 address or an IPv6 address in brackets"
    ssh_args = ["--ssh-port", sshd.port, "--ssh-identity", sshd.client_key,
                "--ssh-known-hosts", sshd.known_hosts, "--min-copies", "1", "--settle", "0"]
    runs = [
        ("check_three_copies", ["--source", source, "--copy", "o=%s:%s" % (host, source)]
         + ssh_args, "THREE_COPIES"),
        ("check_three_copies", ["--source", source, "--copy", "o=ssh://%s%s" % (host, source)]
         + ssh_args, "THREE_COPIES"),
        ("check_tls_expiry", ["-H", host], "TLS_EXPIRY"),
        ("check_tls_expiry", ["--endpoint", "%s:443" % host], "TLS_EXPIRY"),
        ("check_disk_partitions", ["--snmp", "-H", host, "--community", "x"],
         "DISK_PARTITIONS"),
        ("check_dyndns_match", ["-H", "office.dyn.test", "--snmp", host, "--community", "x"],
         "DYNDNS_MATCH"),
    ]
    for name, argv, prefix in runs:
        out = measured(name, argv + ["-t", "5"])
        assert_contained(out, 5, prefix)
        assert out.exitcode == 3, (name, out.output)
        assert rule in out.status_line and "%r" % host in out.status_line, (name, out.output)


def test_a_bracketed_user_at_host_is_not_split_at_the_at_sign():
    from osop_checks.sources import manifest

    for text in ("[a@evil]:/x", "ssh://[a@evil]/x", "[a@evil]:/x"):
        with pytest.raises(manifest.LocationError, match=r"'\[a@evil\]' is not an IPv6 "
                                                         r"address in brackets"):
            manifest.parse_location(text)
    assert manifest.parse_location("backup@[::1]:/srv").host == "::1"
    assert manifest.parse_location("ssh://backup@[::1]:2222/srv").port == 2222


# -- secrets in tracebacks and log lines ------------------------------------------------------

SECRET = "S3cr" * 17000  # longer than an SNMP OCTET STRING may be


@pytest.mark.parametrize("argv", [
    ["--community", SECRET],
    ["--snmp-version", "3", "--snmp-user", "u", "--auth-key", SECRET, "--priv-key", SECRET],
], ids=["community", "v3-keys"])
def test_no_secret_in_any_traceback_or_log_line(argv):
    """A community of more than 65535 bytes is a usage error; a v3 key that long still ends
    inside pysnmp, and its traceback at -vvv shows <secret> where the key was."""
    from lab.peers.endless_snmp import EndlessAgent

    with EndlessAgent() as agent:
        out = measured("check_disk_partitions", [
            "--snmp", "-H", "127.0.0.1", "--snmp-port", agent.port, "-vvv", "-t", "5"] + argv)
    assert out.output.startswith("DISK_PARTITIONS UNKNOWN - "), out.output[:300]
    assert out.seconds < 6 and out.max_rss < 64 * 1024 * 1024
    assert "S3crS3cr" not in out.output + out.stderr
    if argv[0] == "--community":
        assert out.output == "DISK_PARTITIONS UNKNOWN - the SNMP community is longer than " \
                             "65535 bytes (see --help)\n"
    else:
        assert "<secret>" in out.output
