"""check_os_upgrades: processes still running code of a replaced (deleted) library, for real.

A copy of this system's libz is loaded by a process (python's ctypes here; LD_PRELOAD in a
systemd unit of a booted container, lab/peers/systemd_container.py), then the copy is replaced
by renaming a new file over it, as dpkg does in an upgrade: the process keeps the old one
mapped, which /proc/PID/maps shows as "(deleted)".
"""
import ctypes.util
import os
import shutil
import subprocess
import sys
import time

import pytest

from lab.peers import end_process, need_root, run_plugin

pytestmark = pytest.mark.peer

LIBZ = "/usr/lib/x86_64-linux-gnu/libz.so.1" if os.path.exists(
    "/usr/lib/x86_64-linux-gnu/libz.so.1") else ctypes.util.find_library("z")
HOLDER = "osop-heldlib.service"
UNITS = {HOLDER: """\
[Unit]
Description=osop test: a service that has a library mapped
[Service]
Environment=LD_PRELOAD=/usr/local/lib/libosopz.so.1
ExecStart=/bin/sleep infinity
[Install]
WantedBy=multi-user.target
"""}


def replace(path):
    """A new file renamed over ``path``, as dpkg installs a package's new version."""
    shutil.copy(path, path + ".dpkg-new")
    os.replace(path + ".dpkg-new", path)


def check(tmp_path, *argv):
    """The check on this machine's processes; apt asked about an empty root (no lists, an
    empty dpkg status) through --apt-get, so that only the processes decide, quickly."""
    empty = tmp_path / "empty"
    if not empty.exists():
        for part in ("etc/apt/sources.list.d", "etc/apt/preferences.d", "var/lib/dpkg",
                     "var/lib/apt/lists/partial", "var/cache/apt"):
            (empty / part).mkdir(parents=True)
        (empty / "var/lib/dpkg/status").write_text("")
        (empty / "etc/apt/sources.list").write_text("")
    apt_get = "apt-get -o Dir=%s -o Dir::State::status=%s/var/lib/dpkg/status" % (empty, empty)
    return run_plugin("check_os_upgrades", ["--no-cache", "--apt-get", apt_get,
                                            "--max-list-age", "0", "--eol-state", "ok",
                                            "--lts-state", "ok", "--eol-warning", "0"]
                      + list(argv), timeout=120)


