"""`make test` passes from a clone in any folder: the tests that run a check as nagios or nobody
(marked as_nagios, lab/peers/foreign_user.py) pass from a fresh clone in a private folder
(mode 0700, as `mktemp -d` or /root), where those users cannot reach the clone or its venv.

The clone is of this checkout's HEAD: committed code is what is tested. Its venv lies in the
same private folder, as `make venv` would make it, but built offline: the system python, the
clone installed editable (its console scripts), and this checkout's site-packages for the
libraries (pytest, pysnmp ...), read by root alone.
"""
import os
import site
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree

import pytest

from lab.peers import IN_CI, ROOT, need, need_root
from lab.peers.foreign_user import system_python

pytestmark = pytest.mark.peer

# The slow apt simulation of test_least_privilege (about 20 s) proves nothing the other cases
# do not: every as_nagios test file is still run.
SELECTION = ["-m", "as_nagios", "-k", "not (test_as_nagios and os_upgrades)"]
FILES = {"test_least_privilege", "test_nrpe", "test_disk_partitions", "test_backup_age_trees",
         "test_three_copies", "test_os_upgrades_apt"}


def git(*args, cwd=ROOT):
    return subprocess.run(["git"] + list(args), cwd=cwd, capture_output=True, text=True,
                          check=True, timeout=120).stdout.strip()


def private_venv(venv, clone):
    """A venv like `make venv`'s at ``venv`` for ``clone``, from what this python has."""
    subprocess.run([system_python(), "-m", "venv", "--system-site-packages", "--without-pip",
                    venv], check=True, timeout=120)
    python = os.path.join(venv, "bin", "python")
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path("
                              "'purelib'))"], capture_output=True, text=True, check=True).stdout
    with open(os.path.join(purelib.strip(), "osop-test-libraries.pth"), "w") as handle:
        handle.write("\n".join(site.getsitepackages()) + "\n")
    pip = subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "-q",
                          "--disable-pip-version-check", "--no-deps", "--no-build-isolation",
                          "--no-index", "-e", clone], capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return python


@pytest.fixture
def private_clone():
    """A clone of HEAD and its venv in a fresh mktemp -d folder (mode 0700):
    (folder, clone, python)."""
    need_root()
    need("git")
    try:
        head = git("rev-parse", "HEAD")
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        if IN_CI:
            raise
        pytest.skip("not a git checkout: %s" % exc)
    folder = tempfile.mkdtemp(prefix="anywhere-")  # mode 0700, others cannot pass
    clone = os.path.join(folder, "osop-checks")
    try:
        git("clone", "-q", "--no-checkout", ROOT, clone, cwd=folder)
        git("fetch", "-q", ROOT, "HEAD", cwd=clone)  # also a detached HEAD on no branch
        git("checkout", "-q", "--detach", head, cwd=clone)
        assert git("rev-parse", "HEAD", cwd=clone) == head
        yield folder, clone, private_venv(os.path.join(clone, ".venv"), clone)
    finally:
        subprocess.run(["rm", "-rf", folder], check=False)


def test_the_as_nagios_tests_pass_from_a_clone_in_a_private_folder(private_clone):
    folder, clone, python = private_clone
    assert os.stat(folder).st_mode & 0o777 == 0o700
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    imported = subprocess.run(
        [python, "-c", "import osop_checks, lab.peers; "
         "print(osop_checks.__file__); print(lab.peers.ROOT)"],
        cwd=clone, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert imported == [os.path.join(clone, "osop_checks", "__init__.py"), clone]
    report = os.path.join(folder, "report.xml")
    ran = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "--junitxml", report] + SELECTION,
                         cwd=clone, env=env, capture_output=True, text=True, timeout=600)
    summary = ran.stdout[-6000:] + ran.stderr[-2000:]
    assert ran.returncode == 0, summary
    cases = ElementTree.parse(report).getroot().iter("testcase")
    outcomes = {}
    for case in cases:
        module = case.get("classname").rpartition(".")[2]
        troubles = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes.setdefault(module, []).append((case.get("name"), troubles))
    assert FILES <= set(outcomes), summary
    assert all(not troubles for runs in outcomes.values() for _, troubles in runs), outcomes
