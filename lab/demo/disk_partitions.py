"""check_disk_partitions in `make demo`: this machine, and (as root) a backup disk /data2 that
fills up with every night's backup and then goes read-only, on a real ext4 in a loop device in
a mount namespace of its own (lab/peers/loopfs.py), its nights a day apart by libfaketime; and a
btrfs, measured as btrfs itself estimates its free space."""
import calendar
import os
import shutil
import tempfile

from lab.peers import faked_clock


def scenarios(stack):
    result = [
        ("every physical filesystem of this machine",
         ["check_disk_partitions", "-w", "20%", "-c", "10%"]),
        ("the root filesystem, percent and size together, verbose",
         ["check_disk_partitions", "-p", "/", "-w", "20%,50GiB", "-c", "10%,10GiB", "-v"]),
        ("a backup partition that is not there",
         ["check_disk_partitions", "-p", "/data2"]),
    ]
    if os.geteuid() != 0 or not all(shutil.which(c) for c in ("mkfs.ext4", "faketime",
                                                                "nsenter", "unshare")):
        return result
    from lab.peers.loopfs import LoopDisks

    disks = stack.enter_context(LoopDisks(tempfile.mkdtemp(prefix="osop-demo-disks-")))
    data2 = disks.add("data2", size="96M")
    pool = disks.add("pool", "btrfs", size="512M") if shutil.which("mkfs.btrfs") else None
    disks.fstab()
    state = os.path.join(disks.root, "data2-history.json")
    night = ["check_disk_partitions", "-p", data2, "--state-file", state,
             "--full-in-warning", "7d", "--full-in-critical", "2d", "-v"]

    def backup(day):
        return lambda: disks.sh('dd if=/dev/zero of="$1/backup-$2" bs=1M count=12 '
                                'status=none; sync', data2, day)

    result += [
        ("/data2 after night %d's backup (12 MiB a night; 'full in' needs three runs)" % day,
         night, backup(day), disks.wrap + faked_clock(calendar.timegm((2026, 12, day, 3, 0, 0))))
        for day in (1, 2, 3)]
    if pool:
        result.append(("a btrfs: free space as 'btrfs filesystem usage' estimates it",
                       ["check_disk_partitions", "-p", pool, "-v"], None, disks.wrap))
    result.append((
        "/data2 remounted read-only by the kernel (fstab says rw): CRITICAL",
        ["check_disk_partitions", "-p", data2],
        lambda: disks.sh('mount -o remount,ro "$1"', data2), disks.wrap))
    return result
