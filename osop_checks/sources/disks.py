"""Local filesystems: the mount table (/proc/self/mounts) and each mount's usage (statvfs).

Returns plain data only. The SNMP source (sources/snmp_storage) returns the same Partition
type, so a check judges local and remote disks alike.
"""
# Annotations stay unevaluated strings: importing typing would cost every plugin start ~2 ms.
from __future__ import annotations

import os
import re
import time

from osop_checks import bounded, deadline
from osop_checks.record import Record

# Filesystems that hold no data of their own: left out unless asked for by type or by path.
VIRTUAL_TYPES = frozenset("""
    autofs binfmt_misc bpf cgroup cgroup2 configfs debugfs devpts devtmpfs efivarfs fusectl
    fuse.gvfsd-fuse fuse.lxcfs fuse.portal hugetlbfs iso9660 mqueue nsfs overlay proc pstore
    ramfs rpc_pipefs securityfs selinuxfs squashfs sysfs tmpfs tracefs udf nfsd
""".split())


# Filesystems that are read-only by nature: never "went read-only".
READ_ONLY_TYPES = frozenset("squashfs iso9660 udf cramfs erofs romfs".split())


class Mount(Record):
    """One mount-table entry. ``listed`` False: no mount-table entry holds it (``unlisted``).
    ``options``: its mount options as the kernel lists them ('rw', 'relatime' ...)."""

    def __init__(self, mountpoint: str, device: str, fstype: str, listed: bool = True,
                 options: tuple = ()):
        self.mountpoint = mountpoint
        self.device = device
        self.fstype = fstype
        self.listed = listed
        self.options = tuple(options)


def unlisted(path):
    """A path that exists but that no entry of the mount table holds: in a chroot or some
    containers the filesystem holding the root is not listed. statvfs on the path itself
    still measures the filesystem it lies on; device and type are not known."""
    return Mount(os.path.realpath(path), "", "", listed=False)


class Partition(Record):
    """One filesystem's usage in bytes, as df -B1 reports it.

    ``free`` is what df calls Avail (f_bavail: space an unprivileged user can still write);
    ``used`` is size minus all free blocks, so used + free < size where blocks are reserved.
    """
    def __init__(self, mountpoint: str, device: str, fstype: str, size: int = 0,
                 used: int = 0, free: int = 0, inodes_total: int | None = None,
                 inodes_free: int | None = None, error: str | None = None,
                 listed: bool = True, options: tuple = (), free_source: str = "statvfs"):
        # listed, options: as Mount's; free_source: where ``free`` comes from ("statvfs",
        # or "btrfs filesystem usage" for btrfs read as root)
        self.mountpoint = mountpoint
        self.device = device
        self.fstype = fstype
        self.size = size
        self.used = used
        self.free = free
        self.inodes_total = inodes_total
        self.inodes_free = inodes_free
        self.error = error
        self.listed = listed
        self.options = tuple(options)
        self.free_source = free_source

    @property
    def readonly(self):
        """Mounted read-only (the kernel's option 'ro')."""
        return "ro" in self.options

    @property
    def free_percent(self):
        usable = self.used + self.free
        return 100.0 * self.free / usable if usable else 0.0

    @property
    def inodes_free_percent(self):
        if not self.inodes_total:
            return None
        return 100.0 * self.inodes_free / self.inodes_total


# psutil.disk_partitions is not used: psutil 5.9 (Debian 12) calls pathconf() on every mount
# point it lists, so one hung NFS or FUSE mount hangs the check even when it is left out.
MOUNTS_LIMIT = 16 * 1024 * 1024  # bytes of /proc/self/mounts (hosts with thousands of mounts)


def _unescape(field):
    """A mount-table field: the kernel writes space, tab, newline and backslash as \\ooo."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mounts(text) -> list[Mount]:
    """/proc/self/mounts (or /etc/mtab): device, mount point, type, options per line."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        device, point, fstype, options = fields[:4]
        mounts.append(Mount(_unescape(point), "" if device == "none" else _unescape(device),
                            fstype, options=tuple(options.split(","))))
    return mounts


def list_mounts(path="/proc/self/mounts") -> list[Mount]:
    """Every mounted filesystem, virtual ones included, in mount-table order. Reads the table
    only: no mount point is touched."""
    return parse_mounts(bounded.read_text(path, MOUNTS_LIMIT))


def parse_fstab(text) -> dict:
    """{mount point: options} of the fstab entries that are filesystems (not swap)."""
    entries = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 4 and not fields[0].startswith("#") and fields[1] != "none" \
                and fields[2] != "swap":
            point = _unescape(fields[1])
            entries[point.rstrip("/") or "/"] = tuple(fields[3].split(","))
    return entries


def read_fstab(path="/etc/fstab") -> dict:
    """parse_fstab of ``path``; {} when it cannot be read (a container has none)."""
    try:
        return parse_fstab(bounded.read_text(path))
    except OSError:
        return {}


def should_be_mounted(fstab, point):
    """fstab lists ``point`` without noauto."""
    options = fstab.get(point.rstrip("/") or "/")
    return options is not None and "noauto" not in options


