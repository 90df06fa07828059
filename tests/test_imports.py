"""Cheap start: importing a check module loads no heavy library (they load on use)."""
import json
import os
import pathlib
import pkgutil
import subprocess
import sys

import pytest

import osop_checks.checks

HEAVY = ["psutil", "requests", "cryptography", "pysnmp", "dns", "pyasn1", "urllib3", "ssl"]
CHECKS = sorted(m.name for m in pkgutil.iter_modules(osop_checks.checks.__path__))


@pytest.mark.parametrize("check", CHECKS)
def test_importing_a_check_loads_no_heavy_module(check):
    code = ("import sys, json; import osop_checks.checks.%s; "
            "print(json.dumps(sorted(m for m in sys.modules)))" % check)
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                       text=True, check=True).stdout)
    heavy = [m for m in loaded if m.split(".")[0] in HEAVY]
    assert heavy == [], "%s loads %s at import" % (check, heavy)


def test_package_init_files_stay_empty_of_imports():
    import ast
    import pathlib

    for init in pathlib.Path(osop_checks.__file__).parent.rglob("__init__.py"):
        tree = ast.parse(init.read_text())
        assert not [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], init


def test_disk_partitions_local_start_loads_nothing_only_snmp_needs():
    """check_disk_partitions -p / (local mode) builds its parser, SNMP options and all,
    without the SNMP source, the address parser or what they bring (issue 29)."""
    code = ("import sys, json; from osop_checks.checks import disk_partitions; "
            "disk_partitions.build_parser(); "
            "print(json.dumps(sorted(m for m in sys.modules)))")
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                           text=True, check=True).stdout))
    # ipaddress only where the interpreter's site set-up had already imported it
    before = set(json.loads(subprocess.run(
        [sys.executable, "-c", "import sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True).stdout))
    snmp_only = {"dataclasses", "socket", "ipaddress", "osop_checks.sources.snmp",
                 "osop_checks.address"}
    assert sorted((loaded - before) & snmp_only) == []


# -- what a local check's ordinary run loads (issue 29) ---------------------------------------
# A check's start-up is what an admin pays at every run; bench/bench_startup_debian.py times it
# in clean Debian roots. This guard only names modules: a run that loads one of them has
# picked up a cost that its work does not need (no timing here, the tests never time).

NETWORK = {"requests", "urllib3", "ssl", "dns", "pysnmp", "pyasn1", "socket", "ipaddress"}
# dataclasses brings inspect, ast, dis and tokenize: the checks below start without it.
# hashlib loads OpenSSL's libcrypto for the digest of a state file's name (state.sha256_hex
# does without); shlex quotes the command lines that only -vv shows.
NOT_AT_START = NETWORK | {"psutil", "cryptography", "dataclasses", "hashlib", "shlex"}
# A run over small local trees walks them in its own process: no command (subprocess and
# the kit that runs one), no ssh, no address parser.
NO_COMMAND = {"subprocess", "selectors", "osop_checks.proc", "osop_checks.sources.ssh",
              "osop_checks.address"}


def _local_runs(tmp_path):
    """check -> (argv of an ordinary local run, modules it must not load)."""
    from lab.peers.tls import TestCA

    fixtures = pathlib.Path(__file__).parent / "fixtures"
    tree = tmp_path / "tree"
    for name in ("source", "a", "b"):
        (tree / name / "d").mkdir(parents=True)
        (tree / name / "d" / "f").write_text("x")
    systemctl = tmp_path / "systemctl"
    systemctl.write_text("#!/bin/sh\ncase \"$*\" in\n  *list-units*) exec cat %s ;;\n"
                         "  *is-system-running*) echo running ;;\n  *) exit 1 ;;\nesac\n"
                         % (fixtures / "systemd" / "list-units_running_v252.json"))
    systemctl.chmod(0o755)
    apt_get = "sh -c 'cat %s' apt-get" % (fixtures / "apt" / "dist-upgrade_bookworm.txt")
    cert = TestCA(str(tmp_path / "ca")).issue("leaf", days=90).chain_path
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    return {
        "disk_partitions": (["-p", "/"], NOT_AT_START),
        "backup_age": (["-p", str(tree / "source")], NOT_AT_START),
        "three_copies": (["--source", str(tree / "source"), "--copy", "a=%s" % (tree / "a"),
                          "--copy", "b=%s" % (tree / "b"), "--min-copies", "2"],
                         NOT_AT_START | NO_COMMAND),
        # a command given as text is split by shlex
        "os_upgrades": (["--no-cache", "--apt-get", apt_get], NOT_AT_START - {"shlex"}),
        "systemd_units": (["--systemctl", str(systemctl)], NOT_AT_START - {"shlex"}),
        # a repeat run: the first one parsed the file (cryptography) and kept what it read
        "tls_expiry": (["--file", cert, "--cache-dir", str(cache)], NOT_AT_START),
    }


LOCAL = ["disk_partitions", "backup_age", "three_copies", "os_upgrades", "systemd_units",
         "tls_expiry"]


@pytest.mark.parametrize("check", LOCAL)
def test_a_local_run_loads_nothing_its_work_does_not_need(check, tmp_path):
    argv, forbidden = _local_runs(tmp_path)[check]
    code = ("import json, sys; from osop_checks import runtime; "
            "from osop_checks.checks import %s as check; "
            "outcome = runtime.execute(check.NAME, check.build_parser, check.build_check, "
            "sys.argv[1:]); "
            "print(json.dumps([outcome.exitcode, outcome.output, sorted(sys.modules)]))" % check)
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"))
    for _run in range(2):  # the second run is the ordinary one (a cache filled, a state kept)
        proc = subprocess.run([sys.executable, "-c", code] + argv, capture_output=True,
                              text=True, check=True, env=env)
    exitcode, output, loaded = json.loads(proc.stdout)
    assert exitcode in (0, 1, 2) and "UNKNOWN" not in output.split("\n")[0], output
    # what this interpreter's own start-up loads (a site hook) is not the check's
    before = json.loads(subprocess.run(
        [sys.executable, "-c", "import sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True, env=env).stdout)
    extra = sorted(m for m in set(loaded) - set(before)
                   if m in forbidden or m.split(".")[0] in forbidden)
    assert extra == [], "check_%s %s loads %s" % (check, " ".join(argv), extra)
