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
                                   inodes_total=1000, inodes_free=900, options=m.options))
        return parts
    return usage


class Module:
    """disk_partitions with its sources replaced by the given tables."""
    NAME = dp.NAME
    build_parser = staticmethod(dp.build_parser)

    def __init__(self, free=None, mounts=MOUNTS, fstab=(), unreadable=()):
        # fstab: mount points (mounted with defaults) or {mount point: options}
        self.free, self.mounts = free or {}, mounts
        self.fstab = fstab if isinstance(fstab, dict) else {m: ("defaults",) for m in fstab}

    def build_check(self, args):
        return dp.build_check(args, list_mounts=lambda: self.mounts,
                              usage=usage_table(self.free), fstab=lambda: self.fstab,
                              exists=lambda path: path.startswith("/"))


def run(argv, **kw):
    return run_inprocess(Module(**kw), argv)


@pytest.fixture(autouse=True)
def _private_state(monkeypatch, tmp_path):
    """The full-in history of each test in a directory of its own."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


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
])
def test_a_selection_that_leaves_nothing_is_unknown_naming_the_filter(argv, words):
    outcome = run(argv)
    assert outcome.exitcode == 3, outcome.output
    assert outcome.output == "DISK_PARTITIONS UNKNOWN - %s\n" % words


@pytest.mark.parametrize("filters", [["--ignore", "^/data"], ["--exclude-type", "xfs"],
                                     ["--match", "^/srv"], ["--ignore", ".*"]])
def test_a_named_path_is_judged_whatever_the_filters(filters):
    """Was UNKNOWN 'every filesystem is excluded': a -p PATH is named, never filtered away."""
    outcome = run(["-p", "/data2", "-p", "/"] + filters, free={"/data2": (100 * GiB, GiB)})
    assert outcome.exitcode == 2, outcome.output
    assert outcome.status_line.startswith("DISK_PARTITIONS CRITICAL - /data2 1.0% free"), \
        outcome.output
    assert "'/'=" in outcome.status_line


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
                              usage=disks.usage, fstab=dict, exists=os.path.exists)


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


# -- the mount table and fstab as the kernel and admins write them ------------------------

def test_mount_table_and_fstab_are_read_with_their_options_and_escapes():
    from osop_checks.sources import disks

    mounts = disks.parse_mounts(
        "/dev/sda1 / ext4 rw,relatime,errors=remount-ro 0 0\n"
        "/dev/loop3 /data\\0402 ext4 ro,relatime 0 0\n"
        "none /sys/fs/bpf bpf rw 0 0\n")
    assert mounts == [Mount("/", "/dev/sda1", "ext4", options=("rw", "relatime",
                                                               "errors=remount-ro")),
                      Mount("/data 2", "/dev/loop3", "ext4", options=("ro", "relatime")),
                      Mount("/sys/fs/bpf", "", "bpf", options=("rw",))]
    fstab = disks.parse_fstab(
        "# <file system> <mount point> <type> <options> <dump> <pass>\n"
        "UUID=1 / ext4 errors=remount-ro 0 1\n"
        "UUID=2 /data\\0402/ ext4 defaults,noauto 0 2\n"
        "/dev/sr0 /media/cdrom0 udf,iso9660 user,noauto,ro 0 0\n"
        "UUID=3 none swap sw 0 0\n")
    assert fstab == {"/": ("errors=remount-ro",), "/data 2": ("defaults", "noauto"),
                     "/media/cdrom0": ("user", "noauto", "ro")}
    assert disks.should_be_mounted(fstab, "/") and not disks.should_be_mounted(fstab, "/data 2")


# -- read-only --------------------------------------------------------------------------

FSTAB = {"/": ("errors=remount-ro",), "/data2": ("defaults",), "/srv/ro": ("ro",),
         "/snap/core": ("defaults",)}


def test_judge_a_filesystem_that_went_read_only_is_critical():
    parts = [partition("/", 100 * GiB, 60 * GiB, options=("rw", "relatime")),
             partition("/data2", 100 * GiB, 60 * GiB, options=("ro", "relatime")),
             partition("/srv/ro", 100 * GiB, 60 * GiB, options=("ro",)),
             partition("/mnt/usb", 100 * GiB, 60 * GiB, options=("ro",)),  # not in fstab
             Partition("/snap/core", "/dev/loop0", "squashfs", size=GiB, used=GiB,
                       options=("ro",))]
    nothing_full = ["-w", "0%", "-c", "0%"]  # squashfs is always 0% free
    verdict = dp.judge(parts, [], limits(nothing_full), FSTAB)
    assert verdict.state == nagiosplugin.Critical
    assert verdict.summary == "/data2 went read-only (mounted ro, /etc/fstab says rw)"
    assert verdict.long[0] == "CRITICAL: /data2 went read-only (mounted ro, /etc/fstab says rw)"
    relaxed = dp.judge(parts, [], limits(["--readonly-state", "warning"] + nothing_full),
                       FSTAB)
    assert relaxed.state == nagiosplugin.Warn
    # over SNMP nothing is known of fstab: nothing is judged read-only
    assert dp.judge(parts, [], limits(nothing_full), None).summary.startswith(
        "5 partitions ok")


def test_a_remounted_read_only_mount_through_the_check():
    mounts = [Mount("/", "/dev/sda1", "ext4", options=("rw",)),
              Mount("/data2", "/dev/sdb1", "ext4", options=("ro", "relatime"))]
    outcome = run([], mounts=mounts, fstab={"/": ("defaults",), "/data2": ("defaults",)})
    assert outcome.exitcode == 2, outcome.output
    assert outcome.status_line.startswith(
        "DISK_PARTITIONS CRITICAL - /data2 went read-only (mounted ro, /etc/fstab says rw) |")


# -- full in ----------------------------------------------------------------------------

DAY = 86400
T0 = 1_800_000_000.0


def runs(used_by_day, size=100 * GiB, argv=(), save=None):
    """The verdicts of one run a day with /data2 at the given used bytes, each run handed
    the history the one before saved."""
    history, verdicts = {}, []
    for day, used in enumerate(used_by_day):
        kept = {}
        part = Partition("/data2", "/dev/sdb1", "ext4", size=size, used=used, free=size - used)
        verdict = dp.judge([part], [], limits(argv), {}, history, T0 + day * DAY,
                           kept.update)
        verdict.save()
        history = kept
        verdicts.append(verdict)
    return verdicts


def test_judge_full_in_from_three_runs_of_a_filling_filesystem():
    first, second, third = runs([40 * GiB, 50 * GiB, 60 * GiB],
                                argv=["--full-in-warning", "7d", "--full-in-critical", "2d"])
    assert first.long[0].endswith("full in: not known yet (1 of 3 runs)")
    assert second.long[0].endswith("full in: not known yet (2 of 3 runs)")
    assert third.state == nagiosplugin.Warn
    assert third.summary == "/data2 full in 4d (+10.0 GiB a day over 3 runs in 2d)"
    assert third.long[0] == "WARNING: /data2 full in 4d (+10.0 GiB a day over 3 runs in 2d)"
    assert third.long[1].endswith(", full in 4d (+10.0 GiB a day over 3 runs in 2d)")
    assert "'/data2 full in'=345600s;604800:;172800:;0" in [str(p) for p in third.perfdata]
    faster = runs([40 * GiB, 60 * GiB, 80 * GiB], argv=["--full-in-critical", "2d"])[-1]
    assert faster.state == nagiosplugin.Critical and "full in 1d" in faster.summary


@pytest.mark.parametrize("used", [[60 * GiB, 50 * GiB, 40 * GiB], [50 * GiB] * 4,
                                  [50 * GiB, 50 * GiB + 4096, 50 * GiB]])
def test_judge_a_shrinking_or_flat_filesystem_is_never_full_in(used):
    last = runs(used, argv=["--full-in-warning", "10000d", "--full-in-critical", "5000d"])[-1]
    assert last.state == nagiosplugin.Ok, last.summary
    assert "full in" not in last.summary
    assert not any("full in" in p.label for p in last.perfdata)
    assert ", not filling up (" in last.long[0]


def test_judge_history_of_another_filesystem_or_outside_the_window_is_not_used():
    history = {"/data2": {"device": "/dev/sdb1", "size": 100 * GiB,
                          "used": [[T0 - 9 * DAY, 0], [T0 - 8 * DAY, GiB], [T0 - DAY, 40 * GiB]]}}
    part = Partition("/data2", "/dev/sdb1", "ext4", size=100 * GiB, used=50 * GiB,
                     free=50 * GiB)
    kept = {}
    verdict = dp.judge([part], [], limits(), {}, history, T0, kept.update)
    verdict.save()
    assert verdict.long[0].endswith("full in: not known yet (2 of 3 runs)")
    assert kept["/data2"]["used"] == [[T0 - DAY, 40 * GiB], [T0, 50 * GiB]]
    replaced = Partition("/data2", "/dev/sdc1", "ext4", size=100 * GiB, used=50 * GiB,
                         free=50 * GiB)
    assert dp.judge([replaced], [], limits(), {}, history, T0).long[0].endswith(
        "(1 of 3 runs)")
    # a run within the hour of the last kept one is used but not kept
    soon = {}
    dp.judge([part], [], limits(), {}, kept, T0 + 600, soon.update).save()
    assert soon["/data2"]["used"] == kept["/data2"]["used"]


def test_full_in_through_the_check_and_its_state_file(tmp_path):
    path = tmp_path / "history.json"
    used = iter([40, 50, 60])

    class Filling(Module):
        def __init__(self):
            super().__init__()
            self.day = 0

        def build_check(self, args):
            gib = next(used)
            day, self.day = self.day, self.day + 1
            return dp.build_check(
                args, list_mounts=lambda: [Mount("/data2", "/dev/sdb1", "ext4")],
                usage=usage_table({"/data2": (100 * GiB, (100 - gib) * GiB)}),
                fstab=dict, now=lambda: T0 + day * DAY)

    check = Filling()
    argv = ["--state-file", str(path), "--full-in-warning", "7d"]
    outcomes = [run_inprocess(check, argv) for _ in range(3)]
    assert [o.exitcode for o in outcomes] == [0, 0, 1], [o.output for o in outcomes]
    assert outcomes[2].status_line.startswith(
        "DISK_PARTITIONS WARNING - /data2 full in 4d (+10.0 GiB a day over 3 runs in 2d) |")
    assert len(__import__("json").loads(path.read_text())["mounts"]["/data2"]["used"]) == 3


def test_full_in_options_that_cannot_work_are_usage_errors():
    outcome = run(["--full-in-warning", "1d", "--full-in-critical", "2d"])
    assert outcome.exitcode == 3 and "--full-in-warning 1d can never fire" in outcome.output
    assert run(["--state-file", "relative.json"]).exitcode == 3


# -- btrfs: the free space of the data profile ------------------------------------------

def test_btrfs_free_space_as_btrfs_filesystem_usage_estimates_it():
    from osop_checks import proc
    from osop_checks.sources import disks
    from tests.helpers import fixture

    usage = fixture("disks", "btrfs-filesystem-usage-b_btrfs-progs-6.2.txt")
    assert disks.parse_btrfs_usage(usage) == 348127232  # df -B1 said 347078656
    asked = []

    def run(argv, timeout=None):
        asked.append(argv)
        return proc.Completed(argv, 0, usage, "")

    def statvfs_part():
        return Partition("/srv", "/dev/loop0", "btrfs", size=536870912, used=111181824,
                         free=347078656)

    part = disks.btrfs_free(statvfs_part(), run=run, euid=0)
    assert (part.free, part.free_source) == (348127232, "btrfs filesystem usage")
    assert asked == [["btrfs", "filesystem", "usage", "-b", "--", "/srv"]]
    assert dp.long_line(nagiosplugin.Ok, "", part, "space").endswith(
        ", free as btrfs filesystem usage gives it")
    # not root, no btrfs-progs, a layout not known: statvfs's figure stays
    assert disks.btrfs_free(statvfs_part(), run=run, euid=1000).free == 347078656

    def missing(argv, timeout=None):
        raise proc.CommandError("btrfs: command not found", "btrfs", proc.NOT_FOUND)

    assert disks.btrfs_free(statvfs_part(), run=missing, euid=0).free == 347078656
    garbage = lambda argv, timeout=None: proc.Completed(argv, 0, "Overall:\n", "")  # noqa: E731
    assert disks.btrfs_free(statvfs_part(), run=garbage, euid=0).free == 347078656
def test_a_mount_table_with_no_filesystem_names_p():
    # a chroot or a container: only virtual filesystems are listed, and no -p was given
    outcome = run_inprocess(Unlisted(), [])
    assert outcome.exitcode == 3, outcome.output
    assert "no filesystem to check in the mount table" in outcome.status_line
    assert "-p, e.g. -p /" in outcome.status_line
