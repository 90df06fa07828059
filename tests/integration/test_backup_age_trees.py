"""check_backup_age as Icinga runs it: the installed script as a whole process, on real trees
made by the tests (real rsync -a copies), as root and as an unprivileged user."""
import datetime
import os
import subprocess
import time

import pytest

from lab.peers import need, run_plugin, trees
from lab.peers.foreign_user import shared_tempdir

NOW = time.time()
HOUR, DAY = 3600, 86400


@pytest.fixture(autouse=True)
def _now():
    """NOW is taken when each test starts: texts such as "is 2h old" must not drift while
    the rest of the suite runs."""
    global NOW
    NOW = time.time()


def listing(root):
    """Every entry's path, size, mtime and ctime: a ctime unchanged means nothing was written,
    renamed or chmod'ed."""
    seen = []
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            st = os.lstat(os.path.join(dirpath, name))
            seen.append((os.path.join(dirpath, name), st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return sorted(seen)


def test_rsync_copy_whole_process_and_read_only(tmp_path):
    need("rsync")
    source, copy = str(tmp_path / "data1"), str(tmp_path / "data2")
    trees.make_wide_tree(source, fanout=(5, 6), files_per_dir=10, age=(20 * DAY, 40 * DAY))
    trees.rsync_copy(source, copy)
    before = listing(copy)
    stale = run_plugin("check_backup_age", ["-p", copy, "-w", "26h", "-c", "50h"])
    assert stale.exitcode == 2 and stale.status_line.startswith(
        "BACKUP_AGE CRITICAL - newest file %s/" % copy)
    assert "(mtime), limit 50h" in stale.status_line
    fresh = run_plugin("check_backup_age", ["-p", copy, "--time", "ctime", "-w", "26h",
                                            "-c", "50h", "--min-files", "300"])
    assert fresh.exitcode == 0, fresh.output
    assert "(ctime); 300 files" in fresh.status_line
    assert listing(copy) == before
    assert fresh.stderr == "" and "Traceback" not in fresh.output


@pytest.mark.parametrize("workers", ["1", "2", "4"])
def test_forked_workers_agree(tmp_path, workers):
    info = trees.make_wide_tree(str(tmp_path), fanout=(8, 10), files_per_dir=3, now=NOW)
    out = run_plugin("check_backup_age", ["-p", tmp_path, "--workers", workers, "-c", "60d",
                                          "-w", "60d"])
    assert out.exitcode == 0, out.output
    assert "newest file %s is" % info["newest"] in out.status_line
    assert "files=240;;;0 size=%dB;;;0" % info["bytes"] in out.status_line
    assert "with %s process" % workers in out.output


def test_unreadable_directories_as_an_unprivileged_user(foreign_install):
    def as_nobody(*argv):
        return foreign_install.run("check_backup_age", argv, user="nobody")

    with shared_tempdir("osop-backup-age-") as base:
        backup = os.path.join(base, "backup")
        trees.make_tree(backup, {"open/a": (10, NOW - HOUR), "secret/b": (10, NOW)})
        os.chmod(os.path.join(backup, "secret"), 0o700)
        out = as_nobody("-p", backup)
        assert out.exitcode == 3
        assert out.output == ("BACKUP_AGE UNKNOWN - cannot read 1 directory under %s (first: "
                              "%s/secret: Permission denied); the newest backup may be in there "
                              "(--skip-unreadable goes on without them)\n" % (backup, backup))
        out = as_nobody("-p", backup, "--skip-unreadable")
        assert out.exitcode == 0 and "%s/open/a is 1h old" % backup in out.status_line
        assert "skipped: cannot read 1 directory" in out.output
        os.chmod(os.path.join(backup, "secret"), 0o744)  # listable, its files cannot be stat'ed
        out = as_nobody("-p", backup)
        assert out.exitcode == 3 and "cannot read 1 directory under %s (first: %s/secret: " \
            "Permission denied)" % (backup, backup) in out.output
        os.chmod(backup, 0o700)
        out = as_nobody("-p", backup)
        assert (out.exitcode, out.output) == (
            3, "BACKUP_AGE UNKNOWN - Permission denied: %s\n" % backup)
        out = as_nobody("-p", backup, "--mode", "snapshot")
        assert out.exitcode == 3 and "Permission denied" in out.output
        out = as_nobody("--stamp", backup + "/open/a")
        assert out.exitcode == 3 and "Permission denied" in out.output


def test_snapshot_history_whole_process_and_read_only(tmp_path):
    """rsnapshot's rotation as it lies on disk (daily.N and weekly.N, timed by the mtimes
    rsnapshot leaves), then a dated rotation; the real script, nothing written."""
    rsnap = str(tmp_path / "rsnapshot")
    mtimes = {"daily.%d" % n: NOW - 20 * HOUR - n * DAY for n in range(7)}
    mtimes.update({"weekly.%d" % n: NOW - 20 * HOUR - (7 + 7 * n) * DAY for n in range(3)})
    trees.make_snapshots(rsnap, sorted(mtimes), files_per_snapshot=2, size=10, mtime=mtimes)
    before = listing(rsnap)
    argv = ["-p", rsnap, "--mode", "snapshot", "--name-format", "rsnapshot"]
    out = run_plugin("check_backup_age", argv + ["--min-snapshots", "10",
                                                 "--oldest-snapshot", "3w"])
    assert out.exitcode == 0, out.output
    assert "daily.0 is 20h old (mtime); 2 files, 20 B; 10 snapshots, the oldest 3w old" \
        in out.status_line
    assert "snapshots=10;;10:;0" in out.status_line
    assert "oldest_age=%d" % ((21 * DAY + 20 * HOUR) // 10) in out.status_line  # +- 1 s
    out = run_plugin("check_backup_age", argv + ["--min-snapshots", "11",
                                                 "--oldest-snapshot", "4w"])
    assert out.exitcode == 2 and out.stderr == ""
    assert out.status_line.startswith(
        "BACKUP_AGE CRITICAL - only 10 snapshots under %s, at least 11 wanted; oldest snapshot "
        "%s/weekly.2 is only 3w old (mtime), at least 4w wanted |" % (rsnap, rsnap))
    assert listing(rsnap) == before

    dated = str(tmp_path / "dated")
    now = datetime.datetime.now(datetime.timezone.utc)
    start = now.replace(hour=3, minute=0, second=0, microsecond=0)
    if start > now:  # before 03:00 UTC: the last 03:00 was yesterday's
        start -= datetime.timedelta(days=1)
    names = [(start - datetime.timedelta(days=n)).strftime("host1-%Y-%m-%d_%H%M")
             for n in range(1, 4)]
    trees.make_snapshots(dated, names, files_per_snapshot=1, size=10)  # mtimes: now
    out = run_plugin("check_backup_age", ["-p", dated, "--mode", "snapshot", "--utc",
                                          "--oldest-snapshot", "1w"])
    assert out.exitcode == 2
    assert "oldest snapshot %s/%s is only 3d" % (dated, names[-1]) in out.status_line
    assert "(name), at least 1w wanted" in out.status_line


def test_help_and_usage_errors_as_a_process():
    out = run_plugin("check_backup_age", ["--help"])
    assert out.exitcode == 3 and "--name-format" in out.output and "behind the scenes" \
        in out.output
    out = run_plugin("check_backup_age", ["-p", "relative/dir"])
    assert out.exitcode == 3 and out.output.count("\n") == 1 and out.stderr == ""


def test_a_real_rsync_at_work_makes_an_old_mirror_a_backup_in_progress(tmp_path):
    need("rsync")
    mirror = str(tmp_path / "mirror")
    trees.make_tree(mirror, {"old.dat": (100, NOW - 30 * HOUR)})
    trees.make_tree(str(tmp_path / "src"), {"big.dat": (400000, NOW)})
    argv = ["-p", mirror, "-w", "20h", "-c", "26h"]
    assert run_plugin("check_backup_age", argv).exitcode == 2
    os.mkdir(tmp_path / "partial")  # the file being copied is not yet in the mirror
    rsync = subprocess.Popen(["rsync", "-a", "--bwlimit=1", "--temp-dir",
                              str(tmp_path / "partial"), str(tmp_path / "src") + "/",
                              mirror + "/"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):  # until the child has become rsync (its argv names the mirror)
            with open("/proc/%d/cmdline" % rsync.pid, "rb") as handle:
                if handle.read().startswith(b"rsync\0"):
                    break
            time.sleep(0.05)
        out = run_plugin("check_backup_age", argv)
        assert out.exitcode == 1, out.output
        assert "limit 26h; backup running since " in out.status_line
        assert "(pid %d on this host)" % rsync.pid in out.status_line
    finally:
        rsync.kill()
        rsync.wait()
