"""The checks installed where another user (nagios, nobody) can run them, wherever the clone is.

The suite runs as root from a clone that may lie in a private folder (`mktemp -d`, /root), so
the clone's .venv and its console scripts are root's alone. A test that runs a check as another
user, as Icinga and NRPE do, asks for the session fixture ``foreign_install`` instead: once per
session, a world-readable temporary directory with a copy of this clone's osop_checks, a copy of
the libraries pip installed into the venv (what Debian does not ship, e.g. pysnmp 7), and the
shipped PluginDir shims (plugins/check_*) run by the system python the venv was made from.
Every test that uses it is marked ``as_nagios`` (tests/conftest.py).

Data a test hands to another user belongs in ``shared_tempdir()``, not in pytest's tmp_path
(root's alone, mode 0700).
"""
import contextlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

from lab.peers import IN_CI, ROOT, need, need_root, run_plugin

USER = "nagios"
OTHERS_MAY_ENTER = 0o001


def _world_traversable(path):
    """Every folder from / down to ``path`` lets others pass through."""
    path = os.path.realpath(path)
    while True:
        if not os.stat(path).st_mode & OTHERS_MAY_ENTER:
            return False
        if path == os.path.dirname(path):
            return True
        path = os.path.dirname(path)


def _shared_root():
    base = tempfile.gettempdir()
    return base if _world_traversable(base) else "/tmp"


@contextlib.contextmanager
def shared_tempdir(prefix):
    """A fresh directory (mode 0755) that every user can reach; removed afterwards."""
    path = tempfile.mkdtemp(prefix=prefix, dir=_shared_root())
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def system_python():
    """The interpreter the venv was made from (its bin/python links there): one that every
    user may run, with Debian's python3-* libraries."""
    return os.path.realpath(sys.executable)


def _system_paths(python):
    code = "import json, sys; print(json.dumps(sys.path))"
    out = subprocess.run([python, "-s", "-E", "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return {os.path.realpath(p) for p in json.loads(out) if p}


def _needed_distributions(name="osop-checks", seen=None, extras=("snmp",)):
    """``name`` and what it requires with ``extras`` (osop-checks' SNMP mode, which the
    tests run as nagios too), recursively, as installed here."""
    seen = {} if seen is None else seen
    key = re.sub(r"[-_.]+", "-", name).lower()
    if key in seen:
        return seen
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return seen  # an optional or platform-only requirement not installed here
    seen[key] = dist
    for requirement in dist.requires or ():
        extra = re.search(r"\bextra\s*==\s*['\"]([^'\"]+)", requirement.partition(";")[2])
        if extra and extra.group(1) not in extras:
            continue
        _needed_distributions(re.match(r"[A-Za-z0-9._-]+", requirement).group(0), seen, ())
    return seen


def _copy_distribution(dist, target):
    for relative in dist.files or ():
        if relative.parts[0] == ".." or "__pycache__" in relative.parts:
            continue  # console scripts in bin/, byte code
        source = str(dist.locate_file(relative))
        destination = os.path.join(target, *relative.parts)
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        shutil.copy2(source, destination)


def build(target):
    """Fill ``target``: osop_checks from this clone, the venv-only libraries it needs, and the
    plugins/check_* shims with the system python in their first line."""
    python = system_python()
    shutil.copytree(os.path.join(ROOT, "osop_checks"), os.path.join(target, "osop_checks"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    system = _system_paths(python)
    for key, dist in _needed_distributions().items():
        if key != "osop-checks" and os.path.realpath(str(dist.locate_file(""))) not in system:
            _copy_distribution(dist, target)
    plugins = os.path.join(ROOT, "plugins")
    for name in sorted(os.listdir(plugins)):
        with open(os.path.join(plugins, name)) as handle:
            shim = handle.read().split("\n", 1)[1]
        path = os.path.join(target, name)
        with open(path, "w") as handle:
            handle.write("#!%s\n%s" % (python, shim))
    subprocess.run(["chmod", "-R", "a+rX,go-w", target], check=True)
    for name in os.listdir(plugins):
        os.chmod(os.path.join(target, name), 0o755)


class Install:
    """The shims in ``bin`` import osop_checks from next to them (their own directory comes
    first on sys.path), then the system's site-packages."""

    def __init__(self, bin):
        self.bin = bin

    def path(self, name):
        return os.path.join(self.bin, name)

    def run(self, name, argv=(), user=USER, **options):
        """run_plugin as ``user`` (runuser): a runtime.Outcome with .stderr."""
        return run_plugin(name, argv, user=user, bin_dir=self.bin, **options)


@pytest.fixture(scope="session")
def foreign_install():
    """The checks where nagios and nobody can run them (session scope); fails loudly when the
    user nagios cannot run them after all."""
    need_root()
    need("runuser")
    try:
        subprocess.run(["id", USER], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        message = "no user %s here (Debian's nagios-nrpe-server creates it)" % USER
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    with shared_tempdir("osop-foreign-install-") as directory:
        build(directory)
        install = Install(directory)
        for user in (USER, "nobody"):
            probe = install.run("check_disk_partitions", ["-p", "/"], user=user)
            assert probe.exitcode in (0, 1, 2) and probe.stderr == "", (
                "%s cannot run %s: %s%s" % (user, install.path("check_disk_partitions"),
                                          probe.output, probe.stderr))
        yield install
