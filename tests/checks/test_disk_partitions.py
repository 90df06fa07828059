"""check_disk_partitions judged on constructed mount tables and usage (no I/O)."""
import nagiosplugin
import pytest

from osop_checks.checks import disk_partitions as dp
from osop_checks.sources.disks import Mount, Partition
from lab.peers import run_inprocess

GiB = 2 ** 30

MOUNTS = [
    Mount("/", "/dev/sda1", "ext4"),
    Mount("/proc", "proc", "proc"),
    Mount("/run", "tmpfs", "tmpfs"),
    Mount("/data2", "/dev/sdb1", "xfs"),
    Mount("/boot/efi", "/dev/sda2", "vfat"),
    Mount("/srv/bind", "/dev/sda1", "ext4"),  # a bind mount of / : counted once
]


def usage_table(free):
    """A usage() stand-in: ``free`` maps mount point -> (size, free) in bytes."""
    def usage(mounts):
        parts = []
        for m in mounts:
            size, avail = free.get(m.mountpoint, (100 * GiB, 50 * GiB))
            parts.append(Partition(m.mountpoint, m.device, m.fstype, size=size,
                                   used=size - avail, free=avail,
                                   inodes_total=1000, inodes_free=900))
        return parts
    return usage


class Module:
    """disk_partitions with its sources replaced by the given tables."""
    NAME = dp.NAME
    build_parser = staticmethod(dp.build_parser)

    def __init__(self, free=None, mounts=MOUNTS, fstab=(), unreadable=()):
        self.free, self.mounts, self.fstab = free or {}, mounts, set(fstab)

    def build_check(self, args):
        return dp.build_check(args, list_mounts=lambda: self.mounts,
                              usage=usage_table(self.free), fstab=lambda: self.fstab,
                              exists=lambda path: path.startswith("/"))


def run(argv, **kw):
    return run_inprocess(Module(**kw), argv)


def test_default_selects_physical_filesystems_once():
    args = dp.build_parser().parse_args([])
    chosen, missing = dp.select(MOUNTS, args)
    assert [m.mountpoint for m in chosen] == ["/", "/data2", "/boot/efi"] and missing == []


def test_selection_options():
    parse = dp.build_parser().parse_args
    pick = lambda argv: [m.mountpoint for m in dp.select(MOUNTS, parse(argv))[0]]  # noqa: E731
    assert pick(["--exclude-type", "vfat"]) == ["/", "/data2"]
    assert pick(["--include-type", "tmpfs"]) == ["/run"]
    assert pick(["--match", "^/data"]) == ["/data2"]
    assert pick(["--ignore", "^/boot"]) == ["/", "/data2"]


@pytest.mark.parametrize("argv, words", [
    (["--match", "^/dtaa"], "no filesystem matches --match '^/dtaa'"),
    (["--ignore", ".*"], "every filesystem is excluded by --ignore '.*'"),
    (["--exclude-type", "ext4", "--exclude-type", "xfs", "--exclude-type", "vfat"],
     "every filesystem is excluded by --exclude-type ext4 --exclude-type xfs "
     "--exclude-type vfat"),
    (["--include-type", "zfs"], "no filesystem of --include-type zfs is mounted"),
    (["--match", "^/data", "--ignore", "2$"], "every filesystem is excluded by --ignore '2$'"),
    (["-p", "/data2", "--ignore", "^/data"], "every filesystem is excluded by --ignore '^/data'"),
])
def test_a_selection_that_leaves_nothing_is_unknown_naming_the_filter(argv, words):
    outcome = run(argv)
    assert outcome.exitcode == 3, outcome.output
    assert outcome.output == "DISK_PARTITIONS UNKNOWN - %s\n" % words


def test_a_missing_path_stays_critical_whatever_the_filters():
    mounts = [m for m in MOUNTS if m.mountpoint != "/data2"]
    outcome = run(["-p", "/data2", "--ignore", "^/"], mounts=mounts, fstab={"/data2"})
    assert outcome.exitcode == 2 and "/data2 is not mounted" in outcome.status_line, \
        outcome.output


def test_path_under_a_mount_selects_that_mount(tmp_path):
    args = dp.build_parser().parse_args(["-p", "/data2/backups/daily.0", "-p", "/run"])
    chosen, missing = dp.select(MOUNTS, args, exists=lambda p: True)
    assert [m.mountpoint for m in chosen] == ["/data2", "/run"] and missing == []


def test_an_unmounted_fstab_mount_point_is_critical():
    # /data2 unmounted: its empty directory lies on /, but fstab says it should be mounted.
    mounts = [m for m in MOUNTS if m.mountpoint != "/data2"]
    outcome = run(["-p", "/data2"], mounts=mounts, fstab={"/data2"})
    assert outcome.exitcode == 2
    assert outcome.status_line.startswith("DISK_PARTITIONS CRITICAL - /data2 is not mounted")
    relaxed = run(["-p", "/data2", "--ignore-missing"], mounts=mounts, fstab={"/data2"})
    assert relaxed.exitcode == 0