def statvfs_usage(mount: Mount, fields=None) -> Partition:
    """The Partition of ``mount`` from statvfs (or from its ``fields``: f_blocks, f_bfree,
    f_bavail, f_frsize, f_files, f_favail, as measure() writes them)."""
    if fields is None:
        fields = _statvfs_fields(mount.mountpoint)
    blocks, bfree, bavail, frsize, files, favail = fields
    return Partition(
        mount.mountpoint, mount.device, mount.fstype,
        size=blocks * frsize,
        used=(blocks - bfree) * frsize,
        free=bavail * frsize,
        inodes_total=files or None,
        inodes_free=favail if files else None, listed=mount.listed,
        options=mount.options)


def _statvfs_fields(path):
    st = os.statvfs(path)
    return st.f_blocks, st.f_bfree, st.f_bavail, st.f_frsize, st.f_files, st.f_favail


# btrfs: statvfs's f_bavail is a rough guess across the profiles; "btrfs filesystem usage"
# estimates the free space for the data profile (unallocated space at the data ratio).
BTRFS_FREE = re.compile(r"^\s*Free \(estimated\):\s+(\d+)\b", re.M)
BTRFS_TIMEOUT = 10  # seconds for one "btrfs filesystem usage", within the check's --timeout


def parse_btrfs_usage(text) -> int:
    """The bytes of "Free (estimated)" in ``btrfs filesystem usage -b``'s output."""
    from osop_checks import proc

    match = BTRFS_FREE.search(text)
    if not match:
        raise proc.LayoutError("btrfs filesystem usage wrote no 'Free (estimated)' line",
                               text[:200])
    return int(match.group(1))


def btrfs_free(part: Partition, run=None, euid=None) -> Partition:
    """``part`` (a btrfs statvfs measured) with the free space "btrfs filesystem usage"
    estimates for its data profile; as it was when that cannot be asked (not root: the
    tool reads the chunk tree with a root-only ioctl; no btrfs-progs; a failure), said at -v."""
    import logging

    import nagiosplugin

    from osop_checks import proc

    log = logging.getLogger("nagiosplugin")
    if (os.geteuid() if euid is None else euid) != 0:
        log.warning("%s: btrfs free space from statvfs (df's figure): 'btrfs filesystem usage' "
                 "needs root", part.mountpoint)
        return part
    try:
        done = (run or proc.run)(["btrfs", "filesystem", "usage", "-b", "--", part.mountpoint],
                                 timeout=BTRFS_TIMEOUT)
        free = parse_btrfs_usage(done.stdout)
    except (nagiosplugin.CheckError, OSError) as exc:
        log.warning("%s: btrfs free space from statvfs (df's figure): %s", part.mountpoint, exc)
        return part
    part.free = free
    part.free_source = "btrfs filesystem usage"
    return part


def usage(mounts: list[Mount], timeout=None, btrfs=btrfs_free) -> list[Partition]:
    """statvfs for each mount, in a child process: a hung NFS or FUSE mount cannot hang the
    check, it comes back as a Partition with an error instead (the mounts measured before it
    keep their figures). A btrfs gets its free space from ``btrfs`` (btrfs_free)."""
    answers = measure([m.mountpoint for m in mounts], deadline.remaining(timeout))
    measured = []
    for index, mount in enumerate(mounts):
        answer = answers.get(index)
        if answer is None:
            measured.append(Partition(mount.mountpoint, mount.device, mount.fstype,
                                      error="statvfs did not answer in time (hung mount?)"))
        elif isinstance(answer, str):
            measured.append(Partition(mount.mountpoint, mount.device, mount.fstype,
                                      error="cannot read usage: %s" % answer))
        else:
            measured.append(statvfs_usage(mount, answer))
    return [btrfs(p) if p.fstype == "btrfs" and not p.error else p for p in measured]


def measure(paths, limit=None):
    """{index: statvfs fields, or the OS's words for a failure} of ``paths``, asked by a
    forked child within ``limit`` seconds (None: no limit). Not a thread: a thread stuck in
    a FUSE request (a dead sshfs, a hard NFS mount) cannot be killed, and the check could
    not exit after its answer; a stuck child is killed and left behind instead."""
    import select
    import signal

    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one line per path, then out without any cleanup
        try:
            # nothing inherited stays open: a child stuck for hours must not hold Icinga's
            # pipe (stdout) or a daemon's client socket
            os.closerange(0, writer)
            os.closerange(writer + 1, max(writer + 2, os.sysconf("SC_OPEN_MAX")))
            for index, path in enumerate(paths):
                try:
                    line = "%d ok %s" % (index, " ".join(map(str, _statvfs_fields(path))))
                except OSError as exc:
                    line = "%d error %s" % (index, exc.strerror or exc)
                os.write(writer, line.replace("\n", " ").encode("utf-8", "replace") + b"\n")
        finally:
            os._exit(0)
    os.close(writer)
    answers, pending = {}, b""
    end = None if limit is None else time.monotonic() + limit
    try:
        while len(answers) < len(paths):
            wait = None if end is None else max(0.0, end - time.monotonic())
            if not select.select([reader], [], [], wait)[0]:
                break
            chunk = os.read(reader, 65536)
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                index, kind, rest = line.decode("utf-8", "replace").split(" ", 2)
                answers[int(index)] = tuple(int(v) for v in rest.split()) if kind == "ok" \
                    else rest
    finally:
        os.close(reader)
        done = len(answers) == len(paths)
        if not done:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:  # a child stuck in the kernel cannot die yet: not waited for
            os.waitpid(pid, 0 if done else os.WNOHANG)
        except ChildProcessError:
            pass
    return answers
