"""check_disk_partitions against real filesystems: this machine's mounts compared with df, and
a real 16 MiB tmpfs, in a private mount namespace, filled across the thresholds."""
import os
import re
import subprocess
import sys

import pytest

from lab.peers import BIN, FAKETIME_PRELOAD, need, need_root, run_plugin
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


def test_local_mode_needs_no_psutil():
    """The mount table is read from /proc/self/mounts (psutil 5.9 touches every mount point,
    a hung one too): a host without python3-psutil still gets its answer."""
    code = ("import sys; sys.modules['psutil'] = None; "
            "from osop_checks.checks.disk_partitions import main; main(['-p', '/'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode in (0, 1, 2) and proc.stderr == "", proc.stdout + proc.stderr
    assert proc.stdout.startswith("DISK_PARTITIONS ") and " '/'=" in proc.stdout


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


# -- read-only and full in, on real ext4 filesystems in loop devices -----------------------

LOOP_DATA2 = r'''
    d="$1"; check="$2"
    truncate -s 64M "$d/data2.img" "$d/archive.img"
    mkfs.ext4 -q -F "$d/data2.img"; mkfs.ext4 -q -F "$d/archive.img"
    mkdir -p "$d/data2" "$d/archive"
    mount -o loop "$d/data2.img" "$d/data2"
    mount -o loop,ro "$d/archive.img" "$d/archive"
    printf '%s\n' "# the practice's data disk and a read-only archive" \
        "$d/data2.img $d/data2 ext4 defaults 0 2" \
        "$d/archive.img $d/archive ext4 ro,nofail 0 2" > "$d/fstab"
    mount --bind "$d/fstab" /etc/fstab
'''


@pytest.mark.peer
def test_a_remounted_read_only_data2_is_critical(tmp_path):
    """Was OK: the kernel's remount,ro after an error went unseen; an fstab 'ro' mount stays
    OK."""
    need("mkfs.ext4")
    script = LOOP_DATA2 + r'''
        run() { "$check" -p "$d/data2" -p "$d/archive" "$@" || echo "exit=$?"; }
        run; mount -o remount,ro "$d/data2"; run; run --readonly-state warning
    '''
    result = in_namespace(script, tmp_path, CHECK)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith(("DISK", "exit"))]
    assert lines[0].startswith("DISK_PARTITIONS OK - 2 partitions ok"), lines
    assert lines[1].startswith("DISK_PARTITIONS CRITICAL - %s/data2 went read-only (mounted "
                               "ro, /etc/fstab says rw) |" % tmp_path), lines
    assert lines[2] == "exit=2" and "archive" not in lines[1].split(" | ")[0]
    assert lines[3].startswith("DISK_PARTITIONS WARNING - %s/data2 went read-only" % tmp_path)


@pytest.mark.peer
def test_full_in_from_three_runs_of_a_filling_data2_and_none_on_a_shrinking_one(tmp_path):
    """Three runs a day apart (libfaketime, no sleeping) while each night's backup adds 8 MiB
    to /data2: 'full in' from the third run; the same filesystem shrinking has none."""
    need("mkfs.ext4", "faketime")
    script = LOOP_DATA2 + r'''
        preload="$3"  # libfaketime at "$1", the clock running on from there (faked_clock)
        run() { env "$preload" FAKETIME="$(printf %+d $(($(date -d "$1" +%s) - $(date +%s))))" \
                    "$check" -p "$d/data2" --state-file "$d/$2.json" --full-in-warning 7d -v \
                    || echo "exit=$?"; }
        for day in 01 02 03; do
            dd if=/dev/zero of="$d/data2/backup-$day" bs=1M count=8 status=none; sync
            run "2026-12-$day 03:00:00" filling
        done
        echo "-- shrinking"
        for day in 04 05 06; do
            rm "$d/data2/$(ls "$d/data2" | grep backup | head -1)"; sync
            run "2026-12-$day 03:00:00" shrinking
        done
    '''
    result = in_namespace(script, tmp_path, CHECK, FAKETIME_PRELOAD)
    assert result.returncode == 0, result.stdout + result.stderr
    status = [line for line in result.stdout.splitlines() if line.startswith("DISK")]
    assert [s.split(" - ")[0] for s in status] == ["DISK_PARTITIONS OK"] * 2 + [
        "DISK_PARTITIONS WARNING"] + ["DISK_PARTITIONS OK"] * 3, status
    assert re.search(r"/data2 full in \d+d( \d+h)? \(\+8\.0 MiB a day over 3 runs in 2d\)",
                     status[2]), status[2]
    assert "'%s/data2 full in'=" % tmp_path in status[2]
    assert "full in: not known yet (2 of 3 runs)" in result.stdout
    shrinking = result.stdout.split("-- shrinking")[1]
    assert "full in" not in "".join(status[3:]).replace("full in: not known", "")
    assert "not filling up (-8.0 MiB a day over 3 runs in 2d)" in shrinking