class Unlisted(Module):
    """A mount table that lists no entry holding the path (a chroot), real statvfs."""

    def build_check(self, args):
        import os

        from osop_checks.sources import disks

        return dp.build_check(args, list_mounts=lambda: [Mount("/proc", "proc", "proc")],
                              usage=disks.usage, fstab=lambda: set(), exists=os.path.exists)


def test_a_path_no_mount_entry_holds_is_measured_on_the_path_itself(tmp_path):
    outcome = run_inprocess(Unlisted(), ["-p", str(tmp_path), "-w", "0%", "-c", "0%"])
    assert outcome.exitcode == 0, outcome.output
    assert outcome.status_line.startswith(
        "DISK_PARTITIONS OK - 1 partition ok, least free: %s " % tmp_path)
    assert "'%s'=" % tmp_path in outcome.status_line
    assert "no entry of the mount table holds it (as in a chroot), measured with statvfs " \
           "on the path itself" in outcome.output
    judged = run_inprocess(Unlisted(), ["-p", str(tmp_path), "-w", "100%", "-c", "100%"])
    assert judged.exitcode == 2, judged.output  # thresholds apply as on any mount
    gone = run_inprocess(Unlisted(), ["-p", str(tmp_path / "nonexistent")])
    assert gone.exitcode == 2 and "does not exist" in gone.status_line


def test_percent_thresholds_and_the_worst_mount_first():
    free = {"/": (100 * GiB, 30 * GiB), "/data2": (750 * GiB, 92.1 * GiB),
            "/boot/efi": (GiB, 0.05 * GiB)}
    outcome = run(["-w", "20%", "-c", "10%"], free=free)
    assert outcome.exitcode == 2
    assert outcome.status_line.startswith(
        "DISK_PARTITIONS CRITICAL - /boot/efi 5.0% free (51.2 MiB of 1.0 GiB), "
        "/data2 12.3% free (92.1 GiB of 750.0 GiB) |")
    # every mount in the long output
    assert len([line for line in outcome.output.splitlines()[1:] if " free (" in line]) == 3


def test_percent_and_size_together_alert_only_when_both_are_breached():
    free = {"/data2": (10000 * GiB, 1500 * GiB)}  # 15% free but 1.5 TiB: no page
    ok = run(["-p", "/data2", "-w", "20%,50GiB", "-c", "10%,10GiB"], free=free)
    assert ok.exitcode == 0, ok.output
    low = {"/data2": (200 * GiB, 30 * GiB)}  # 15% and 30 GiB: both warning limits breached
    assert run(["-p", "/data2", "-w", "20%,50GiB", "-c", "10%,10GiB"], free=low).exitcode == 1


def test_perfdata_is_used_bytes_with_thresholds_in_the_same_terms():
    free = {"/": (100 * GiB, 30 * GiB)}
    outcome = run(["-p", "/", "-w", "20%", "-c", "10GiB"], free=free)
    perf = outcome.status_line.split(" | ")[1]
    used, usable = 70 * GiB, 100 * GiB
    assert "'/'=%dB;%d;%d;0;%d" % (used, usable * 0.8, usable - 10 * GiB, 100 * GiB) in perf
    assert "'/ inodes'=100;900;950;0;1000" in perf


def test_inode_thresholds():
    outcome = run(["-p", "/", "-W", "95%", "-K", "50%"])
    assert outcome.exitcode == 1 and "90.0% inodes free" in outcome.status_line


def test_path_threshold_overrides_one_mount():
    free = {"/": (100 * GiB, 15 * GiB), "/data2": (100 * GiB, 15 * GiB)}
    outcome = run(["-w", "20%", "-c", "10%", "--path-threshold", "/data2=10%/5%",
                   "-p", "/", "-p", "/data2"], free=free)
    assert outcome.exitcode == 1
    summary = outcome.status_line.split(" | ")[0]
    assert "/ 15.0% free" in summary and "/data2" not in summary


@pytest.mark.parametrize("argv,needle", [
    (["-w", "foo"], "argument -w/--warning"),
    (["-w", "10:5"], "must not be greater"),
    (["--bogus"], "unrecognized arguments"),
    (["--path-threshold", "/data2"], "MOUNT=WARN/CRIT"),
    (["--match", "("], "not a valid regular expression"),
    (["-W", "lots"], "argument -W/--inode-warning"),
])
def test_bad_input_is_one_unknown_line(argv, needle):
    outcome = run(argv)
    assert outcome.exitcode == 3 and outcome.output.count("\n") == 1
    assert outcome.status_line.startswith("DISK_PARTITIONS UNKNOWN - ") and needle in \
        outcome.output


def test_nothing_selected_is_unknown():
    outcome = run(["--match", "^/nothing-here"])
    assert outcome.exitcode == 3 and "no filesystem matches" in outcome.status_line


# -- judge: plain data in, a Verdict out -------------------------------------------------

def limits(argv=()):
    return dp.Limits.from_args(dp.build_parser().parse_args(list(argv)))


