"""check_backup_age as Icinga runs it: the installed script as a whole process, on real trees
made by the tests (real rsync -a copies), as root and as an unprivileged user."""
import os
import shutil
import tempfile
import time

import pytest

from tests.peers import need, need_root, run_plugin, trees

NOW = time.time()
HOUR, DAY = 3600, 86400


@pytest.fixture(autouse=True)
def _now():
    """NOW is taken when each test starts: texts such as "is 2h old" must not drift while
    the rest of the suite runs."""
    global NOW
    NOW = time.time()


@pytest.fixture
def shared_tmp():
    """A directory that other users may enter (pytest's tmp_path is root's alone)."""
    path = tempfile.mkdtemp(prefix="osop-backup-age-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


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
    assert "(mtime), limit 2d 2h" in stale.status_line
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


def test_unreadable_directories_as_an_unprivileged_user(shared_tmp):
    need_root()  # to make files nobody may read, and to run the check as nobody
    backup = os.path.join(shared_tmp, "backup")
    trees.make_tree(backup, {"open/a": (10, NOW - HOUR), "secret/b": (10, NOW)})
    os.chmod(os.path.join(backup, "secret"), 0o700)
    out = run_plugin("check_backup_age", ["-p", backup], user="nobody")
    assert out.exitcode == 3
    assert out.output == ("BACKUP_AGE UNKNOWN - cannot read 1 directory under %s (first: "
                          "%s/secret: Permission denied); the newest backup may be in there "
                          "(--skip-unreadable goes on without them)\n" % (backup, backup))
    out = run_plugin("check_backup_age", ["-p", backup, "--skip-unreadable"], user="nobody")
    assert out.exitcode == 0 and "%s/open/a is 1h old" % backup in out.status_line
    assert "skipped: cannot read 1 directory" in out.output
    os.chmod(os.path.join(backup, "secret"), 0o744)  # listable, but its files cannot be stat'ed
    out = run_plugin("check_backup_age", ["-p", backup], user="nobody")
    assert out.exitcode == 3 and "cannot read 1 directory under %s (first: %s/secret: " \
        "Permission denied)" % (backup, backup) in out.output
    os.chmod(backup, 0o700)
    out = run_plugin("check_backup_age", ["-p", backup], user="nobody")
    assert (out.exitcode, out.output) == (
        3, "BACKUP_AGE UNKNOWN - Permission denied: %s\n" % backup)
    out = run_plugin("check_backup_age", ["-p", backup, "--mode", "snapshot"], user="nobody")
    assert out.exitcode == 3 and "Permission denied" in out.output
    out = run_plugin("check_backup_age", ["--stamp", backup + "/open/a"], user="nobody")
    assert out.exitcode == 3 and "Permission denied" in out.output


def test_help_and_usage_errors_as_a_process():
    out = run_plugin("check_backup_age", ["--help"])
    assert out.exitcode == 3 and "--name-format" in out.output and "behind the scenes" \
        in out.output
    out = run_plugin("check_backup_age", ["-p", "relative/dir"])
    assert out.exitcode == 3 and out.output.count("\n") == 1 and out.stderr == ""
