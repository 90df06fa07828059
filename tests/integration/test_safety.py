"""Safety: text from peers never reaches the output raw, secrets never reach it at all.

A '|' starts perfdata and a newline ends the status line, so a certificate subject, a unit
description, a file name or an HTTP body that holds them could forge a state or perfdata.
Each case puts '|', a newline and a fake status line into what a real peer sends, runs the
installed check at -vvv, and asserts: the '|' before perfdata is the only one in the whole
output (long output lines may carry perfdata after a '|' too), no line but the first starts
with the check's name, perfdata labels are quoted or plain and hold no quote, '=' or space.
(A newline inside one -vv/-vvv log record, e.g. a command line holding a peer's unit name,
may still split that record over two long-output lines; both are folded and '|'-free.)
Secrets (SNMP community, v3 keys) given on argv, by file or environment never appear in
output or stderr, even at -vvv and when the agent does not answer.
"""
import json
import os
import re
import stat

import pytest

from lab.peers import blackhole, run_plugin

FAKE = "INJECTED OK - all fine"
EVIL = "evil | name\n" + FAKE + " | 'forged'=1;2;3"


def assert_safe(name, outcome, perf_required=False):
    output = outcome.output
    assert "Traceback" not in output + outcome.stderr
    lines = output.splitlines()
    assert lines and lines[0].startswith(name + " "), output
    body, sep, perf = lines[0].partition(" | ")
    assert "|" not in body and "|" not in perf, lines[0]
    assert not perf_required or perf, lines[0]
    assert FAKE not in lines[0].split(" - ", 1)[0]
    for line in lines[1:]:
        # long output may hold perfdata after a '|' too (plugin API): none may appear
        assert "|" not in line, line
        assert not line.startswith(name + " "), line
    if perf:
        items = re.findall(r"('[^'=]*'|[^'= ]+)=(\S+)", perf)
        assert " ".join("%s=%s" % item for item in items) == perf, perf
        for label, value in items:
            assert not (" " in label and not label.startswith("'")), label
            assert re.match(r"^-?[\d.]+(e[-+]?\d+)?[a-zA-Z%]*(;[^;]*){0,4}$", value), value
    return lines


def executable(path, text):
    path.write_text(text)
    path.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    return str(path)


# -- peer text: certificates, units, file names, HTTP bodies ----------------------------------

def test_certificate_subject_with_pipe_and_newline(tls_ca, tmp_path):
    pytest.importorskip("cryptography")
    issued = tls_ca.issue("evil", names=(EVIL,), ips=(), days=3)
    outcome = run_plugin("check_tls_expiry", ["-vvv", "--file", issued.chain_path])
    assert_safe("TLS_EXPIRY", outcome, perf_required=True)
    assert outcome.exitcode == 2, outcome.output
    assert "evil / name" in outcome.output  # shown, folded: '|' as '/', newline as space


def test_certificate_subject_from_a_tls_server(tls_ca):
    pytest.importorskip("cryptography")
    from lab.peers.tls import TLSServer

    issued = tls_ca.issue("evil-server", names=(EVIL,), ips=("127.0.0.1",), days=3)
    with TLSServer(issued.chain_path, issued.key_path) as server:
        outcome = run_plugin("check_tls_expiry", [
            "-vvv", "-t", "10", "--endpoint", "x'y=z@127.0.0.1:%d" % server.port,
            "--untrusted", "ignore", "--mismatch", "ignore"])
    assert_safe("TLS_EXPIRY", outcome, perf_required=True)
    assert outcome.exitcode == 2, outcome.output


def test_http_on_a_tls_port_answering_pipes():
    with blackhole.Garbage(b"HTTP/1.1 200 OK\r\n\r\n" + EVIL.encode()) as peer:
        outcome = run_plugin("check_tls_expiry", ["-vvv", "-t", "5", "-H", "127.0.0.1",
                                                  "-p", str(peer.port)])
    assert_safe("TLS_EXPIRY", outcome)
    assert outcome.exitcode == 2


