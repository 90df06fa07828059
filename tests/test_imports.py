"""Cheap start: importing a check module loads no heavy library (they load on use)."""
import json
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
