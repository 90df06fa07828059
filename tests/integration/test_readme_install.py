"""README.md's install lines without the package, run verbatim in fresh bookworm and trixie
root filesystems from a copy of this checkout: the venv build needs no PyPI (Debian's
setuptools, --no-build-isolation), the links land in /usr/lib/nagios/plugins, a check runs
from there, without pysnmp (only SNMP mode needs it); then the SNMP line (which needs PyPI)
brings pysnmp 7 as the package's extra "snmp"."""
import os
import shutil
import subprocess

import pytest

from tests import readme
from lab.peers import ROOT, debian_root, need, need_root
from lab.peers.debian_root import chroot

pytestmark = pytest.mark.peer


@pytest.mark.parametrize("release", ("bookworm", "trixie"))
def test_the_readme_pip_install_lines_work_verbatim(release, tmp_path):
    need_root()
    need("debootstrap", "chroot", "mount", "git")
    with debian_root.booted_copy(release, (), str(tmp_path / ("readme-" + release))) as root:
        clone = os.path.join(root, "root", "osop-checks")
        files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                                "--exclude-standard"], cwd=ROOT, check=True,
                               capture_output=True).stdout.decode().split("\0")
        for name in filter(None, files):
            if os.path.isfile(os.path.join(ROOT, name)):
                os.makedirs(os.path.dirname(os.path.join(clone, name)), exist_ok=True)
                shutil.copy2(os.path.join(ROOT, name), os.path.join(clone, name))
        built = chroot(root, "sh", "-ec", "cd /root/osop-checks\n"
                       + readme.shell_block("install-pip"), timeout=900)
        assert built.returncode == 0, (release, built.stdout[-3000:], built.stderr[-3000:])
        ran = chroot(root, "/usr/lib/nagios/plugins/check_disk_partitions", "-p", "/")
        assert ran.returncode in (0, 1, 2) and ran.stdout.startswith("DISK_PARTITIONS "), (
            release, ran.stdout, ran.stderr)
        without = chroot(root, "/opt/osop-checks/bin/python", "-c", "import pysnmp")
        assert without.returncode != 0 and "pysnmp" in without.stderr, without
        env = {}
        if os.environ.get("PIP_CERT"):  # this machine's way to PyPI names its own CA bundle
            shutil.copy(os.environ["PIP_CERT"], os.path.join(root, "tmp", "pip-ca.crt"))
            env["PIP_CERT"] = "/tmp/pip-ca.crt"
        snmp = chroot(root, "sh", "-ec", "cd /root/osop-checks\n"
                      + readme.shell_block("install-snmp"), timeout=600,
                      env=env)
        assert snmp.returncode == 0, (release, snmp.stdout[-2000:], snmp.stderr[-2000:])
        probe = chroot(root, "/opt/osop-checks/bin/python", "-c",
                       "import pysnmp, sys; sys.stdout.write(pysnmp.__version__)")
        assert probe.returncode == 0 and probe.stdout.startswith("7."), probe
