"""The in-process part of the suite on other versions of the libraries than the venv's.

Debian 13's own python3-* packages: a trixie root filesystem (lab/peers/debian_root.apt_root)
with python3, the dependencies, pytest and hypothesis from trixie's apt runs the suite from
this checkout, bind-mounted read-only, in a private mount namespace. The newest PyPI release of
every dependency: a venv made with ``pip install --upgrade``, cached per day. Both run the test
files that need no peer (``INPROCESS``) with console scripts written to a temporary
OSOP_TEST_BIN, so nothing is installed into the checkout.

``python -m lab.peers.other_pythons trixie|pypi [pytest args]`` runs one by hand.
"""
import configparser
import datetime
import fcntl
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

from lab.peers import ROOT, debian_root

# The tests that need no peer: no server, no other user, no root filesystem of their own.
INPROCESS = ["tests/checks", "tests/test_units.py", "tests/test_parsers_fuzz.py",
             "tests/test_readme.py", "tests/test_regen.py::test_regen_leaves_no_diff[docs]",
             "tests/test_runtime.py", "tests/test_proc.py",
             "tests/test_manpages.py", "tests/test_peer_replies.py"]
# pysnmp is no Debian package (an optional pip install): its tests run on PyPI's newest only.
SNMP = ["tests/checks/test_snmp_source.py", "tests/checks/test_snmp_storage.py",
        "tests/checks/test_snmp_disk_partitions.py", "tests/checks/test_dyndns_match_snmp.py"]
# borgbackup and restic: Debian 13's borg 1.4 and restic 0.18 for
# tests/integration/test_backup_age_repos.py, in this root so that the suite builds one.
DEBIAN_PACKAGES = ("python3", "python3-nagiosplugin", "python3-psutil", "python3-cryptography",
                   "python3-requests", "python3-dnspython", "python3-pytest",
                   "python3-hypothesis", "openssl", "man-db", "rsync", "borgbackup", "restic")
PYPI_PACKAGES = ("nagiosplugin", "psutil", "cryptography", "requests", "dnspython", "pysnmp",
                 "urllib3", "pytest", "hypothesis")
TIMEOUT = 600


def write_console_scripts(directory, python):
    """setup.cfg's console scripts as ``python`` scripts in ``directory`` (what pip would
    write, without installing the package: it is imported from PYTHONPATH)."""
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, "setup.cfg"))
    os.makedirs(directory, exist_ok=True)
    for line in config["options.entry_points"]["console_scripts"].strip().splitlines():
        name, _, target = (part.strip() for part in line.partition("="))
        module, _, function = target.partition(":")
        path = os.path.join(directory, name)
        with open(path, "w") as handle:
            handle.write("#!%s\nimport sys\nfrom %s import %s\nsys.exit(%s())\n"
                         % (python, module, function, function))
        os.chmod(path, 0o755)


def _pytest_args(extra):
    return ["-m", "pytest", "-q", "-p", "no:cacheprovider"] + list(extra)


def run_trixie(extra=(), release="trixie"):
    """The in-process tests in ``release``'s root on its own python3 packages: the
    CompletedProcess of pytest there (stdout and stderr together)."""
    root = debian_root.apt_root(release, DEBIAN_PACKAGES)
    tests = [t for t in INPROCESS] + ["--ignore=" + t for t in SNMP]
    inner = ("mount -t tmpfs tmpfs {root}/tmp && mount -t proc proc {root}/proc && "
             "mount --rbind /dev {root}/dev && mkdir -p {root}/src && "
             "mount --bind {src} {root}/src && mount -o remount,bind,ro {root}/src && "
             "exec chroot {root} /bin/sh -c {cmd}")
    script = ("cd /src && mkdir /tmp/bin && /usr/bin/python3 -c {write} && "
              "exec /usr/bin/python3 {args}").format(
        write=shlex.quote("import sys; sys.path.insert(0, '/src'); "
                          "from lab.peers.other_pythons import write_console_scripts; "
                          "write_console_scripts('/tmp/bin', '/usr/bin/python3')"),
        args=" ".join(shlex.quote(a) for a in _pytest_args(tests + list(extra))))
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": "/root",
           "LC_ALL": "C.UTF-8", "PYTHONPATH": "/src", "PYTHONDONTWRITEBYTECODE": "1",
           "OSOP_TEST_BIN": "/tmp/bin", "CI": os.environ.get("CI", ""),
           "HYPOTHESIS_STORAGE_DIRECTORY": "/tmp/hypothesis"}
    command = inner.format(root=shlex.quote(root), src=shlex.quote(ROOT),
                           cmd=shlex.quote(script))
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           command], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT)


def newest_venv(python="/usr/bin/python3"):
    """A venv with the newest PyPI release of every dependency, made once a day and cached."""
    path = os.path.join(debian_root.CACHE, "pypi-newest-%s" % datetime.date.today().isoformat())
    os.makedirs(debian_root.CACHE, exist_ok=True)
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(path, ".complete")):
            shutil.rmtree(path, ignore_errors=True)
            subprocess.run([python, "-m", "venv", path], check=True, timeout=300)
            subprocess.run([os.path.join(path, "bin", "pip"), "install", "-q",
                            "--disable-pip-version-check", "--upgrade"] + list(PYPI_PACKAGES),
                           check=True, capture_output=True, timeout=TIMEOUT)
            open(os.path.join(path, ".complete"), "w").close()
    return path


def versions(python, packages=PYPI_PACKAGES[:-3] + ("pytest",)):
    code = ("import importlib.metadata as m, sys\nfor p in sys.argv[1:]:\n"
            "    try: print(p, m.version(p))\n    except m.PackageNotFoundError: pass")
    return subprocess.run([python, "-c", code] + list(packages), capture_output=True,
                          text=True, timeout=60).stdout


def run_pypi(extra=()):
    """The in-process tests on the newest PyPI releases: the CompletedProcess of pytest."""
    venv = newest_venv()
    python = os.path.join(venv, "bin", "python")
    with tempfile.TemporaryDirectory(prefix="osop-pypi-newest-") as tmp:
        write_console_scripts(os.path.join(tmp, "bin"), python)
        env = dict(os.environ, PYTHONPATH=ROOT, OSOP_TEST_BIN=os.path.join(tmp, "bin"),
                   PYTHONDONTWRITEBYTECODE="1",
                   HYPOTHESIS_STORAGE_DIRECTORY=os.path.join(tmp, "hypothesis"),
                   PATH=os.path.join(venv, "bin") + ":" + os.environ.get("PATH", ""))
        env.pop("VIRTUAL_ENV", None)
        return subprocess.run([python] + _pytest_args(INPROCESS + list(extra)), cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=TIMEOUT)


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "trixie"
    proc = (run_pypi if which == "pypi" else run_trixie)(sys.argv[2:])
    print(proc.stdout)
    sys.exit(proc.returncode)