@pytest.mark.peer
def test_an_excluded_hung_network_mount_is_never_touched(practice, tmp_path):
    """A network filesystem exported by a host in a network namespace, mounted on the
    server, whose host then drops off the network (link down, packets vanish): a check that
    leaves it out by --ignore or --exclude-type answers at once, without touching it (was:
    psutil 5.9, Debian 12's, called pathconf() on every mount point, so the check hung until
    its timeout); one that selects it answers UNKNOWN for it within its timeout, and ends.

    The kernel here has no NFS (neither client nor server), so the export is an sshfs
    (FUSE) mount of the host's real sshd: the same hang of statvfs/pathconf, from the same
    cause."""
    need("sshfs", "fusermount")
    office = practice["office"]
    export = tmp_path / "export"
    export.mkdir()
    (export / "x-ray-0001.dcm").write_bytes(b"\0" * 4096)
    script = r'''
        d="$1"; check="$2"; key="$3"; known="$4"; host_ns="$5"; host="$6"
        mkdir -p "$d/nfs"
        sshfs -o IdentityFile="$key",UserKnownHostsFile="$known",BatchMode=yes \
            -o StrictHostKeyChecking=yes "root@$host:$d/export" "$d/nfs" \
            </dev/null >"$d/sshfs.log" 2>&1  # sshfs stays: it must not hold our pipes
        ls "$d/nfs"
        "$check" -w 0% -c 0% --match "^$d/nfs" || echo "exit=$?"
        # the host is gone: its link down and its neighbour entry kept, so packets vanish
        ip -n "$host_ns" link set dev eth0 down
        mac=$(ip -n "$host_ns" -br link show dev eth0 | awk '{print $3}')
        ip neigh replace "$host" lladdr "$mac" dev "$7" nud permanent
        for excluded in "--ignore ^$d/nfs" "--exclude-type fuse.sshfs"; do
            start=$(date +%s%N)
            timeout 60 "$check" -t 20 -w 0% -c 0% $excluded || echo "exit=$?"
            echo "took=$(( ($(date +%s%N) - start) / 1000000 ))"
        done
        start=$(date +%s%N)
        timeout -s KILL 60 "$check" -t 4 -w 0% -c 0% --match "^$d/nfs" || echo "exit=$?"
        echo "took=$(( ($(date +%s%N) - start) / 1000000 ))"
        fusermount -u -z "$d/nfs"
    '''
    result = subprocess.run(practice.on_server(
        ["sh", "-ec", script, "sh", tmp_path, CHECK, practice.client_key, practice.known_hosts,
         office.ns, office.ipv4, office.server_dev]),
        capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "x-ray-0001.dcm", lines
    assert lines[1].startswith("DISK_PARTITIONS OK - 1 partition ok, least free: %s/nfs "
                               % tmp_path), lines
    took = [int(line.split("=")[1]) for line in lines if line.startswith("took=")]
    status = [line for line in lines if line.startswith("DISK_PARTITIONS")]
    for excluded in status[1:3]:
        assert excluded.startswith("DISK_PARTITIONS OK - "), lines
        assert "/nfs" not in excluded, lines
    assert max(took[:2]) < 5000, took  # well under the --timeout of 20 s
    # selected, it is UNKNOWN within the --timeout of 4 s, and the check exits (was, with a
    # thread: the answer printed, but the process stuck in the FUSE request could not end)
    assert status[3] == ("DISK_PARTITIONS UNKNOWN - %s/nfs: statvfs did not answer in time "
                         "(hung mount?)" % tmp_path), lines
    after = lines[lines.index(status[3]):]
    assert after[2] == "exit=3" and after[3].startswith("took=") and took[2] < 8000, lines


@pytest.mark.peer
def test_btrfs_free_space_equals_btrfs_filesystem_usage(tmp_path):
    """A real btrfs (mkfs.btrfs defaults: data single, metadata DUP) in a loop device with
    100 MiB written: the check's free space is what 'btrfs filesystem usage' estimates for
    the data profile (was: statvfs's, df's, which differs from it)."""
    need("mkfs.btrfs", "btrfs")
    script = r'''
        d="$1"; check="$2"
        truncate -s 512M "$d/b.img"; mkfs.btrfs -q -f "$d/b.img" >/dev/null 2>&1
        mkdir "$d/b"; mount -o loop "$d/b.img" "$d/b"
        dd if=/dev/urandom of="$d/b/x" bs=1M count=100 status=none; sync
        "$check" -p "$d/b" -w 0B -c 0B || echo "exit=$?"
        btrfs filesystem usage -b "$d/b" | grep 'Free (estimated)'
        echo "df=$(df -B1 --output=avail "$d/b" | tail -1)"
        PATH=/nonexistent "$check" -p "$d/b" -w 0B -c 0B -v || echo "exit=$?"
    '''
    result = in_namespace(script, tmp_path, CHECK)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    estimated = int(re.search(r"Free \(estimated\):\s+(\d+)", result.stdout).group(1))
    df_free = int(re.search(r"^df=\s*(\d+)", result.stdout, re.M).group(1))
    assert estimated != df_free  # the two figures differ, or the test would show nothing

    def free_of(status):
        # -w 0B: the warning limit in used bytes is the usable space, used + free
        used, usable = re.search(r"'%s/b'=(\d+)B;(\d+);" % tmp_path, status).groups()
        return int(usable) - int(used)

    assert free_of(lines[0]) == estimated, lines
    assert ", free as btrfs filesystem usage gives it" in lines[1], lines
    without_tool = [line for line in lines if line.startswith("DISK_PARTITIONS")][1]
    assert free_of(without_tool) == df_free
    assert "btrfs free space from statvfs (df's figure): command not found: btrfs" in \
        result.stdout, lines
