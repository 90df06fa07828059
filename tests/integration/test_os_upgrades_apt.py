"""check_os_upgrades against real apt: this machine's, and debootstrap roots of other releases.

Simulation only: nothing here installs or upgrades a package. Roots come from
lab/peers/debian_root.updated_root (built once, a minute or two, then cached); the
reboot-required, stale-list, hold and lock cases are built for real in a temporary root made
of a cached root's apt state, asked through this machine's apt-get with -o Dir=ROOT.
"""
import fcntl
import os
import re
import shutil
import subprocess
import time

import pytest

from lab.peers import need, need_root, run_plugin
from lab.peers.foreign_user import shared_tempdir

pytestmark = pytest.mark.peer

CHECK_APT = "/usr/lib/nagios/plugins/check_apt"
# Monitoring Plugins' check_apt's own default for security ("critical") upgrades.
SECURITY = re.compile(r"^[^\(]*\(.* (Debian-Security:|Ubuntu:[^/]*/[^-]*-security)")


def count(simulation):
    """(upgrades, security upgrades) counted the way check_apt counts: Inst lines, and those
    of them its regular expression calls critical. Independent of our parser."""
    inst = [line for line in simulation.splitlines() if line.startswith("Inst ")]
    return len(inst), sum(1 for line in inst if SECURITY.search(line))


def numbers(outcome):
    perf = dict(item.split("=", 1) for item in outcome.status_line.split(" | ", 1)[1].split())
    return (int(perf["upgrades"].split(";")[0]), int(perf["security_upgrades"].split(";")[0]))


def simulate(argv):
    return subprocess.run(argv + ["-s", "-o", "Debug::NoLocking=1", "dist-upgrade"],
                          capture_output=True, text=True, check=True, timeout=120,
                          env=dict(os.environ, LC_ALL="C")).stdout


def snapshot(paths):
    """mtime/size/inode of files and directory entries: to prove a run changed nothing."""
    from osop_checks.state import stat_key
    return stat_key(paths)


# -- this machine ---------------------------------------------------------------------------

@pytest.mark.parametrize("ours, theirs", [
    ([], ["-d"]),                                  # dist-upgrade on both sides
    (["--upgrade-mode", "upgrade"], []),           # check_apt's default: upgrade
])
def test_this_machine_same_counts_as_check_apt(ours, theirs):
    """The differential test: this machine's real apt, our check and Monitoring Plugins'
    check_apt agree on the number of upgrades and of security upgrades; and the run changed
    nothing (no lock file, no status written)."""
    need("apt-get", "check_apt")
    watched = ["/var/lib/dpkg/status", "/var/lib/dpkg", "/var/lib/apt/lists"]
    # Other jobs may install packages on this machine meanwhile: both tools must have seen
    # the same apt state, so a round in which it changed is repeated (at most three times).
    for _ in range(3):
        before = snapshot(watched)
        mine = run_plugin("check_os_upgrades", ["--no-cache", "--max-list-age", "0"] + ours)
        # check_apt's own 10 s default is too short for a loaded 2-core machine
        result = subprocess.run([CHECK_APT, "-t", "110"] + theirs, capture_output=True,
                                text=True, timeout=120)
        apt_get = count(simulate(["apt-get"])) if not ours else None
        if snapshot(watched) == before:
            break
    assert snapshot(watched) == before, "the apt state kept changing during the test"
    assert mine.exitcode in (0, 1, 2), mine.output
    assert "Traceback" not in mine.output + mine.stderr
    assert "|" in result.stdout, "check_apt gave no perfdata: %s" % result.stdout
    perf = dict(item.split("=", 1) for item in result.stdout.split("|", 1)[1].split())
    reference = (int(perf["available_upgrades"].split(";")[0]),
                 int(perf["critical_updates"].split(";")[0]))
    assert numbers(mine) == reference, (mine.status_line, result.stdout)
    if apt_get:  # and both agree with apt-get's own Inst lines
        assert numbers(mine) == apt_get


def test_repeat_run_comes_from_the_cache(tmp_path):
    need("apt-get")
    argv = ["--cache-dir", str(tmp_path), "--max-list-age", "0"]
    watched = ["/var/lib/dpkg/status", "/var/lib/apt/lists"]
    for _ in range(3):  # repeated when another job changed the apt state in between
        before = snapshot(watched)
        first = run_plugin("check_os_upgrades", argv)
        second = run_plugin("check_os_upgrades", argv)
        if snapshot(watched) == before:
            break
        for entry in tmp_path.iterdir():
            entry.unlink()
    assert "answer cached at" not in first.output
    assert "answer cached at" in second.output
    assert numbers(first) == numbers(second)
    assert first.exitcode == second.exitcode


