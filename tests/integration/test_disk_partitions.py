"""check_disk_partitions against real filesystems: this machine's mounts compared with df, and
a real 16 MiB tmpfs, in a private mount namespace, filled across the thresholds."""
import os
import re
import subprocess
import sys

import pytest

from lab.peers import BIN, need, need_root, run_plugin
from lab.peers.foreign_user import shared_tempdir

CHECK = os.path.join(BIN, "check_disk_partitions")


def perfdata(output):
    first = output.splitlines()[0]
    return dict(re.findall(r"'([^']+)'=(\d+)B", first.split(" | ", 1)[1]))


def df_avail(mountpoint):
    out = subprocess.run(["df", "-B1", "--output=avail,used", mountpoint], capture_output=True,
                         text=True, check=True).stdout.split()
    return int(out[2]), int(out[3])


def test_every_reported_mount_agrees_with_df():
    # A busy filesystem changes while we look: df is read just before and just after the
    # check; when both agree the check must equal them exactly, otherwise it must lie between.
    problems = None
    for _ in range(10):
        mounts = perfdata(run_plugin("check_disk_partitions", ["-w", "1%", "-c", "0%"]).output)
        mounts = [m for m in mounts if not m.endswith(" inodes")]
        assert mounts
        before = {m: df_avail(m)[1] for m in mounts}
        outcome = run_plugin("check_disk_partitions", ["-w", "1%", "-c", "0%"])
        after = {m: df_avail(m)[1] for m in mounts}
        assert outcome.exitcode in (0, 1, 2), outcome.output
        used = perfdata(outcome.output)
        problems = [(m, before[m], used[m], after[m]) for m in mounts
                    if not min(before[m], after[m]) <= int(used[m]) <= max(before[m], after[m])]
        if not problems and all(before[m] == after[m] for m in mounts):
            return  # a quiet moment: exact agreement shown
    assert not problems, "df and the check disagree: %r" % problems


def in_namespace(script, *args):
    """Run ``script`` (sh) in a private mount namespace: its mounts vanish with it."""
    need("unshare")
    need_root()
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "sh", "-ec",
                           script, "sh"] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=120)


def test_a_real_tmpfs_filled_across_warning_then_critical(tmp_path):
    mnt = tmp_path / "fill"
    mnt.mkdir()
    script = r'''
        mount -t tmpfs -o size=16m osop-fill "$1"
        run() { "$2" -p "$1" -w 30% -c 10% || true; df -B1 --output=avail "$1" | tail -1; }
        run "$1" "$2"
        dd if=/dev/zero of="$1/a" bs=1M count=12 status=none; run "$1" "$2"
        dd if=/dev/zero of="$1/b" bs=1M count=3 status=none; run "$1" "$2"
    '''
    result = in_namespace(script, mnt, CHECK)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    statuses = [line for line in lines if line.startswith("DISK_PARTITIONS")]
    avails = [int(line) for line in lines if line.strip().isdigit()]
    assert [s.split(" - ")[0] for s in statuses] == [
        "DISK_PARTITIONS OK", "DISK_PARTITIONS WARNING", "DISK_PARTITIONS CRITICAL"]
    assert "%s 25.0%% free (4.0 MiB of 16.0 MiB)" % mnt in statuses[1]
    assert "%s 6.2%% free (1.0 MiB of 16.0 MiB)" % mnt in statuses[2]
    # exact agreement with df -B1's Avail: used = 16 MiB - avail
    for status, avail in zip(statuses, avails):
        assert "'%s'=%dB;" % (mnt, 16 * 2 ** 20 - avail) in status
    # the filesystem stays untouched by the check: only the test's files are there
    assert not os.listdir(mnt)  # (and the mount is gone with the namespace)


