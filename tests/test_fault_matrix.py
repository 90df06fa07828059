"""The bad-input matrix: every option of every check given garbage, and every peer broken.

Whatever it is given, a check ends with one status line that starts with its name, an exit
code in {0,1,2,3} (the documented one where there is one), no traceback, within its
--timeout + 1 s. Cases are built from the parsers themselves, so a new option joins the matrix
by existing; a check merged later joins it through its BASE entry.

Three families:
- garbage per reader: every garbage value meets every distinct reader of an option's value
  (its type function and choices) in the parser: a value the reader refuses must be a
  one-line usage error, exit 3; and each check runs once per reader of its options with one
  garbage value, one the reader accepts where there is one, which must still end cleanly;
- argument garbage: missing required options, unknown options, bad -t, -vvvvvv;
- broken peers (lab/peers/blackhole.py): a refused port, an unresolvable host, a listener
  that never answers, a peer answering garbage (HTTP on a TLS port, a non-DNS UDP reply, a
  corrupt find listing over ssh), nonexistent and unreadable paths.
"""
import argparse
import atexit
import contextlib
import importlib
import io
import os
import pkgutil
import re
import shutil
import socket
import stat
import tempfile
import time

import pytest

import osop_checks.checks
from tests.helpers import FIXTURES
from lab.peers import blackhole, run_inprocess
from lab.peers.systemd_container import recorded_systemctl

GARBAGE = [
    "", " ", "10:5", "@", "~", "~:", "@10:5", "foo", "-1", "1e999", "nan", "9" * 40,
    "ünïcödé ✓", "/path with spaces/x", "line\nbreak", "a|b", "%", "10%%", "5XB", "[::1]:2",
    "../relative", "/nonexistent/deeply/nested",
]

TIMEOUT = 3
STATES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")

# -- what every run gets, so it passes parsing and fails fast ------------------------------

WORK = tempfile.mkdtemp(prefix="osop-fault-matrix-")
atexit.register(shutil.rmtree, WORK, True)
REFUSED = blackhole.refused_port()
UNREACHABLE = blackhole.UNREACHABLE_HOST


def _free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tree(name, files=("a", "b/c")):
    root = os.path.join(WORK, name)
    for rel in files:
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(rel)
    return root


SOURCE = _tree("source")
COPY = _tree("copy")


def _fake_apt_get():
    """An apt-get that answers every simulation with a recorded bookworm dist-upgrade."""
    path = os.path.join(WORK, "apt-get")
    with open(path, "w") as handle:
        handle.write("#!/bin/sh\nexec cat %s\n" % os.path.join(
            FIXTURES, "apt", "dist-upgrade_bookworm.txt"))
    os.chmod(path, 0o755)
    return path


# Arguments that make each check runnable without its real peer: local and small, or a peer
# that is refused or cannot be resolved, so a run that gets past parsing ends at once.
BASE = {
    "disk_partitions": ["-p", "/"],
    # answers from recorded systemd 252 output, so garbage options reach the judgement
    "systemd_units": ["--systemctl", recorded_systemctl(os.path.join(WORK, "systemctl"),
                                                        os.path.join(FIXTURES, "systemd"))],
    "tls_expiry": ["-H", "127.0.0.1", "-p", str(REFUSED)],
    "backup_age": ["-p", SOURCE],
    "three_copies": ["--source", SOURCE, "--copy", "local=" + COPY,
                     "--copy", "refused=ssh://nagios@127.0.0.1:%d/srv/copy" % REFUSED,
                     "--copy", "gone=nagios@%s:/srv/copy" % UNREACHABLE,
                     "--ssh-known-hosts", "/dev/null"],
    "os_upgrades": ["--package-manager", "apt", "--apt-get", _fake_apt_get(), "--no-cache"],
    "dyndns_match": ["-H", "home.example.org", "--server", "127.0.0.1:%d" % _free_udp_port(),
                     "--ip-url", "http://127.0.0.1:%d/" % REFUSED],
}

# The exit code each BASE run documents (README of the check): a refused TLS endpoint is
# CRITICAL (the service is down); a source the check cannot read is UNKNOWN.
BASE_EXIT = {
    "disk_partitions": None,  # this machine's real disk: not UNKNOWN, its state its own
    "systemd_units": 2,  # the recorded system is degraded by a failed unit
    "tls_expiry": 2,
    "backup_age": 0,
    "os_upgrades": 2,  # the recorded bookworm has security upgrades pending
    "dyndns_match": 3,
    "three_copies": 3,  # a copy on a host name that does not resolve: a configuration error
}

# Whole-argument garbage, and whether it must be a usage error.
EXTRA = [(["--no-such-option"], True), (["-w"], True), (["positional-garbage"], True),
         (["-t", "0"], True), (["-t", "-5"], True), (["-t", "99999999999999999999"], True),
         (["-t", "1e999"], True), (["-t", "nan"], True), (["--", "-w"], True),
         (["-vvvvvv"], False), (["-t", "1.5"], False)]


def checks():
    return sorted(m.name for m in pkgutil.iter_modules(osop_checks.checks.__path__))


def module_of(name):
    return importlib.import_module("osop_checks.checks." + name)


def value_actions(parser):
    for action in parser._actions:
        if not action.option_strings or action.nargs == 0:
            continue
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        if action.dest == "timeout":
            continue
        yield action


def refused_by_parser(action, value):
    """True when the option's own type or choices reject ``value``: a usage error is due."""
    try:
        converted = action.type(value) if callable(action.type) else value
    except (argparse.ArgumentTypeError, TypeError, ValueError):
        return True
    if action.choices is not None and converted not in action.choices:
        return True
    return False


def reader(action):
    """What reads an option's value: its type function (a closure told apart by the bounds and
    quantity it closes over) with its choices and nargs. An option without a type or choices
    is read by its check's own code, so it is a reader of its own."""
    kind = action.type
    if kind is None and action.choices is None:
        return ("the check's own code", tuple(action.option_strings))
    cells = tuple(getattr(c.cell_contents, "__qualname__", None)
                  or getattr(c.cell_contents, "name", None) or repr(c.cell_contents)
                  for c in (getattr(kind, "__closure__", None) or ()))
    return (getattr(kind, "__module__", None), getattr(kind, "__qualname__", repr(kind)), cells,
            None if action.choices is None else tuple(action.choices), action.nargs)