def test_unprivileged_user_caches_under_xdg_cache_home(foreign_install):
    """Icinga runs plugins as nagios: /var/cache/osop-checks is root's, so the answer is kept
    in $XDG_CACHE_HOME/osop-checks; apt-get -s needs no privileges."""
    need("apt-get")
    with shared_tempdir("osop-xdg-") as home:
        os.chmod(home, 0o777)
        env = {"XDG_CACHE_HOME": home, "HOME": "/nonexistent"}
        watched = ["/var/lib/dpkg/status", "/var/lib/apt/lists"]
        for _ in range(3):  # repeated when another job changed the apt state in between
            before = snapshot(watched)
            first = foreign_install.run("check_os_upgrades", ["--max-list-age", "0"],
                                        user="nobody", env=env)
            second = foreign_install.run("check_os_upgrades", ["--max-list-age", "0"],
                                         user="nobody", env=env)
            if snapshot(watched) == before:
                break
        assert first.exitcode in (0, 1, 2), first.output + first.stderr
        assert os.listdir(os.path.join(home, "osop-checks"))
        assert "answer cached at" in second.output
        assert numbers(first) == numbers(second)


# -- other releases, their own apt run in their root -----------------------------------------

@pytest.fixture(scope="module", params=["bullseye", "trixie"])
def release_root(request):
    need_root()
    need("debootstrap", "chroot")
    from lab.peers.debian_root import updated_root
    return request.param, updated_root(request.param)


def test_release_root_with_its_own_apt(release_root):
    release, root = release_root
    apt_get = ["chroot", root, "apt-get"]
    expected = count(simulate(apt_get))
    assert expected[0] > 0, "the %s root has no pending upgrades to check" % release
    outcome = run_plugin("check_os_upgrades", [
        "--no-cache", "--root", root, "--apt-get", " ".join(apt_get), "--max-list-age", "0"])
    assert numbers(outcome) == expected
    assert outcome.exitcode == (2 if expected[1] else 1)
    assert outcome.output.splitlines()[1].startswith("[SECURITY] " if expected[1] else "")


def test_release_root_through_this_machines_apt(release_root):
    """--root alone: this machine's apt-get reads the root's sources, lists and status."""
    release, root = release_root
    before = snapshot([os.path.join(root, "var/cache/apt"), os.path.join(root, "var/lib/dpkg")])
    outcome = run_plugin("check_os_upgrades", ["--no-cache", "--root", root,
                                               "--max-list-age", "0"])
    assert numbers(outcome) == count(simulate(["chroot", root, "apt-get"]))
    assert snapshot([os.path.join(root, "var/cache/apt"),
                     os.path.join(root, "var/lib/dpkg")]) == before


# -- situations built for real in a temporary root ------------------------------------------

@pytest.fixture
def apt_state(tmp_path):
    """A temporary root holding a trixie root's apt state (sources, lists, dpkg status)."""
    need_root()
    need("debootstrap", "apt-get")
    from lab.peers.debian_root import updated_root
    source = updated_root("trixie")
    root = tmp_path / "root"
    for part in ("etc/apt", "var/lib/apt/lists", "var/lib/dpkg"):
        shutil.copytree(os.path.join(source, part), root / part, symlinks=True,
                        ignore=shutil.ignore_patterns("lock*", "info"))
    (root / "run").mkdir()
    (root / "var/cache/apt").mkdir(parents=True)
    return root


def check(root, *argv):
    """Run against the temporary root; the answer cache lives beside it, so only a run after
    a change of the dpkg status or the lists asks apt again (the cache is keyed on them)."""
    (root.parent / "cache").mkdir(exist_ok=True)
    return run_plugin("check_os_upgrades", ["--cache-dir", str(root.parent / "cache"),
                                            "--root", str(root)] + list(argv))


QUIET = ["--security-critical", "1000", "-w", "1000"]  # only the state under test decides


def test_reboot_required_file(apt_state):
    assert check(apt_state, *QUIET).exitcode == 0
    (apt_state / "run/reboot-required").write_text("*** System restart required ***\n")
    (apt_state / "run/reboot-required.pkgs").write_text("linux-image-6.12.48+deb13-amd64\n"
                                                        "libc6\n")
    outcome = check(apt_state, *QUIET)
    assert outcome.exitcode == 1
    assert "reboot required" in outcome.status_line
    assert "reboot_required=1;;;0;1" in outcome.status_line
    assert "reboot required by: libc6 linux-image-6.12.48+deb13-amd64" in outcome.output
    assert check(apt_state, "--reboot-state", "crit", *QUIET).exitcode == 2
    assert check(apt_state, "--reboot-state", "ok", *QUIET).exitcode == 0