def fake_systemctl(tmp_path):
    units = [{"unit": "ok.service", "load": "loaded", "active": "active", "sub": "running",
              "description": "fine"},
             {"unit": "evil|x\nINJECTED.service", "load": "loaded", "active": "failed",
              "sub": "failed", "description": EVIL}]
    (tmp_path / "units.json").write_text(json.dumps(units))
    (tmp_path / "show.txt").write_text(
        "Id=evil|x INJECTED.service\nLoadState=loaded\nActiveState=failed\nSubState=failed\n"
        "Type=simple\nResult=exit-code\nExecMainStatus=1\nDescription=%s\n"
        % EVIL.replace("\n", " "))
    return executable(tmp_path / "systemctl", (
        "#!/bin/sh\ncase \"$*\" in\n"
        "  *is-system-running*) echo degraded ;;\n"
        "  *list-units*) cat %s/units.json ;;\n"
        "  *show*) cat %s/show.txt ;;\n"
        "  *) echo 'evil | stderr' >&2; exit 1 ;;\nesac\n") % (tmp_path, tmp_path))


def test_systemd_unit_names_and_descriptions(tmp_path):
    outcome = run_plugin("check_systemd_units", ["-vvv", "--systemctl", fake_systemctl(tmp_path)])
    assert_safe("SYSTEMD_UNITS", outcome, perf_required=True)
    assert outcome.exitcode == 2, outcome.output
    assert "evil" in outcome.status_line


def test_systemctl_error_text(tmp_path):
    systemctl = executable(tmp_path / "systemctl",
                           "#!/bin/sh\nprintf '%s' >&2\nexit 1\n" % EVIL.replace("'", ""))
    outcome = run_plugin("check_systemd_units", ["-vvv", "--systemctl", systemctl])
    assert_safe("SYSTEMD_UNITS", outcome)
    assert outcome.exitcode == 3


def test_mount_points_become_safe_perfdata_labels():
    """Mount points come from the kernel: fed in through the check's own seam."""
    from osop_checks import runtime
    from osop_checks.checks import disk_partitions as disk
    from osop_checks.sources import disks

    real = disks.list_mounts()
    root = next(m for m in real if m.mountpoint == "/")
    evil = root.__class__(**dict(vars(root), mountpoint="/mnt/a|b'c=d\n" + FAKE))
    partitions = disks.usage([root])
    evil_part = partitions[0].__class__(**dict(vars(partitions[0]),
                                               mountpoint=evil.mountpoint))

    def build(args):
        return disk.build_check(args, list_mounts=lambda: [root, evil],
                                usage=lambda mounts: [partitions[0], evil_part],
                                fstab=lambda: frozenset())

    outcome = runtime.execute(disk.NAME, disk.build_parser, build, ["-vvv", "-w", "99%"])
    outcome.stderr = ""
    lines = assert_safe("DISK_PARTITIONS", outcome, perf_required=True)
    assert "a/b_c_d" in lines[0], lines[0]


def test_file_names_in_a_backup_tree(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / ("evil | name\n" + FAKE)).write_text("x")
    outcome = run_plugin("check_backup_age", ["-vvv", "-p", str(tree), "-w", "0s",
                                              "-c", "0s"])
    assert_safe("BACKUP_AGE", outcome, perf_required=True)


def test_file_names_in_copies(tmp_path):
    source, copy = tmp_path / "source", tmp_path / "copy"
    source.mkdir()
    copy.mkdir()
    (source / ("evil | name\n" + FAKE)).write_text("x")
    (copy / "extra | file\nINJECTED").write_text("y")
    old = 1_000_000_000
    for path in (source, copy):
        for entry in path.iterdir():
            os.utime(entry, (old, old))
    outcome = run_plugin("check_three_copies", [
        "-vvv", "--source", str(source), "--copy", "c=%s" % copy, "--min-copies", "1",
        "--settle", "0"])
    assert_safe("THREE_COPIES", outcome)


def test_ip_echo_body_with_pipe_and_newline():
    body = ("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n192.0.2.1 | "
            + EVIL).encode()
    with blackhole.Garbage(body) as echo, blackhole.UDPGarbage() as dns:
        outcome = run_plugin("check_dyndns_match", [
            "-vvv", "-t", "5", "-H", "home.example.org", "--server", "127.0.0.1:%d" % dns.port,
            "--ip-url", "http://127.0.0.1:%d/" % echo.port])
    assert_safe("DYNDNS_MATCH", outcome)


# -- secrets ----------------------------------------------------------------------------------