def readers():
    """{reader: (check, option)}: every distinct reader once, with the first option that has
    it; a check merged later joins by having options."""
    found = {}
    for name in checks():
        for action in value_actions(module_of(name).build_parser()):
            found.setdefault(reader(action), (name, max(action.option_strings, key=len)))
    return found


READERS = readers()


def cases():
    """Per check, one run for each reader of its options, with one garbage value: one the
    reader accepts where there is one (the value then reaches the check's own code), else
    one it refuses. Which garbage value turns with each case, so the list is covered across
    the matrix; every value meets every reader in test_every_reader_takes_all_garbage."""
    turn = 0
    for name in checks():
        parser = module_of(name).build_parser()
        seen = set()
        for action in value_actions(parser):
            if reader(action) in seen:
                continue
            seen.add(reader(action))
            option = max(action.option_strings, key=len)
            ordered = GARBAGE[turn % len(GARBAGE):] + GARBAGE[:turn % len(GARBAGE)]
            turn += 1
            accepted = [v for v in ordered if not refused_by_parser(action, v)]
            value = (accepted or ordered)[0]
            yield pytest.param(name, option, value, id="%s %s=%r" % (name, option, value))
        for extra, _ in EXTRA:
            yield pytest.param(name, None, extra, id="%s %r" % (name, extra))
        required = [a for a in value_actions(parser) if a.required]
        for action in required:  # each required option left out in turn
            yield pytest.param(name, "omit", max(action.option_strings, key=len),
                               id="%s without %s" % (name, max(action.option_strings, key=len)))


GARBAGE_CASES = list(cases())


@pytest.mark.parametrize("key", sorted(READERS, key=repr),
                         ids=lambda key: "%s %s" % READERS[key])
def test_every_reader_takes_all_garbage(key):
    """Every garbage value through the check's parser (no run): a value the reader refuses is
    one usage line, exit 3; one it accepts parses."""
    name, option = READERS[key]
    module = module_of(name)
    for value in GARBAGE:
        parser = module.build_parser()
        action = parser._option_string_actions[option]
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                parser.parse_args(list(BASE.get(name, [])) + [option, value])
            refused = False
        except SystemExit as exc:
            refused = True
            assert exc.code == 3, (value, out.getvalue())
            line = out.getvalue()
            assert line.startswith("%s UNKNOWN - " % module.NAME), (value, line)
            assert line.endswith("(see --help)\n") and line.count("\n") == 1, (value, line)
        # a pair check (a warning that can never fire) may refuse what the type accepts
        assert refused >= refused_by_parser(action, value), (value, out.getvalue())


def assert_clean(module, outcome, elapsed, timeout=TIMEOUT):
    """The promise of issue 9 for one finished run."""
    output = outcome.output
    assert outcome.exitcode in (0, 1, 2, 3), output
    assert "Traceback" not in output and "Traceback" not in getattr(outcome, "stderr", "")
    lines = output.splitlines()
    assert lines, "no output at all"
    assert re.match(r"^%s (%s)( - |$| \|)" % (module.NAME, "|".join(STATES)), lines[0]), output
    assert STATES[outcome.exitcode] == lines[0].split()[1], output
    status_lines = [line for line in lines
                    if re.match(r"^%s (%s)\b" % (module.NAME, "|".join(STATES)), line)]
    assert len(status_lines) == 1, output
    # an exception the check did not expect: one line still, but a bug to fix
    assert "internal error" not in lines[0], output
    assert elapsed < timeout + 1, "took %.1f s with -t %s" % (elapsed, timeout)


def run(module, argv, timeout=TIMEOUT):
    start = time.monotonic()
    outcome = run_inprocess(module, ["-t", str(timeout)] + list(argv))
    return outcome, time.monotonic() - start


@pytest.mark.parametrize("name", [n for n in BASE if n in checks()])
def test_base_arguments_end_as_documented(name):
    module = module_of(name)
    outcome, elapsed = run(module, BASE[name])
    assert_clean(module, outcome, elapsed)
    assert "(see --help)" not in outcome.status_line, outcome.output
    if BASE_EXIT[name] is not None:
        assert outcome.exitcode == BASE_EXIT[name], outcome.output
    else:  # / measured: a real answer, with its perfdata
        assert outcome.exitcode != 3 and " '/'=" in outcome.status_line, outcome.output
    assert elapsed < 2, "the BASE run of %s should fail fast, took %.1f s" % (name, elapsed)