def test_in_a_chroot_the_root_no_mount_entry_holds_is_measured(tmp_path):
    """A real chroot with /proc mounted inside: the chroot's root is a directory on a 16 MiB
    tmpfs mounted outside it, so /proc/self/mounts in there has no entry holding '/'. The
    check measures '/' itself (statvfs) and says so, instead of '/ does not exist'."""
    from lab.peers import ROOT

    script = r'''
        fs="$1"; root="$1/root"; repo="$2"; check="$3"
        mount -t tmpfs -o size=16m osop-answers-chroot "$fs"
        mkdir -p "$root/usr" "$root/proc" "$root$repo"
        for d in bin sbin lib lib64; do
            if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$root/$d"
            elif [ -d "/$d" ]; then mkdir "$root/$d"; mount --bind "/$d" "$root/$d"; fi
        done
        mount --bind /usr "$root/usr"
        mount --bind "$repo" "$root$repo"
        mount -t proc proc "$root/proc"
        echo "mounts: $(chroot "$root" cut -d " " -f 2 /proc/self/mounts | tr "\n" " ")"
        chroot "$root" "$check" -p / -w 10% -c 5% -v || echo "exit=$?"
        dd if=/dev/zero of="$root/fill" bs=1M count=12 status=none
        chroot "$root" "$check" -p / -w 30% -c 10% || echo "exit=$?"
    '''
    fs = tmp_path / "fs"
    fs.mkdir()
    result = in_namespace(script, fs, os.path.realpath(ROOT), CHECK)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("mounts: ") and " / " not in lines[0] + " ", lines[0]
    assert lines[1].startswith("DISK_PARTITIONS OK - 1 partition ok, least free: / "), lines
    assert "of 16.0 MiB)" in lines[1] and ";0;16777216" in lines[1]
    assert lines[2].startswith("OK: / ") and "no entry of the mount table holds it (as in a " \
        "chroot), measured with statvfs on the path itself" in lines[2]
    assert lines[3].startswith("DISK_PARTITIONS WARNING - / 25.0% free (4.0 MiB of 16.0 MiB)")
    assert "no entry of the mount table holds it" in lines[4] and lines[5] == "exit=1", lines


def test_an_unreadable_mount_is_one_unknown_line(foreign_install):
    script = r'''
        mkdir -m 700 "$1"; mkdir "$1/m"
        mount -t tmpfs -o size=1m osop-locked "$1/m"
        runuser -u nagios -- "$2" --include-type tmpfs --match "$1" || echo "exit=$?"
    '''
    with shared_tempdir("osop-disk-locked-") as base:
        locked = os.path.join(base, "locked")
        result = in_namespace(script, locked, foreign_install.path("check_disk_partitions"))
    lines = result.stdout.splitlines()
    assert lines[0] == "DISK_PARTITIONS UNKNOWN - %s/m: cannot read usage: Permission denied" \
        % locked
    assert lines[-1] == "exit=3" and "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("argv,code,needle", [
    (["-w", "foo"], 3, "argument -w/--warning"),
    (["-w", "10:5"], 3, "must not be greater"),
    (["--bogus"], 3, "unrecognized arguments: --bogus"),
    (["-p", "/nonexistent"], 2, "/nonexistent does not exist"),
    (["-p", "/nonexistent", "--ignore-missing"], 0, "/nonexistent does not exist"),
])
def test_bad_input_as_a_whole_process(argv, code, needle):
    outcome = run_plugin("check_disk_partitions", argv)
    assert outcome.exitcode == code and needle in outcome.output
    assert outcome.stderr == "" and "Traceback" not in outcome.output


def test_the_local_mode_needs_no_psutil():
    """The mount table is read from /proc/self/mounts: a local run neither imports psutil
    (its start-up, issue 29) nor fails without it."""
    code = ("import sys; sys.modules['psutil'] = None; "
            "from osop_checks.checks.disk_partitions import main; main(['-p', '/'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith("DISK_PARTITIONS OK - ")


def test_the_plugindir_shim_runs_the_installed_package(tmp_path):
    import shutil

    from lab.peers import ROOT

    shim = tmp_path / "check_disk_partitions"
    shutil.copy(os.path.join(ROOT, "plugins", "check_disk_partitions"), shim)
    ran = subprocess.run([sys.executable, str(shim), "-p", "/"], capture_output=True, text=True)
    # this machine's /: its free space decides the state; a real answer names it in perfdata
    assert ran.returncode in (0, 1, 2) and ran.stdout.startswith("DISK_PARTITIONS ") and \
        " '/'=" in ran.stdout.splitlines()[0], ran.stdout + ran.stderr
    # an interpreter without the package: one UNKNOWN line, not a traceback
    bare = subprocess.run([sys.executable, "-I", "-S", str(shim)], capture_output=True,
                          text=True)
    assert bare.returncode == 3 and bare.stdout.startswith(
        "DISK_PARTITIONS UNKNOWN - osop_checks is not installed for ")
