"""The in-process part of the suite (lab/peers/other_pythons.INPROCESS) on Debian 13's own
python3 packages (a trixie root filesystem, Python 3.13) and on the newest PyPI release of
every dependency; the venv itself runs it on Debian 12's."""
import re

import pytest

from lab.peers import need, need_root, other_pythons

pytestmark = pytest.mark.peer


def _passed(proc):
    tail = proc.stdout[-3000:]
    assert proc.returncode == 0, tail
    summary = proc.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary) and "failed" not in summary \
        and "error" not in summary, tail
    assert " skipped" not in summary, tail  # every test of the part runs there
    return int(re.search(r"(\d+) passed", summary).group(1))


def test_inprocess_suite_passes_on_trixies_python3_packages():
    need_root()
    need("debootstrap", "unshare", "chroot")
    assert _passed(other_pythons.run_trixie()) > 500


def test_inprocess_suite_passes_on_the_newest_pypi_releases():
    proc = other_pythons.run_pypi()
    print(other_pythons.versions(other_pythons.newest_venv() + "/bin/python"))
    assert _passed(proc) > 500
