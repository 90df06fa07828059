"""Local filesystems: the mount table (/proc/self/mounts) and each mount's usage (statvfs).

Returns plain data only. The SNMP source (sources/snmp_storage) returns the same Partition
type, so a check judges local and remote disks alike.
"""
# Annotations stay unevaluated strings: importing typing would cost every plugin start ~2 ms.
from __future__ import annotations

import os
import re
import threading

from osop_checks import bounded, deadline

# Filesystems that hold no data of their own: left out unless asked for by type or by path.
VIRTUAL_TYPES = frozenset("""
    autofs binfmt_misc bpf cgroup cgroup2 configfs debugfs devpts devtmpfs efivarfs fusectl
    fuse.gvfsd-fuse fuse.lxcfs fuse.portal hugetlbfs iso9660 mqueue nsfs overlay proc pstore
    ramfs rpc_pipefs securityfs selinuxfs squashfs sysfs tmpfs tracefs udf nfsd
""".split())


class _Record:
    """What the dataclasses these were gave, without importing dataclasses at start (~4 ms):
    a repr of every field in order, equality of the same class with equal fields (and so no
    hash). Attributes stay plain and assignable (the check sets ``part.error``)."""
    _fields: tuple = ()

    def _values(self):
        return tuple(getattr(self, name) for name in self._fields)

    def __repr__(self):
        return "%s(%s)" % (type(self).__qualname__, ", ".join(
            "%s=%r" % (name, getattr(self, name)) for name in self._fields))

    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return self._values() == other._values()
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


class Mount(_Record):
    """One mount-table entry. ``listed`` False: no mount-table entry holds it (``unlisted``)."""
    _fields = __match_args__ = ("mountpoint", "device", "fstype", "listed")

    def __init__(self, mountpoint: str, device: str, fstype: str, listed: bool = True):
        self.mountpoint = mountpoint
        self.device = device
        self.fstype = fstype
        self.listed = listed


def unlisted(path):
    """A path that exists but that no entry of the mount table holds: in a chroot or some
    containers the filesystem holding the root is not listed. statvfs on the path itself
    still measures the filesystem it lies on; device and type are not known."""
    return Mount(os.path.realpath(path), "", "", listed=False)


class Partition(_Record):
    """One filesystem's usage in bytes, as df -B1 reports it.

    ``free`` is what df calls Avail (f_bavail: space an unprivileged user can still write);
    ``used`` is size minus all free blocks, so used + free < size where blocks are reserved.
    """
    _fields = __match_args__ = ("mountpoint", "device", "fstype", "size", "used", "free",
                                "inodes_total", "inodes_free", "error", "listed")

    def __init__(self, mountpoint: str, device: str, fstype: str, size: int = 0,
                 used: int = 0, free: int = 0, inodes_total: int | None = None,
                 inodes_free: int | None = None, error: str | None = None,
                 listed: bool = True):  # listed: as Mount.listed
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

    @property
    def free_percent(self):
        usable = self.used + self.free
        return 100.0 * self.free / usable if usable else 0.0

    @property
    def inodes_free_percent(self):
        if not self.inodes_total:
            return None
        return 100.0 * self.inodes_free / self.inodes_total


_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(field):
    """A mount table's field as written: the kernel and fstab write a space, tab, newline
    or backslash in a path as an octal escape (\\040 ...), as getmntent(3) reads them."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def list_mounts(path="/proc/self/mounts") -> list[Mount]:
    """Every mounted filesystem, virtual ones included, in mount-table order.

    The kernel's table read directly, as psutil.disk_partitions(all=True) reads it (a device
    'none' is '') without importing psutil, a fifth of this check's start-up (issue 29);
    /dev/root stays /dev/root, as df and findmnt show it."""
    mounts = []
    for line in bounded.read_text(path, errors="surrogateescape").splitlines():
        fields = line.split()
        if len(fields) >= 3:
            device, mountpoint, fstype = (_unescape(f) for f in fields[:3])
            mounts.append(Mount(mountpoint, "" if device == "none" else device, fstype))
    return mounts


def read_fstab(path="/etc/fstab"):
    """Mount points listed in fstab without noauto: the ones that should be mounted."""
    points = set()
    try:
        for line in bounded.read_text(path).splitlines():
            fields = line.split()
            if len(fields) >= 4 and not fields[0].startswith("#"):
                if "noauto" not in fields[3].split(",") and fields[1] != "none":
                    points.add(_unescape(fields[1]))
    except OSError:
        pass
    return points


def statvfs_usage(mount: Mount) -> Partition:
    st = os.statvfs(mount.mountpoint)
    return Partition(
        mount.mountpoint, mount.device, mount.fstype,
        size=st.f_blocks * st.f_frsize,
        used=(st.f_blocks - st.f_bfree) * st.f_frsize,
        free=st.f_bavail * st.f_frsize,
        inodes_total=st.f_files or None,
        inodes_free=st.f_favail if st.f_files else None, listed=mount.listed)


def usage(mounts: list[Mount], timeout=None) -> list[Partition]:
    """statvfs for each mount, in a worker thread: a hung NFS mount cannot hang the check,
    it comes back as a Partition with an error instead."""
    results = {}

    def work():
        for mount in mounts:
            try:
                results[mount.mountpoint] = statvfs_usage(mount)
            except OSError as exc:
                results[mount.mountpoint] = Partition(
                    mount.mountpoint, mount.device, mount.fstype,
                    error="cannot read usage: %s" % (exc.strerror or exc))

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(deadline.remaining(timeout))
    return [results.get(m.mountpoint) or Partition(
        m.mountpoint, m.device, m.fstype, error="statvfs did not answer in time (hung mount?)")
        for m in mounts]
