"""check_os_upgrades: the release's end of life from the real distro-info-data of Debian 12
(0.58+deb12u7) and Debian 13 (0.66+deb13u2), installed by each release's own apt in a cached
root (lab/peers/debian_root.apt_root), with the clock shifted by libfaketime.

Each case is a temporary root: the os-release of the release judged (bullseye's recorded from
its own root, buster's as Debian 10 ships it), the distro-info-data of 12 or 13, and a dpkg
status with no package lists, so apt has nothing to say and only the release decides.
"""
import calendar
import os
import shutil
import time

import pytest

from lab.peers import faked_clock, need, need_root, run_plugin
from tests.helpers import fixture

pytestmark = pytest.mark.peer

BUSTER = """PRETTY_NAME="Debian GNU/Linux 10 (buster)"
NAME="Debian GNU/Linux"
VERSION_ID="10"
VERSION="10 (buster)"
VERSION_CODENAME=buster
ID=debian
"""
OS_RELEASE = {"bullseye": fixture("os-release/bullseye.txt"), "buster": BUSTER}
# --max-list-age 0: a root without lists; the thresholds: only the release decides
QUIET = ["--no-cache", "--max-list-age", "0", "--security-critical", "1000", "-w", "1000"]


@pytest.fixture(scope="module", params=["bookworm", "trixie"])
def distro_info(request):
    need_root()
    need("debootstrap", "apt-get", "faketime")
    from lab.peers.debian_root import apt_root
    return apt_root(request.param, ["distro-info-data"])


def root_of(tmp_path, source, codename):
    root = tmp_path / codename
    shutil.copytree(os.path.join(source, "usr/share/distro-info"),
                    root / "usr/share/distro-info")
    shutil.copytree(os.path.join(source, "etc/apt"), root / "etc/apt", symlinks=True)
    (root / "var/lib/dpkg").mkdir(parents=True)
    shutil.copy(os.path.join(source, "var/lib/dpkg/status"), root / "var/lib/dpkg/status")
    for part in ("var/lib/apt/lists/partial", "var/cache/apt", "run"):
        (root / part).mkdir(parents=True)
    (root / "etc/os-release").write_text(OS_RELEASE[codename])
    return str(root)


def check(root, day, *argv):
    noon = calendar.timegm(time.strptime(day + " 12:00", "%Y-%m-%d %H:%M"))
    return run_plugin("check_os_upgrades", QUIET + ["--root", root] + list(argv),
                      wrap=faked_clock(noon), env={"TZ": "UTC"})


def test_debian_11_in_its_lts_years_warns_and_debian_10_is_critical(distro_info, tmp_path):
    """On 2025-06-01 Debian 11 is in its LTS years (regular support ended 2024-08-14),
    Debian 10's LTS ended 2024-06-30."""
    bullseye = check(root_of(tmp_path, distro_info, "bullseye"), "2025-06-01")
    assert bullseye.exitcode == 1, bullseye.output
    assert bullseye.status_line.startswith(
        "OS_UPGRADES WARNING - no upgrades pending, no package lists, Debian 11 (bullseye) in "
        "LTS since 2024-08-14 (fewer packages fixed), until 2026-08-31 |")
    assert ("Debian 11 (bullseye): regular security support until 2024-08-14, LTS until "
            "2026-08-31") in bullseye.output.splitlines()
    buster = check(root_of(tmp_path, distro_info, "buster"), "2025-06-01")
    assert buster.exitcode == 2, buster.output
    assert "Debian 10 (buster) has no security support since 2024-06-30 (LTS ended)" \
        in buster.status_line
    assert ("Debian 10 (buster): regular security support until 2022-09-10, LTS until "
            "2024-06-30") in buster.output.splitlines()
    # LTS accepted deliberately: OK until --eol-warning before its end
    assert check(str(tmp_path / "bullseye"), "2025-06-01", "--lts-state", "ok").exitcode == 0


def test_today_debian_11_lts_is_over_too(distro_info, tmp_path):
    """2026-12-06: Debian 11's LTS ended on 2026-08-31 (only the paid ELTS is left)."""
    bullseye = check(root_of(tmp_path, distro_info, "bullseye"), "2026-12-06")
    assert bullseye.exitcode == 2, bullseye.output
    assert "Debian 11 (bullseye) has no security support since 2026-08-31 (LTS ended)" \
        in bullseye.status_line