@pytest.mark.parametrize("name,option,value", GARBAGE_CASES)
def test_garbage_gives_one_clean_line(name, option, value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative garbage path lands here, if anywhere
    module = module_of(name)
    base = list(BASE.get(name, []))
    expect_usage_error = False
    if option == "omit":
        base = _without(base, module.build_parser(), value)
        argv = base
        expect_usage_error = True
    elif option:
        argv = base + [option, value]
        action = next(a for a in value_actions(module.build_parser())
                      if option in a.option_strings)
        expect_usage_error = refused_by_parser(action, value)
    else:
        argv = base + value
        expect_usage_error = dict((tuple(e), u) for e, u in EXTRA)[tuple(value)]
    outcome, elapsed = run(module, argv)
    assert_clean(module, outcome, elapsed)
    # read-only, whatever it is given: no garbage path becomes a file or a directory
    assert os.listdir(tmp_path) == [], os.listdir(tmp_path)
    if "(see --help)" in outcome.status_line:
        assert outcome.exitcode == 3
        assert outcome.output.count("\n") == 1, outcome.output  # a usage error is one line
    if expect_usage_error:
        assert outcome.exitcode == 3 and "(see --help)" in outcome.status_line, outcome.output


def _without(argv, parser, option):
    """``argv`` without ``option`` and its value."""
    action = next(a for a in value_actions(parser) if option in a.option_strings)
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
            continue
        if item in action.option_strings:
            skip = True
            continue
        out.append(item)
    return out


# -- broken peers and paths ----------------------------------------------------------------

def _unreadable(tmp_path):
    path = tmp_path / "secret-dir"
    path.mkdir()
    (path / "file").write_text("x")
    path.chmod(0)
    return str(path)


class Peer:
    """One broken-peer case: a check, arguments built from the running peers, the documented
    exit code(s), a pattern its status line must show, and the -t to use."""

    def __init__(self, check, situation, argv, exit, pattern, timeout=TIMEOUT, needs=None,
                 usage=False):
        self.check, self.situation, self.argv, self.needs = check, situation, argv, needs
        self.usage = usage  # True: the documented answer is a usage error
        self.exit = (exit,) if isinstance(exit, int) else exit
        self.pattern, self.timeout = pattern, timeout


def peer_cases():
    R, U = REFUSED, UNREACHABLE
    return [
        # tls_expiry: the "HTTP on a TLS port", refused, unresolvable, silent
        Peer("tls_expiry", "refused port", lambda p: ["-H", "127.0.0.1", "-p", str(R)], 2,
             r"refused"),
        Peer("tls_expiry", "unresolvable host", lambda p: ["-H", U], 2, r"resolve"),
        Peer("tls_expiry", "black hole", lambda p: [
            "-H", "127.0.0.1", "-p", str(p.blackhole_tcp.port)], 2, r"no answer", timeout=1),
        Peer("tls_expiry", "HTTP on a TLS port", lambda p: [
            "-H", "127.0.0.1", "-p", str(p.garbage_http.port)], 2, r"(?i)tls|handshake|http"),
        Peer("tls_expiry", "HTTP on a STARTTLS port", lambda p: [
            "-H", "127.0.0.1", "-p", str(p.garbage_http.port), "--starttls", "smtp"], 2, r"",
             timeout=1),
        # a certificate file is an endpoint too: one it cannot read is CRITICAL (README)
        Peer("tls_expiry", "garbage file", lambda p: ["--file", p.garbage_file], 2,
             r"no certificate"),
        Peer("tls_expiry", "nonexistent file", lambda p: [
            "--file", "/nonexistent/cert.pem"], 2, r"/nonexistent/cert.pem"),
        Peer("tls_expiry", "endpoint file is a directory", lambda p: [
            "--endpoint-file", p.empty], 3, r"Is a directory", usage=True),
        Peer("tls_expiry", "endpoint file of garbage", lambda p: [
            "--endpoint-file", p.garbage_file], 3, r"not UTF-8", usage=True),
        # a file that never gives its content (a FIFO without writer): a local black hole
        Peer("tls_expiry", "certificate file that never ends", lambda p: [
            "--file", p.fifo], 3, r"no result within", timeout=1),
        Peer("tls_expiry", "endpoint file that never ends", lambda p: [
            "--endpoint-file", p.fifo], 3, r"no result within", timeout=1),
        Peer("backup_age", "log that never ends", lambda p: [
            "-p", p.empty, "--log", p.fifo], 3, r"no result within", timeout=1),
        Peer("backup_age", "stamp that never ends", lambda p: [
            "-p", p.empty, "--mode", "stamp", "--stamp", p.fifo], 3, r"no result within",
             timeout=1),
        Peer("os_upgrades", "dpkg status that never ends", lambda p: [
            "--root", p.fifo_root, "--no-cache"], 3, r"", timeout=2),
        # systemd_units: a systemctl that prints garbage, is missing, or never ends
        Peer("systemd_units", "systemctl missing", lambda p: [
            "--systemctl", "/nonexistent/systemctl"], 3, r"not found"),
        Peer("systemd_units", "systemctl prints garbage", lambda p: [
            "--systemctl", p.script("garbage", "printf 'HTTP/1.1 200 OK\\n|x|\\n\\0\\377'")],
             3, r"layout of systemctl output has changed"),
        Peer("systemd_units", "systemctl prints garbage JSON", lambda p: [
            "--systemctl", p.script("json", "echo '[{\"unit\": 5}, null, \"x\"]'")], 3, r""),
        Peer("systemd_units", "systemctl hangs", lambda p: [
            "--systemctl", p.script("hang", "exec sleep 30")], 3, r"did not finish",
             timeout=1),
        # disk_partitions: paths that are not there or not readable
        Peer("disk_partitions", "nonexistent path", lambda p: [
            "-p", p.nowhere], 2, r"does not exist"),
        Peer("disk_partitions", "path with spaces and newline", lambda p: [
            "-p", "/no such\ndir"], 2, r""),
        Peer("disk_partitions", "unreadable path", lambda p: ["-p", p.unreadable + "/file"],
             (0, 1, 2, 3), r""),
        # 4 s: pysnmp waits out its own timeout on a refused port, and its import alone took
        # over a second of a 2 s budget under the full suite's load
        Peer("disk_partitions", "SNMP agent refused", lambda p: [
            "-H", "127.0.0.1", "--snmp", "--snmp-port", str(_free_udp_port()), "--community", "x"],
             3, r"no SNMP response", timeout=4, needs="--snmp-port"),
        Peer("disk_partitions", "SNMP black hole", lambda p: [
            "-H", "127.0.0.1", "--snmp", "--snmp-port", str(p.blackhole_udp.port),
            "--community", "x"],
             3, r"no SNMP response", timeout=1, needs="--snmp-port"),
        Peer("disk_partitions", "SNMP garbage", lambda p: [
            "-H", "127.0.0.1", "--snmp", "--snmp-port", str(p.garbage_udp.port),
            "--community", "x"],
             3, r"no SNMP response", timeout=1, needs="--snmp-port"),
        Peer("disk_partitions", "SNMP unresolvable", lambda p: [
            "-H", U, "--snmp", "--community", "x"], 3, r"cannot resolve", timeout=2,
             needs="--snmp-port"),
        # backup_age: nothing there, unreadable
        Peer("backup_age", "nonexistent path", lambda p: ["-p", p.nowhere], (2, 3),
             r"nonexistent"),
        # root reads a mode-000 tree; as nagios it is unreadable (test_least_privilege.py)
        Peer("backup_age", "mode 000 tree", lambda p: ["-p", p.unreadable],
             0 if os.geteuid() == 0 else (2, 3), r""),
        Peer("backup_age", "empty tree", lambda p: ["-p", p.empty], (2, 3), r""),
        Peer("backup_age", "garbage stamp", lambda p: [
            "-p", p.empty, "--mode", "stamp", "--stamp", p.garbage_file], (0, 1, 2, 3), r""),
        # three_copies: ssh refused, unresolvable, black hole, corrupt listing
        Peer("three_copies", "ssh refused", lambda p: [
            "--source", SOURCE, "--copy", "a=ssh://nagios@127.0.0.1:%d/srv" % R,
            "--min-copies", "1", "--ssh-known-hosts", "/dev/null"], 2,
             r"unreachable: connection refused"),
        Peer("three_copies", "ssh unresolvable", lambda p: [
            "--source", SOURCE, "--copy", "a=nagios@%s:/srv" % U, "--min-copies", "1",
            "--ssh-known-hosts", "/dev/null"], 3, r"unknown host"),
        Peer("three_copies", "ssh black hole", lambda p: [
            "--source", SOURCE, "--copy", "a=ssh://nagios@127.0.0.1:%d/srv" %
            p.blackhole_tcp.port, "--min-copies", "1", "--ssh-known-hosts", "/dev/null"],
             2, r"unreachable: timeout", timeout=2),
        Peer("three_copies", "ssh to HTTP", lambda p: [
            "--source", SOURCE, "--copy", "a=ssh://nagios@127.0.0.1:%d/srv" %
            p.garbage_http.port, "--min-copies", "1", "--ssh-known-hosts", "/dev/null"],
             2, r"unreachable"),
        # the "corrupt find listing over ssh": a real sshd whose forced command
        # answers the probe truly and the listing with garbage
        Peer("three_copies", "corrupt find listing over ssh", lambda p: [
            "--source", SOURCE, "--copy", "bad=ssh://root@127.0.0.1%s" % COPY,
            "--min-copies", "1"] + p.corrupt_ssh(
                "printf 'f\\t12\\tnot-a-time\\tpath\\nGARBAGE | LINE\\n'"),
             3, r"not a record", timeout=10),
        Peer("three_copies", "listing over ssh without tabs", lambda p: [
            "--source", SOURCE, "--copy", "bad=ssh://root@127.0.0.1%s" % COPY,
            "--min-copies", "1"] + p.corrupt_ssh("echo HTTP/1.1 200 OK; echo"),
             3, r"not a record", timeout=10),
        Peer("three_copies", "nonexistent source", lambda p: [
            "--source", "/nonexistent/source", "--copy", "a=" + COPY, "--min-copies", "1"],
             3, r"does not exist"),
        Peer("three_copies", "unreadable copy", lambda p: [
            "--source", SOURCE, "--copy", "a=" + p.unreadable, "--min-copies", "1"],
             (2, 3), r""),
        # os_upgrades: apt-get missing, garbage, hanging; a root with no apt state
        Peer("os_upgrades", "apt-get missing", lambda p: [
            "--package-manager", "apt", "--apt-get", "/nonexistent/apt-get"], 3, r"not found"),
        Peer("os_upgrades", "apt-get prints garbage", lambda p: [
            "--package-manager", "apt", "--apt-get", p.script(
                "apt", "printf 'Inst |broken\\nConf\\n\\377\\0 x (y z)\\n'"),
            "--no-cache"], 3, r"cannot read this line"),
        Peer("os_upgrades", "apt-get hangs", lambda p: [
            "--package-manager", "apt", "--apt-get", p.script("hang", "exec sleep 30"),
            "--no-cache"], 3, r"did not finish", timeout=1),
        Peer("os_upgrades", "dnf prints garbage", lambda p: [
            "--package-manager", "dnf", "--dnf", p.script(
                "dnf", "printf 'Last metadata |\\nfoo bar\\n\\377\\n'; exit 100"),
            "--no-cache"], 3, r"cannot read this line"),
        Peer("os_upgrades", "empty root", lambda p: ["--root", p.empty], 3,
             r"no package manager"),
        # dyndns_match: DNS refused, silent, garbage; IP echo refused, silent, garbage
        Peer("dyndns_match", "DNS server silent", lambda p: [
            "-H", "home.example.org", "--server", "127.0.0.1:%d" % p.blackhole_udp.port,
            "--expect", "192.0.2.1"], 3, r"no answer", timeout=1),
        Peer("dyndns_match", "non-DNS UDP reply", lambda p: [
            "-H", "home.example.org", "--server", "127.0.0.1:%d" % p.garbage_udp.port,
            "--expect", "192.0.2.1"], 3, r"not a DNS answer", timeout=2),
        Peer("dyndns_match", "DNS server refused", lambda p: [
            "-H", "home.example.org", "--server", "127.0.0.1:%d" % _free_udp_port(),
            "--expect", "192.0.2.1"], 3, r"refused"),
        Peer("dyndns_match", "IP echo refused", lambda p: [
            "-H", "home.example.org", "--server", "127.0.0.1:%d" % p.garbage_udp.port,
            "--ip-url", "http://127.0.0.1:%d/" % R], 3, r"cannot connect", timeout=2),
        Peer("dyndns_match", "IP echo black hole", lambda p: [
            "-H", "home.example.org", "--server", "127.0.0.1:%d" % p.blackhole_udp.port,
            "--ip-url", "http://127.0.0.1:%d/" % p.blackhole_tcp.port], 3, r"no answer",
             timeout=1),
        Peer("dyndns_match", "IP echo answers garbage", lambda p: [
            "-H", "home.example.org", "--server", "127.0.0.1:%d" % p.garbage_udp.port,
            "--ip-url", "http://127.0.0.1:%d/" % p.garbage_http.port], 3, r"HTTP 400",
             timeout=2),
        Peer("dyndns_match", "IP echo unresolvable", lambda p: [
            "-H", "home.example.org", "--server", "127.0.0.1:%d" % p.garbage_udp.port,
            "--ip-url", "http://%s/" % U], 3, r"cannot connect", timeout=2),
        # dyndns_match --router-upnp: the router's description refused, silent, garbage
        Peer("dyndns_match", "UPnP router refused", lambda p: [
            "-H", "home.example.org", "--server", "127.0.0.1:%d" % p.garbage_udp.port,
            "--router-upnp", "http://127.0.0.1:%d/igd.xml" % R], 3, r"cannot connect",
             timeout=2, needs="--router-upnp"),
        Peer("dyndns_match", "UPnP router black hole", lambda p: [
            "-H", "home.example.org", "--server", "127.0.0.1:%d" % p.blackhole_udp.port,
            "--router-upnp", "http://127.0.0.1:%d/igd.xml" % p.blackhole_tcp.port], 3,
             r"no answer", timeout=1, needs="--router-upnp"),
        Peer("dyndns_match", "UPnP router answers garbage", lambda p: [
            "-H", "home.example.org", "--server", "127.0.0.1:%d" % p.garbage_udp.port,
            "--router-upnp", "http://127.0.0.1:%d/igd.xml" % p.garbage_http.port], 3,
             r"HTTP 400", timeout=2, needs="--router-upnp"),
        Peer("dyndns_match", "UPnP router unresolvable", lambda p: [
            "-H", "home.example.org", "--server", "127.0.0.1:%d" % p.garbage_udp.port,
            "--router-upnp", "http://%s:49000/igd.xml" % U], 3, r"cannot connect",
             timeout=2, needs="--router-upnp"),
    ]


def _applies(case):
    if case.check not in checks():
        return False  # still on its branch: joins once merged
    if case.needs:
        parser = module_of(case.check).build_parser()
        return any(case.needs in a.option_strings for a in parser._actions)
    return True


PEER_CASES = [pytest.param(c, id="%s: %s" % (c.check, c.situation)) for c in peer_cases()
              if _applies(c)]


class Peers:
    """The running broken peers and paths a Peer case builds its arguments from."""

    def __init__(self, request, tmp_path):
        self.request, self.tmp = request, tmp_path

    def __getattr__(self, name):
        if name.startswith(("blackhole_", "garbage_")) and name not in ("garbage_file",):
            return self.request.getfixturevalue(name)
        raise AttributeError(name)

    @property
    def garbage_file(self):
        path = self.tmp / "garbage |file\nwith newline"
        path.write_bytes(b"-----BEGIN CERTIFICATE-----\n|||\xff\xfe\x00garbage\n"
                         b"127.0.0.1:99999999/nothing\n@@@\n")
        return str(path)

    @property
    def nowhere(self):
        """A path that surely does not exist (a garbage run elsewhere may have made
        /nonexistent/... on this shared machine)."""
        return str(self.tmp / "nonexistent" / "deeply" / "nested")

    @property
    def fifo(self):
        path = self.tmp / "fifo"
        if not path.exists():
            os.mkfifo(path)
        return str(path)

    @property
    def fifo_root(self):
        """A root whose dpkg status is a FIFO nobody writes."""
        root = self.tmp / "fifo-root"
        for part in ("etc/apt", "var/lib/apt/lists", "var/lib/dpkg"):
            (root / part).mkdir(parents=True, exist_ok=True)
        if not (root / "var/lib/dpkg/status").exists():
            os.mkfifo(root / "var/lib/dpkg/status")
        return str(root)

    @property
    def unreadable(self):
        return _unreadable(self.tmp)

    @property
    def empty(self):
        path = self.tmp / "empty"
        path.mkdir(exist_ok=True)
        return str(path)

    def corrupt_ssh(self, listing):
        """ssh options reaching the session's real sshd with a key of its own whose forced
        command runs the check's probe as asked but answers a listing (find | sort; the probe
        runs find too, for the stamp) by running ``listing`` instead."""
        from lab.peers import sshd as sshd_peer

        server = self.request.getfixturevalue("sshd")
        key = str(self.tmp / "corrupt_key")
        public = sshd_peer.keygen(key)
        forced = self.script("forced", 'case "$SSH_ORIGINAL_COMMAND" in\n'
                             '  *find*sort*) %s ;;\n'
                             '  *) exec sh -c "$SSH_ORIGINAL_COMMAND" ;;\nesac' % listing)
        with open(os.path.join(server.dir, "authorized_keys"), "a") as handle:
            handle.write('command="%s" %s\n' % (forced, public))
        return ["--ssh-port", str(server.port), "--ssh-identity", key,
                "--ssh-known-hosts", server.known_hosts]

    def script(self, name, body):
        path = self.tmp / ("fake-" + name)
        path.write_text("#!/bin/sh\n%s\n" % body)
        path.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
        return str(path)


# Every case the matrix holds; tests/conftest.py prints this count in the summary.
CASES = GARBAGE_CASES + PEER_CASES


@pytest.mark.parametrize("case", PEER_CASES)
def test_broken_peer_gives_the_documented_line(case, request, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = module_of(case.check)
    argv = case.argv(Peers(request, tmp_path))
    outcome, elapsed = run(module, argv, case.timeout)
    assert_clean(module, outcome, elapsed, case.timeout)
    assert ("(see --help)" in outcome.status_line) == case.usage, outcome.output
    assert outcome.exitcode in case.exit, outcome.output
    assert re.search(case.pattern, outcome.status_line), outcome.output


# -- every range form gives the state it must, on known input ------------------------------
#
# The plugin guidelines' range forms (10, 10:, ~:10, 10:20, @10:20, with units) on every
# threshold option that takes a range, each run through the check's own build_check on data
# constructed here (a file of a known age, a copy of a known age, a certificate with a known
# expiry, a disk with known free space, a known count of upgrades), no peer needed.

NOW = time.time()
HOUR, DAY, GiB = 3600, 86400, 2 ** 30


class Judged:
    """A check module whose build_check is handed ``data`` instead of its source."""

    def __init__(self, name, wire):
        module = module_of(name)
        self.NAME, self.build_parser = module.NAME, module.build_parser
        self.build_check = lambda args: wire(module, args)


def _backup(age):
    """check_backup_age on a real file ``age`` seconds old."""
    def wire(module, args):
        return module.build_check(args, now=lambda: NOW)
    root = tempfile.mkdtemp(prefix="contract-ranges-", dir=WORK)
    path = os.path.join(root, "backup.tar")
    with open(path, "w") as handle:
        handle.write("data")
    os.utime(path, (NOW - age, NOW - age))
    return Judged("backup_age", wire), ["-p", root]


def _copy(age, missing=0, differing=0, extra=0):
    """check_three_copies with one copy whose oldest change is ``age`` seconds old."""
    from osop_checks.sources import manifest

    def survey(source, copy_args, options, **kw):
        mod = module_of("three_copies")
        state = mod.CopyState("c", copy_args[0][1], manifest.Probe("ok", 2),
                              tally=manifest.Tally(equal=10, missing=missing,
                                                   differing=differing, extra=extra,
                                                   oldest_change=NOW - age))
        return mod.Survey(source, manifest.Probe("ok", 1), [state], NOW)

    def wire(module, args):
        return module.build_check(args, survey=survey)
    return Judged("three_copies", wire), ["--source", "/data1", "--copy", "c=/data2",
                                          "--min-copies", "1"]


def _certificate(days_left):
    """check_tls_expiry on a certificate file whose leaf expires in ``days_left`` days."""
    import datetime

    from osop_checks.sources import tls

    now = datetime.datetime.fromtimestamp(NOW, datetime.timezone.utc)
    cert = tls.Certificate(
        "CN=leaf", "CN=ca", "leaf", "ca", "01", now - datetime.timedelta(days=30),
        now + datetime.timedelta(days=days_left), ["leaf.example.org"], [], "RSA", 2048,
        "sha256", "00")

    def wire(module, args):
        return module.build_check(args, load_file=lambda path: [cert], now=lambda: now)
    return Judged("tls_expiry", wire), ["--file", "/constructed/leaf.pem"]


def _disk(size, free, inodes_free=900):
    """check_disk_partitions on one ext4 / of ``size`` bytes with ``free`` bytes free."""
    from osop_checks.sources.disks import Mount, Partition

    def usage(mounts):
        return [Partition(m.mountpoint, m.device, m.fstype, size=size, used=size - free,
                          free=free, inodes_total=1000, inodes_free=inodes_free)
                for m in mounts]

    def wire(module, args):
        return module.build_check(args, list_mounts=lambda: [Mount("/", "/dev/sda1", "ext4")],
                                  usage=usage, fstab=frozenset, exists=lambda p: True)
    return Judged("disk_partitions", wire), []


def _upgrades(security, other):
    """check_os_upgrades on a host with ``security`` security and ``other`` other upgrades."""
    from osop_checks.sources import packages

    class Host:
        name = "apt"

        def pending(self):
            return packages.Pending("apt", upgrades=[
                packages.Upgrade("p%d" % i, "1", "2", security=i < security)
                for i in range(security + other)])

        def reboot(self):
            return packages.Reboot()

        def list_age(self):
            return packages.ListAge("/var/lib/apt/lists/x", NOW - HOUR)

    def wire(module, args):
        from osop_checks.sources import processes

        # this machine's processes and release are not the question here
        return module.build_check(args, detect=lambda a: Host(), boot="/nonexistent",
                                  now=lambda: NOW, scan=processes.Scan,
                                  support=lambda root: None)
    return Judged("os_upgrades", wire), ["--no-cache"]


RANGE_CASES = [
    # check_backup_age -w/-c: a backup 30 minutes old
    ("backup_age", ["-w", "1h", "-c", "2h"], (_backup, 1800), "OK"),
    ("backup_age", ["-w", "20m", "-c", "2h"], (_backup, 1800), "WARNING"),
    ("backup_age", ["-w", "10m", "-c", "20m"], (_backup, 1800), "CRITICAL"),
    ("backup_age", ["-w", "26h:", "-c", "50h"], (_backup, 1800), "WARNING"),
    ("backup_age", ["-w", "10m:", "-c", "50h"], (_backup, 1800), "OK"),
    ("backup_age", ["-w", "~:26h", "-c", "50h"], (_backup, 1800), "OK"),
    ("backup_age", ["-w", "~:10m", "-c", "2h"], (_backup, 1800), "WARNING"),
    ("backup_age", ["-w", "1h:26h", "-c", "50h"], (_backup, 1800), "WARNING"),
    ("backup_age", ["-w", "10m:26h", "-c", "50h"], (_backup, 1800), "OK"),
    ("backup_age", ["-w", "@0:1h", "-c", "2h"], (_backup, 1800), "WARNING"),
    ("backup_age", ["-w", "@1h:2h", "-c", "3h"], (_backup, 1800), "OK"),
    ("backup_age", ["-c", "@0:1h"], (_backup, 1800), "CRITICAL"),
    ("backup_age", ["-w", "2h:", "-c", "5h"], (_backup, 1800), "WARNING"),
    # check_three_copies -w/-c and --missing-*: a copy 1 hour old lacking 3 entries
    ("three_copies", ["--missing-critical", "5"], (_copy, HOUR, 3), "OK"),
    ("three_copies", ["--missing-warning", "2", "--missing-critical", "5"], (_copy, HOUR, 3),
     "WARNING"),
    ("three_copies", ["--missing-critical", "~:2"], (_copy, HOUR, 3), "CRITICAL"),
    ("three_copies", ["--missing-critical", "1:5"], (_copy, HOUR, 3), "OK"),
    ("three_copies", ["--missing-critical", "@1:5"], (_copy, HOUR, 3), "CRITICAL"),
    ("three_copies", ["--missing-critical", "4:"], (_copy, HOUR, 3), "CRITICAL"),
    ("three_copies", ["--missing-critical", "5", "-w", "30m", "-c", "2h"], (_copy, HOUR, 3),
     "WARNING"),
    ("three_copies", ["--missing-critical", "5", "-w", "@30m:2h", "-c", "~:50h"],
     (_copy, HOUR, 3), "WARNING"),
    ("three_copies", ["--missing-critical", "5", "-w", "26h:", "-c", "50h"], (_copy, HOUR, 3),
     "WARNING"),
    ("three_copies", ["--missing-critical", "5", "-w", "1h:26h", "-c", "50h"],
     (_copy, HOUR, 3), "OK"),
    ("three_copies", ["--differing-warning", "1", "--differing-critical", "1:5"],
     (_copy, HOUR, 0, 2), "WARNING"),
    ("three_copies", ["--differing-critical", "@2:2"], (_copy, HOUR, 0, 2), "CRITICAL"),
    ("three_copies", ["--extra-warning", "~:10", "--extra-critical", "20"],
     (_copy, HOUR, 0, 0, 12), "WARNING"),
    ("three_copies", ["--extra-warning", "1:", "--extra-critical", "20"],
     (_copy, HOUR, 0, 0, 0), "WARNING"),
    # check_tls_expiry -w/-c in days: a leaf with 15.5 days left
    ("tls_expiry", ["-w", "21d", "-c", "7d"], (_certificate, 15.5), "WARNING"),
    ("tls_expiry", ["-w", "10", "-c", "7"], (_certificate, 15.5), "OK"),
    ("tls_expiry", ["-w", "30d", "-c", "20d"], (_certificate, 15.5), "CRITICAL"),
    ("tls_expiry", ["-w", "360h", "-c", "7d"], (_certificate, 15.5), "OK"),
    ("tls_expiry", ["-w", "16d:", "-c", "7d:"], (_certificate, 15.5), "WARNING"),
    ("tls_expiry", ["-w", "~:10d", "-c", "7d"], (_certificate, 15.5), "WARNING"),
    ("tls_expiry", ["-w", "10d:400d", "-c", "7d:800d"], (_certificate, 15.5), "OK"),
    ("tls_expiry", ["-w", "21d", "-c", "7d:14d"], (_certificate, 15.5), "CRITICAL"),
    ("tls_expiry", ["-w", "@10d:20d", "-c", "7d"], (_certificate, 15.5), "WARNING"),
    # check_disk_partitions: 100 GiB with 15 GiB (15%) free, 90% of the inodes free
    ("disk_partitions", ["-w", "20%", "-c", "10%"], (_disk, 100 * GiB, 15 * GiB), "WARNING"),
    ("disk_partitions", ["-w", "10%", "-c", "5%"], (_disk, 100 * GiB, 15 * GiB), "OK"),
    ("disk_partitions", ["-w", "30%", "-c", "20%"], (_disk, 100 * GiB, 15 * GiB), "CRITICAL"),
    ("disk_partitions", ["-w", "20GiB", "-c", "10GiB"], (_disk, 100 * GiB, 15 * GiB),
     "WARNING"),
    ("disk_partitions", ["-w", "20%,50GiB", "-c", "10%,10GiB"], (_disk, 100 * GiB, 15 * GiB),
     "WARNING"),
    ("disk_partitions", ["-w", "20%,10GiB", "-c", "10%"], (_disk, 100 * GiB, 15 * GiB), "OK"),
    ("disk_partitions", ["-w", "20%:", "-c", "10%:"], (_disk, 100 * GiB, 15 * GiB), "WARNING"),
    ("disk_partitions", ["-w", "~:10%", "-c", "5%"], (_disk, 100 * GiB, 15 * GiB), "WARNING"),
    ("disk_partitions", ["-w", "10%:90%", "-c", "5%"], (_disk, 100 * GiB, 15 * GiB), "OK"),
    ("disk_partitions", ["-w", "@10%:20%", "-c", "5%"], (_disk, 100 * GiB, 15 * GiB),
     "WARNING"),
    ("disk_partitions", ["--path-threshold", "/=20%/10%"], (_disk, 100 * GiB, 15 * GiB),
     "WARNING"),
    ("disk_partitions", ["--path-threshold", "/=@10%:20%/5GiB"], (_disk, 100 * GiB, 15 * GiB),
     "WARNING"),
    ("disk_partitions", ["-W", "95%", "-K", "50%"], (_disk, 100 * GiB, 50 * GiB), "WARNING"),
    ("disk_partitions", ["-W", "@80%:95%", "-K", "50%"], (_disk, 100 * GiB, 50 * GiB),
     "WARNING"),
    ("disk_partitions", ["-W", "~:80%", "-K", "50%"], (_disk, 100 * GiB, 50 * GiB), "WARNING"),
    ("disk_partitions", ["-W", "99%", "-K", "95%:"], (_disk, 100 * GiB, 50 * GiB),
     "CRITICAL"),
    # check_os_upgrades: 3 security and 5 other upgrades pending
    ("os_upgrades", [], (_upgrades, 3, 5), "CRITICAL"),
    ("os_upgrades", ["--security-warning", "2", "--security-critical", "5", "-w", "10"],
     (_upgrades, 3, 5), "WARNING"),
    ("os_upgrades", ["--security-critical", "5", "-w", "10", "-c", "20"], (_upgrades, 3, 5),
     "OK"),
    ("os_upgrades", ["--security-critical", "5", "-w", "3:"], (_upgrades, 3, 5), "OK"),
    ("os_upgrades", ["--security-critical", "5", "-w", "6:"], (_upgrades, 3, 5), "WARNING"),
    ("os_upgrades", ["--security-critical", "5", "-w", "~:4"], (_upgrades, 3, 5), "WARNING"),
    ("os_upgrades", ["--security-critical", "5", "-w", "1:10"], (_upgrades, 3, 5), "OK"),
    ("os_upgrades", ["--security-critical", "5", "-w", "@1:10"], (_upgrades, 3, 5),
     "WARNING"),
    ("os_upgrades", ["--security-critical", "@3:3"], (_upgrades, 3, 0), "CRITICAL"),
]


@pytest.mark.parametrize("name, argv, data, state", [
    pytest.param(*case, id="%s %s" % (case[0], " ".join(case[1]))) for case in RANGE_CASES])
def test_every_range_form_gives_its_state(name, argv, data, state):
    make, *values = data
    judged, base = make(*values)
    outcome, elapsed = run(judged, base + argv)
    assert_clean(judged, outcome, elapsed)
    assert outcome.status_line.split()[1] == state, outcome.output


def test_the_range_table_covers_every_check_with_ranges():
    """Every check with a range option has rows here, and each of its range options is used."""
    covered = {}
    for name, argv, _data, _state in RANGE_CASES:
        covered.setdefault(name, set()).update(a for a in argv if a.startswith("-"))
    for name in checks():
        parser = module_of(name).build_parser()
        ranged = {a.option_strings[0] for a in value_actions(parser)
                  if _takes_a_range(a) or a.dest == "path_threshold"}
        missing = {flag for flag in ranged
                   if not covered.get(name, set()) & set(parser._option_string_actions[
                       flag].option_strings)}
        assert not missing, "%s: no range row for %s" % (name, ", ".join(sorted(missing)))


def _takes_a_range(action):
    """True when the option's type reads a Nagios range (or disk's list of them)."""
    import nagiosplugin

    if not callable(action.type):
        return False
    try:
        value = action.type("@1:2")
    except (argparse.ArgumentTypeError, TypeError, ValueError):
        return False
    return isinstance(value, nagiosplugin.Range) or hasattr(value, "ranges")


def ranged_options():
    """(check, option) for every option of every check that takes a Nagios range."""
    for name in checks():
        for action in value_actions(module_of(name).build_parser()):
            if _takes_a_range(action) or action.dest == "path_threshold":
                yield name, max(action.option_strings, key=len)


NO_BOUND = ["~", "@", ":", "~:", "", "@~:", " ~ "]


@pytest.mark.parametrize("name, option, value", [
    pytest.param(name, option, value, id="%s %s=%r" % (name, option, value))
    for name, option in ranged_options() for value in NO_BOUND])
def test_a_range_without_a_bound_is_a_usage_error(name, option, value):
    """'-w ~' once judged nothing and said OK; every range option refuses it now."""
    module = module_of(name)
    values = ["/=%s/5%%" % value, "/=10%%/%s" % value] if option == "--path-threshold" \
        else [value]
    for text in values:
        outcome, elapsed = run(module, BASE[name] + [option, text])
        assert_clean(module, outcome, elapsed)
        assert outcome.exitcode == 3, outcome.output
        assert outcome.output.count("\n") == 1 and "(see --help)" in outcome.status_line, \
            outcome.output


# A warning range that can never fire before its critical (every value it alerts on is
# critical already) is a usage error, the same rule on every pair of every check; equal
# ranges, and a warning that alerts on nothing (switched off), are accepted.
NEVER_FIRES = [
    ("backup_age", ["-w", "50h", "-c", "26h"]),
    ("backup_age", ["-w", "60h"]),  # beyond the default -c 50h
    ("backup_age", ["-w", "@30h:40h", "-c", "26h"]),
    ("backup_age", ["-w", "1h:", "-c", "2h:"]),
    ("backup_age", ["-w", "0:50h", "-c", "10m:26h"]),
    ("three_copies", ["-w", "50h", "-c", "26h"]),
    ("three_copies", ["--missing-warning", "5", "--missing-critical", "2"]),
    # the default critical is 0 with --stamp (without it the copy's age judges)
    ("three_copies", ["--differing-warning", "3", "--stamp", ".last-sync"]),
    ("three_copies", ["--extra-warning", "10", "--extra-critical", "5"]),
    ("tls_expiry", ["-w", "7d", "-c", "21d"]),
    ("tls_expiry", ["-w", "36h", "-c", "2"]),
    ("disk_partitions", ["-w", "5%", "-c", "10%"]),
    ("disk_partitions", ["-w", "10GiB", "-c", "20GiB"]),
    ("disk_partitions", ["-w", "5%,50GiB", "-c", "10%"]),
    ("disk_partitions", ["-w", "10%,5GiB", "-c", "10%,10GiB"]),
    ("disk_partitions", ["-W", "5%", "-K", "10%"]),
    ("disk_partitions", ["--path-threshold", "/=5%/10%"]),
    ("os_upgrades", ["-w", "50", "-c", "26"]),
    ("os_upgrades", ["--security-warning", "5"]),  # the default critical is 0
    ("os_upgrades", ["--security-warning", "5:", "--security-critical", "10:"]),
]

MAY_FIRE = [
    ("backup_age", ["-w", "26h", "-c", "26h"]),
    ("backup_age", ["-w", "~:26h", "-c", "26h"]),
    ("backup_age", ["-w", "@26h:40h", "-c", "26h"]),
    ("backup_age", ["-w", "@0:1h", "-c", "2h"]),
    ("backup_age", ["-w", "10m:26h", "-c", "0:50h"]),
    ("three_copies", ["--missing-warning", "0", "--missing-critical", "0"]),
    ("tls_expiry", ["-w", "21d", "-c", "21d"]),
    ("tls_expiry", ["-c", "30d"]),  # only -c moved past the default -w 21d: that one is dead
    ("backup_age", ["-c", "10h"]),  # likewise the default -w 26h
    ("tls_expiry", ["-w", "30d", "-c", "7d:400d"]),
    ("disk_partitions", ["-w", "10%,50GiB", "-c", "5%"]),
    ("disk_partitions", ["-w", "5%", "-c", "10GiB"]),  # percent and size: depends on the disk
    ("disk_partitions", ["-w", "20%,50GiB", "-c", "10%,10GiB"]),
    ("disk_partitions", ["-w", "10%", "-c", "10%"]),
    ("disk_partitions", ["--path-threshold", "/=10%/5%"]),
    ("os_upgrades", ["-w", "0:", "-c", "50"]),  # a warning switched off
    ("os_upgrades", ["-w", "5", "-c", "5"]),
]


@pytest.mark.parametrize("name, argv", [
    pytest.param(name, argv, id="%s %s" % (name, " ".join(argv))) for name, argv in NEVER_FIRES])
def test_a_warning_that_can_never_fire_is_a_usage_error(name, argv):
    module = module_of(name)
    outcome, elapsed = run(module, BASE[name] + argv)
    assert_clean(module, outcome, elapsed)
    assert outcome.exitcode == 3 and "(see --help)" in outcome.status_line, outcome.output
    assert "can never fire" in outcome.status_line, outcome.output
    assert outcome.output.count("\n") == 1, outcome.output


@pytest.mark.parametrize("name, argv", [
    pytest.param(name, argv, id="%s %s" % (name, " ".join(argv))) for name, argv in MAY_FIRE])
def test_a_warning_that_may_fire_is_accepted(name, argv):
    module = module_of(name)
    outcome, elapsed = run(module, BASE[name] + argv)
    assert_clean(module, outcome, elapsed)
    assert "(see --help)" not in outcome.status_line, outcome.output