def partition(mount, size, free, inodes_free=900, **kw):
    return Partition(mount, "/dev/x", "ext4", size=size, used=size - free, free=free,
                     inodes_total=1000, inodes_free=inodes_free, **kw)


def test_judge_all_ok_names_the_least_free_and_the_ignored_missing_path():
    parts = [partition("/", 100 * GiB, 60 * GiB), partition("/data2", 100 * GiB, 30 * GiB)]
    verdict = dp.judge(parts, [("/backup", "does not exist")],
                       limits(["--ignore-missing"]))
    assert verdict.state == nagiosplugin.Ok
    assert verdict.summary == "2 partitions ok, least free: /data2 30.0% free (30.0 GiB of " \
                              "100.0 GiB); /backup does not exist (ignored)"
    assert verdict.long == [
        "OK: / 60.0% free (60.0 GiB of 100.0 GiB), ext4 on /dev/x, used 40.0 GiB, "
        "inodes 90.0% free",
        "OK: /data2 30.0% free (30.0 GiB of 100.0 GiB), ext4 on /dev/x, used 70.0 GiB, "
        "inodes 90.0% free"]
    assert sorted(str(p) for p in verdict.perfdata) == [
        "'/ inodes'=100;900;950;0;1000", "'/'=42949672960B;96636764160;102005473280;0;"
        "107374182400", "'/data2 inodes'=100;900;950;0;1000",
        "'/data2'=75161927680B;96636764160;102005473280;0;107374182400"]


def test_judge_problems_worst_first_and_the_long_output_by_exit_code():
    parts = [partition("/", 100 * GiB, 15 * GiB, inodes_free=20),
             partition("/data2", 100 * GiB, 3 * GiB),
             Partition("/mnt/nfs", "srv:/x", "nfs", error="statvfs timed out")]
    verdict = dp.judge(parts, [("/backup", "does not exist")], limits())
    assert verdict.state == nagiosplugin.Unknown  # the most significant exit code
    assert verdict.summary == (
        "/ 2.0% inodes free (20 of 1000), /data2 3.0% free (3.0 GiB of 100.0 GiB), "
        "/backup does not exist, /mnt/nfs: statvfs timed out")
    assert [line.split(" ")[:2] for line in verdict.long] == [
        ["UNKNOWN:", "/mnt/nfs:"], ["CRITICAL:", "/"], ["CRITICAL:", "/data2"],
        ["CRITICAL:", "/backup"], ["OK:", "/"]]
    assert (nagiosplugin.Ok, "/ 15.0% free (15.0 GiB of 100.0 GiB)") in verdict.findings
    assert not any("/mnt/nfs" in p.label for p in verdict.perfdata)  # nothing measured


def test_judge_path_threshold_and_both_limits_of_a_mount():
    parts = [partition("/", 100 * GiB, 15 * GiB), partition("/data2", 100 * GiB, 15 * GiB)]
    verdict = dp.judge(parts, [], limits(["-w", "20%,50GiB", "-c", "10%,10GiB",
                                          "--path-threshold", "/data2=10%/5%"]))
    assert verdict.findings[0] == (nagiosplugin.Warn, "/ 15.0% free (15.0 GiB of 100.0 GiB)")
    assert verdict.findings[2] == (nagiosplugin.Ok,
                                   "/data2 15.0% free (15.0 GiB of 100.0 GiB)")
    assert verdict.summary == "/ 15.0% free (15.0 GiB of 100.0 GiB)"


# -- the mount table, read without psutil (issue 29) --------------------------------------------

def test_the_mount_table_is_read_as_getmntent_reads_it(tmp_path):
    """Octal escapes in device and mount point decoded (a space, a backslash), 'none' as ''
    (as psutil gave it), every entry in the table's order, virtual ones included."""
    from osop_checks.sources import disks

    table = tmp_path / "mounts"
    table.write_text("/dev/sda1 / ext4 rw,relatime 0 0\n"
                     "none /mnt/with\\040space tmpfs rw 0 0\n"
                     "//nas/back\\134up /mnt/nas cifs rw 0 0\n"
                     "proc /proc proc rw 0 0\n")
    assert disks.list_mounts(str(table)) == [
        Mount("/", "/dev/sda1", "ext4"), Mount("/mnt/with space", "", "tmpfs"),
        Mount("/mnt/nas", "//nas/back\\up", "cifs"), Mount("/proc", "proc", "proc")]


def test_the_mount_table_is_psutils_on_this_host():
    """What psutil.disk_partitions(all=True) lists, read directly: the same entries, but for
    the root device the kernel calls /dev/root (psutil looks the real one up; df does not)."""
    import psutil

    from osop_checks.sources import disks

    ours = disks.list_mounts()
    theirs = [Mount(p.mountpoint, p.device, p.fstype) for p in psutil.disk_partitions(all=True)]
    assert len(ours) == len(theirs)
    for mine, its in zip(ours, theirs):
        if mine.device == "/dev/root":
            mine = Mount(mine.mountpoint, its.device, mine.fstype)
        assert mine == its