SECRET_COMMUNITY = "community-S3CR3T-4711"
SECRET_AUTH = "authkey-S3CR3T-4712"
SECRET_PRIV = "privkey-S3CR3T-4713"


def assert_no_secret(outcome, *secrets):
    text = outcome.output + outcome.stderr
    for secret in secrets:
        assert secret not in text, "secret shown: %s" % text
        assert secret[:12] not in text, "part of a secret shown: %s" % text


def test_snmp_secrets_never_shown_by_a_real_agent(snmpd, tmp_path):
    """Right and wrong secrets against snmpd, at -vvv: the answers, never the secrets."""
    right = run_plugin("check_disk_partitions", ["-vvv", "-t", "10"] + snmpd.v3_args())
    assert right.exitcode in (0, 1, 2), right.output
    assert_no_secret(right, snmpd.auth_key, snmpd.priv_key, snmpd.community)
    wrong = run_plugin("check_disk_partitions", [
        "-vvv", "-t", "3", "-H", "127.0.0.1", "--snmp", "--snmp-port", str(snmpd.port),
        "--snmp-version", "3", "--snmp-user", snmpd.user, "--auth-key", SECRET_AUTH,
        "--priv-key", SECRET_PRIV])
    assert wrong.exitcode == 3, wrong.output
    assert_no_secret(wrong, SECRET_AUTH, SECRET_PRIV)
    v2 = run_plugin("check_disk_partitions", [
        "-vvv", "-t", "10", "-H", "127.0.0.1", "--snmp", "--snmp-port", str(snmpd.port),
        "--community", snmpd.community])
    assert v2.exitcode in (0, 1, 2), v2.output
    assert_no_secret(v2, snmpd.community)


def _snmp_target(check, port):
    """The arguments that point ``check``'s SNMP source at 127.0.0.1:port (skips a check
    without an SNMP source)."""
    module = pytest.importorskip("osop_checks.checks." + check)
    if not any("--community" in a.option_strings for a in module.build_parser()._actions):
        pytest.skip("check_%s has no SNMP source" % check)
    if check == "dyndns_match":
        with blackhole.UDPGarbage() as dns:
            pass  # a closed port: the DNS side fails at once, the SNMP side is under test
        return ["-H", "home.example.org", "--server", "127.0.0.1:%d" % dns.port,
                "--snmp", "127.0.0.1", "--snmp-port", str(port)]
    return ["-H", "127.0.0.1", "--snmp", "--snmp-port", str(port)]


@pytest.mark.parametrize("check", ["disk_partitions", "dyndns_match"])
@pytest.mark.parametrize("version", ["2c", "3"])
def test_every_snmp_source_keeps_its_secrets(check, version, tmp_path, blackhole_udp):
    """Secrets on argv, from files and from the environment, at -vvv, against an agent that
    never answers (its timeout message names the target, never the credentials)."""
    for port in (blackhole_udp.port,):
        args = ["-vvv", "-t", "1"] + _snmp_target(check, port)
        if version == "2c":
            community = tmp_path / "community"
            community.write_text(SECRET_COMMUNITY + "\n")
            runs = [(args + ["--community", SECRET_COMMUNITY], {}),
                    (args + ["--community-file", str(community)], {}),
                    (args, {"OSOP_SNMP_COMMUNITY": SECRET_COMMUNITY})]
        else:
            v3 = args + ["--snmp-version", "3", "--snmp-user", "osop"]
            auth, priv = tmp_path / "auth", tmp_path / "priv"
            auth.write_text(SECRET_AUTH + "\n")
            priv.write_text(SECRET_PRIV + "\n")
            runs = [(v3 + ["--auth-key", SECRET_AUTH, "--priv-key", SECRET_PRIV], {}),
                    (v3 + ["--auth-key-file", str(auth), "--priv-key-file", str(priv)], {}),
                    (v3, {"OSOP_SNMP_AUTH_KEY": SECRET_AUTH,
                          "OSOP_SNMP_PRIV_KEY": SECRET_PRIV})]
        for argv, env in runs:
            outcome = run_plugin("check_" + check, argv, env=env)
            assert outcome.exitcode == 3, outcome.output
            assert_no_secret(outcome, SECRET_COMMUNITY, SECRET_AUTH, SECRET_PRIV)