def holders(path):
    """PIDs (as seen here) of processes that map ``path``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/maps" % entry) as handle:
                    if path in handle.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


def wait_for_mapping(pid, path, limit=10):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        with open("/proc/%d/maps" % pid) as handle:
            if path in handle.read():
                return
        time.sleep(0.05)
    raise AssertionError("%s was not loaded by %d" % (path, pid))


def test_process_on_a_deleted_library_is_named(tmp_path):
    """Outside systemd (this machine's PID 1 is not systemd) it is named by the process."""
    need_root()  # the copy goes where libraries are: /usr/local/lib
    directory = "/usr/local/lib/osop-test-%d" % os.getpid()
    os.makedirs(directory)
    copy = os.path.join(directory, "libosopz.so.1")
    shutil.copy(LIBZ, copy)
    holder = subprocess.Popen([sys.executable, "-c", "import ctypes, sys, time\n"
                               "ctypes.CDLL(sys.argv[1]); time.sleep(600)", copy])
    try:
        wait_for_mapping(holder.pid, copy)
        before = check(tmp_path)
        assert "(pid %d)" % holder.pid not in before.output
        replace(copy)
        outcome = check(tmp_path)
        with open("/proc/%d/comm" % holder.pid) as handle:
            name = handle.read().strip()
        label = "%s (pid %d)" % (name, holder.pid)
        assert outcome.exitcode == 1, outcome.output
        assert "restart needed: " in outcome.status_line and label in outcome.status_line
        assert "restart needed: %s: %s" % (label, copy) \
            in outcome.output.splitlines()
        assert "restarts_needed=" in outcome.status_line
        assert check(tmp_path, "--restart-state", "critical").exitcode == 2
    finally:
        end_process(holder)
        shutil.rmtree(directory, ignore_errors=True)


def test_service_on_a_deleted_library_is_named_by_its_unit(tmp_path):
    """In a booted systemd (the container's processes are seen from here in /proc), the
    process is named by its unit."""
    from lab.peers import systemd_container

    need_root()
    try:
        context = systemd_container.booted(units=UNITS, stamps={})
        container = context.__enter__()
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        pytest.skip("cannot boot the systemd container here: %s" % exc)
    try:
        inside = os.path.join(container.root, "usr/local/lib/libosopz.so.1")
        shutil.copy(os.path.join(container.root, "usr/lib/x86_64-linux-gnu/libz.so.1"),
                    inside)
        container.run("restart", HOLDER, check=True)
        end = time.monotonic() + 15
        while not holders("/usr/local/lib/libosopz.so.1") and time.monotonic() < end:
            time.sleep(0.1)
        assert holders("/usr/local/lib/libosopz.so.1"), container.run("status", HOLDER).stdout
        assert "restart needed" not in check(tmp_path).status_line
        replace(inside)
        outcome = check(tmp_path)
        assert outcome.exitcode == 1, outcome.output
        assert "restart needed: %s" % HOLDER in outcome.status_line
        assert any(line.startswith("restart needed: %s (" % HOLDER)
                   and line.endswith("sleep): /usr/local/lib/libosopz.so.1")
                   for line in outcome.output.splitlines()), outcome.output
        container.run("restart", HOLDER, check=True)  # the restart clears it
        assert "restart needed: %s" % HOLDER not in check(tmp_path).status_line
    finally:
        context.__exit__(None, None, None)


def test_as_another_user_only_its_own_processes_and_v_says_so(foreign_install, tmp_path):
    """As nagios (Icinga's user), the maps of root's processes cannot be read: its own
    process on a replaced library is named, and -v says how many others were not seen."""
    from lab.peers.foreign_user import USER, shared_tempdir

    need_root()
    directory = "/usr/local/lib/osop-test-user-%d" % os.getpid()
    os.makedirs(directory)
    os.chmod(directory, 0o755)
    copy = os.path.join(directory, "libosopz.so.1")
    shutil.copy(LIBZ, copy)
    os.chmod(copy, 0o644)
    holder = subprocess.Popen(["/usr/bin/python3", "-c", "import ctypes, sys, time\n"
                               "ctypes.CDLL(sys.argv[1]); time.sleep(600)", copy],
                              user=USER, group=USER, extra_groups=[])
    try:
        wait_for_mapping(holder.pid, copy)
        replace(copy)
        with shared_tempdir("osop-restarts-") as shared:
            empty = os.path.join(shared, "empty")
            for part in ("etc/apt/sources.list.d", "etc/apt/preferences.d", "var/lib/dpkg",
                         "var/lib/apt/lists/partial", "var/cache/apt"):
                os.makedirs(os.path.join(empty, part))
            for name in ("var/lib/dpkg/status", "etc/apt/sources.list"):
                open(os.path.join(empty, name), "w").close()
            apt_get = "apt-get -o Dir=%s -o Dir::State::status=%s/var/lib/dpkg/status" % (
                empty, empty)
            argv = ["--no-cache", "--apt-get", apt_get, "--max-list-age", "0",
                    "--eol-state", "ok", "--lts-state", "ok", "--eol-warning", "0"]
            outcome = foreign_install.run("check_os_upgrades", argv + ["-v"])
            quiet = foreign_install.run("check_os_upgrades", argv)
    finally:
        end_process(holder)
        shutil.rmtree(directory, ignore_errors=True)
    assert outcome.exitcode == 1, outcome.output + outcome.stderr
    assert "restart needed: python3 (pid %d)" % holder.pid in outcome.status_line
    assert any(line.startswith("restarts: the maps of ") and line.endswith(
        "could not be read (processes of other users: run as root to see them)")
        for line in outcome.output.splitlines()), outcome.output
    assert "could not be read" not in quiet.output