def test_stale_and_missing_lists(apt_state):
    lists = apt_state / "var/lib/apt/lists"
    old = time.time() - 10 * 86400
    for entry in lists.iterdir():
        os.utime(entry, (old, old))
    outcome = check(apt_state, "--max-list-age", "2d", *QUIET)
    assert outcome.exitcode == 1
    assert "package lists 1w 3d old (max 2d)" in outcome.status_line
    assert check(apt_state, "--max-list-age", "2d", "--list-age-state", "crit",
                 *QUIET).exitcode == 2
    assert check(apt_state, "--max-list-age", "11d", *QUIET).exitcode == 0
    # An apt-get update that cannot reach its mirror leaves the lists stale.
    (apt_state / "etc/apt/sources.list").write_text("deb http://127.0.0.1:9/debian trixie main\n")
    for extra in (apt_state / "etc/apt/sources.list.d").iterdir():
        extra.unlink()
    subprocess.run(["apt-get", "-q", "-o", "Dir=%s" % apt_state, "-o",
                    "Dir::State::status=%s/var/lib/dpkg/status" % apt_state,
                    "-o", "Acquire::Retries=0", "update"],
                   capture_output=True, timeout=60)
    outcome = check(apt_state, "--max-list-age", "2d", *QUIET)
    assert outcome.exitcode == 1 and "(max 2d)" in outcome.status_line, outcome.output
    # Lists never fetched: apt sees no candidates and says 0 upgrades, which we do not trust.
    for entry in lists.iterdir():
        if entry.is_file():
            entry.unlink()
    outcome = check(apt_state, *QUIET)
    assert outcome.exitcode == 1
    assert outcome.status_line.startswith("OS_UPGRADES WARNING - no upgrades pending, "
                                          "no package lists")


def hold(root, package):
    status = root / "var/lib/dpkg/status"
    text = status.read_text()
    block = re.search(r"^Package: %s\n(?:.+\n)*?Status: install ok installed$"
                      % re.escape(package), text, re.M)
    assert block, package
    status.write_text(text[:block.start()] + block.group(0).replace(
        "Status: install ok installed", "Status: hold ok installed") + text[block.end():])


def test_held_package_and_cache_invalidation(apt_state, tmp_path):
    (tmp_path / "cache").mkdir()
    cache = ["--cache-dir", str(tmp_path / "cache"), "--root", str(apt_state)] + QUIET
    first = run_plugin("check_os_upgrades", cache)
    assert "answer cached" in run_plugin("check_os_upgrades", cache).output
    upgrades = [line.split()[1] for line in first.output.splitlines()[1:]
                if line.startswith("[SECURITY] ")]
    package = upgrades[0] if upgrades else "libc6"
    hold(apt_state, package)  # the dpkg status changed: the cache must not answer
    outcome = run_plugin("check_os_upgrades", cache)
    assert "answer cached" not in outcome.output
    assert "1 held" in outcome.status_line
    assert any(line.startswith("held: %s" % package) for line in outcome.output.splitlines())
    assert "held=1;" in outcome.status_line
    assert numbers(outcome)[0] == numbers(first)[0] - (1 if upgrades else 0)


def test_runs_while_dpkg_is_locked(apt_state):
    """dpkg holding its lock (an upgrade running) does not stop a simulation."""
    handles = []
    try:
        for name in ("lock-frontend", "lock"):
            handle = open(apt_state / "var/lib/dpkg" / name, "w")
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            handles.append(handle)
        # apt's speed on a busy runner is not the question
        outcome = check(apt_state, "-t", "120", *QUIET)
    finally:
        for handle in handles:
            handle.close()
    assert outcome.exitcode == 0, outcome.output
    assert "upgrades=" in outcome.status_line


def test_broken_status_file_is_unknown(apt_state):
    (apt_state / "var/lib/dpkg/status").write_text("Package: broken\nthis is not a field\n")
    outcome = check(apt_state)
    assert outcome.exitcode == 3
    assert outcome.output.startswith("OS_UPGRADES UNKNOWN - apt-get failed (exit 100): E: ")
    assert len(outcome.output.splitlines()) == 1
