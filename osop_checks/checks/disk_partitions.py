"""check_disk_partitions: free space and inodes of every physical filesystem.

arguments -> mounts (sources.disks) -> selection -> usage of each (gathered in build_check)
-> judge (pure): free space against -w/-c (percent and/or bytes free, both must be breached
when both are given), free inodes against -W/-K, missing -p paths; the status line, the long
output and the perfdata (used bytes and inodes, the thresholds in the same terms) -> runtime
renders the plugin.Verdict.

With -H HOST --snmp the partitions come from HOST's SNMP agent instead (sources.snmp_storage:
hrStorageTable, and dskTable where present) as the same disks.Partition, so the selection by
-p/--match/--ignore, the thresholds, the output and the perfdata are the same as local ones.
pysnmp is imported only in that mode.
"""
import os

import nagiosplugin
from nagiosplugin import Critical, Ok, Unknown, Warn

from osop_checks import cli, plugin, runtime, snmp_options, text, units
from osop_checks.sources import disks

NAME = "DISK_PARTITIONS"


def build_parser():
    parser = cli.Parser(
        NAME, "check_disk_partitions",
        "Free space and free inodes of local filesystems (every physical one by default), "
        "or of a remote host's filesystems read over SNMP (-H HOST --snmp).",
        examples=[
            "check_disk_partitions -w 20% -c 10%",
            "check_disk_partitions -p / -p /data2 -w 20%,50GiB -c 10%,10GiB",
            "check_disk_partitions --exclude-type vfat --ignore '^/boot' -W 10% -K 5%",
            "check_disk_partitions --path-threshold /data2=10%/5% -w 20% -c 10%",
            "check_disk_partitions -H nas --snmp --community-file /etc/icinga2/nas.community",
            "OSOP_SNMP_AUTH_KEY=... OSOP_SNMP_PRIV_KEY=... check_disk_partitions -H nas --snmp "
            "--snmp-version 3 --snmp-user monitor -p /volume1",
            "check_disk_partitions -H [2001:db8::7] --snmp --community-file FILE",
            "check_disk_partitions -H nas.example.org -6 --snmp --community-file FILE",
        ],
        behind_the_scenes=[
            "the mount table from /proc/self/mounts (as df reads it), then statvfs(2) on",
            "each selected mount in a worker thread (a hung NFS mount cannot hang the check);",
            "free = f_bavail * f_frsize, exactly df -B1's Avail; /etc/fstab tells whether a",
            "-p path should be a mount point of its own; a -p path that no mount entry holds",
            "(a chroot) gets statvfs(2) on the path itself.",
            "SNMP mode: GETBULK walks of HOST-RESOURCES-MIB hrStorageTable (1.3.6.1.2.1.25.2.3.1:",
            "type, descr, allocation units, size, used) and UCD-SNMP-MIB dskTable",
            "(1.3.6.1.4.1.2021.9.1: dskAvail for free space, dskPercentNode for inodes) with",
            "pysnmp; numeric OIDs, no MIB files. Without a dskTable row free = size - used.",
            "HOST is resolved with getaddrinfo (all A and AAAA, -4/-6 narrow) and asked on its",
            "first address, over udp6 where that is an IPv6 address.",
        ])
    sel = parser.add_argument_group("selection")
    sel.add_argument("-p", "--path", kind=cli.PATH, action="append", default=[], metavar="PATH",
                     help="check the filesystem holding PATH (repeatable); selected whatever "
                          "its type; a PATH that does not exist, or an fstab mount point that "
                          "is not mounted, is CRITICAL (SNMP mode: PATH is a mount point as "
                          "the agent lists it)")
    sel.add_argument("--ignore-missing", kind=cli.PLAIN, action="store_true",
                     help="a missing or unmounted -p PATH is OK instead of CRITICAL")
    sel.add_argument("--include-type", kind=cli.PLAIN,
                     action="append", default=[], metavar="FSTYPE",
                     help="only filesystems of this type (repeatable; also selects virtual "
                          "types such as tmpfs)")
    sel.add_argument("--exclude-type", kind=cli.PLAIN,
                     action="append", default=[], metavar="FSTYPE",
                     help="leave out filesystems of this type (repeatable)")
    sel.add_argument("--match", kind=cli.PLAIN, type=cli.regex_type, metavar="REGEX",
                     help="only mount points matching this regular expression")
    sel.add_argument("--ignore", kind=cli.PLAIN, type=cli.regex_type, metavar="REGEX",
                     help="leave out mount points matching this regular expression")
    sel.add_argument("--storage-type", kind=cli.PLAIN,
                     action="append", default=[], type=storage_type,
                     metavar="TYPE",
                     help="SNMP mode: hrStorage types to check (repeatable; default fixedDisk; "
                          "e.g. networkDisk, ramDisk, removableDisk, ram, virtualMemory)")
    thr = parser.add_argument_group("thresholds (on free space)")
    thr.add_argument("-w", "--warning", kind=cli.PLAIN,
                     type=free_thresholds, default=free_thresholds("10%"),
                     metavar="FREE",
                     help="warn when free space is below this: a percentage (20%%), a size "
                          "(50GiB) or both (20%%,50GiB: only when both are breached); Nagios "
                          "ranges work too (default: 10%%)")
    thr.add_argument("-c", "--critical", kind=cli.PLAIN,
                     type=free_thresholds, default=free_thresholds("5%"),
                     metavar="FREE", help="critical when free space is below this (default: 5%%)")
    thr.add_argument("-W", "--inode-warning", kind=cli.PLAIN, type=inode_threshold,
                     default=inode_threshold("10%"), metavar="PERCENT",
                     help="warn when free inodes are below this percentage (default: 10%%)")
    thr.add_argument("-K", "--inode-critical", kind=cli.PLAIN, type=inode_threshold,
                     default=inode_threshold("5%"), metavar="PERCENT",
                     help="critical when free inodes are below this percentage (default: 5%%)")
    thr.add_argument("--path-threshold", kind=cli.PLAIN,
                     action="append", default=[], type=path_threshold,
                     metavar="MOUNT=WARN/CRIT",
                     help="other space thresholds for one mount point, e.g. /data2=10%%/5%% "
                          "or /srv=20%%,50GiB/10%%,10GiB (repeatable)")
    parser.add_threshold_pair("--warning", "--critical", never_fires=FreeLimit.never_fires)
    parser.add_threshold_pair("--inode-warning", "--inode-critical", units.PERCENT)
    snmp_options.add_arguments(parser)
    return parser


def parse_storage_type(text):
    from osop_checks.sources import snmp_storage  # SNMP mode only: local starts stay cheap

    return snmp_storage.storage_type(text)


storage_type = cli.value_type(parse_storage_type, "storage type")


# -- thresholds ---------------------------------------------------------------------------

class FreeLimit:
    """Free-space thresholds: ranges over percent free and/or bytes free, joined by AND."""

    def __init__(self, ranges):
        self.ranges = ranges  # [(quantity, nagiosplugin.Range)]

    def breached(self, partition):
        return all(not rng.match(self._value(q, partition)) for q, rng in self.ranges)

    @staticmethod
    def _value(quantity, partition):
        return partition.free_percent if quantity is units.PERCENT else partition.free

    def used_limit(self, partition):
        """The same threshold as a Nagios range over used bytes, for perfdata; None when the
        ranges are not plain lower bounds ('N:') and so have no used-bytes equivalent."""
        usable = partition.used + partition.free
        limits = []
        for quantity, rng in self.ranges:
            if rng.invert or rng.end != float("inf") or rng.start == float("-inf"):
                return None
            limits.append(rng.start * usable / 100 if quantity is units.PERCENT else rng.start)
        return units.range_of(end=max(0, int(usable - min(limits))))

    def __str__(self):
        return ",".join(str(rng) + ("%" if q is units.PERCENT else "B") for q, rng in self.ranges)

    @property
    def written(self):
        return ",".join(units.range_text(rng, q) for q, rng in self.ranges)

    def never_fires(self, critical):
        """True when this warning limit can never fire before ``critical``, whatever the
        partition's size: each critical range is breached whenever a warning range of the
        same quantity is (so 20%,50GiB against 10% is fine, 5% against 10% is not); a
        percentage and a size are never compared."""
        if sorted(map(str, self.ranges)) == sorted(map(str, critical.ranges)):
            return False
        return all(any(qw is qc and (rw == rc or units.never_fires(rw, rc, qw))
                       for qw, rw in self.ranges)
                   for qc, rc in critical.ranges)


def parse_free_limit(text):
    """``20%``, ``50GiB``, ``20%,50GiB`` (both must be breached): a FreeLimit; UnitError."""
    ranges = []
    for part in str(text).split(","):
        quantity = units.PERCENT if "%" in part else units.SIZE  # 20%, 20%:, 10%:30%
        ranges.append((quantity, units.parse_range(part, quantity, lower_bound=True)))
    return FreeLimit(ranges)


def parse_inode_limit(text):
    return units.parse_range(text, units.PERCENT, lower_bound=True)


def parse_path_threshold(text):
    """``MOUNT=WARN/CRIT`` as (mount, warning FreeLimit, critical FreeLimit)."""
    mount, sep, limits = str(text).rpartition("=")
    warning, slash, critical = limits.partition("/")
    if not sep or not mount or not slash:
        raise ValueError("%r is not MOUNT=WARN/CRIT (e.g. /data2=10%%/5%%)" % text)
    warning, critical = parse_free_limit(warning), parse_free_limit(critical)
    if warning.never_fires(critical):
        raise ValueError(
            "%r: warning %s can never fire: every value it warns about is critical by %s "
            "already" % (text, warning.written, critical.written))
    return mount, warning, critical


free_thresholds = cli.value_type(parse_free_limit, "free space threshold")
inode_threshold = cli.value_type(parse_inode_limit, "percentage")
path_threshold = cli.value_type(parse_path_threshold, "path threshold")


# -- selection ----------------------------------------------------------------------------

def containing_mount(path, mounts):
    """The mount whose mount point is the longest prefix of ``path`` (symlinks resolved)."""
    real = os.path.realpath(path)
    best = None
    for mount in mounts:
        point = mount.mountpoint
        if real == point or real.startswith(point.rstrip("/") + "/"):
            if best is None or len(point) >= len(best.mountpoint):
                best = mount
    return best


def _denied(path):
    """True when ``path`` is there but hidden from this user (a directory it may not enter):
    not "does not exist", which would be a wrong answer as nagios."""
    try:
        os.stat(path)
    except PermissionError:
        return True
    except (OSError, ValueError):
        return False
    return False


def narrow(chosen, args, what="filesystem"):
    """The filters --exclude-type, --match and --ignore in turn. Returns what is left and,
    when that is nothing, words naming the filter that left nothing (else None)."""
    steps = (
        (args.exclude_type, "every %s is excluded by %s" % (
            what, cli.as_given("--exclude-type", args.exclude_type)),
         lambda m: m.fstype not in args.exclude_type),
        (args.match, "no %s matches %s" % (what, cli.as_given("--match", [args.match])),
         lambda m: args.match.search(m.mountpoint)),
        (args.ignore, "every %s is excluded by %s" % (
            what, cli.as_given("--ignore", [args.ignore])),
         lambda m: not args.ignore.search(m.mountpoint)))
    for given, words, test in steps:
        if given and chosen:
            chosen = [m for m in chosen if test(m)]
            if not chosen:
                return chosen, words
    return chosen, None


def select(mounts, args, fstab=frozenset(), exists=os.path.exists):
    """Choose the mounts to check. Returns (selected mounts, missing paths with reasons)."""
    return _select(mounts, args, fstab, exists)[:2]


def _select(mounts, args, fstab=frozenset(), exists=os.path.exists):
    """select(), and the words naming the filter that left nothing (or None)."""
    chosen, missing = [], []
    if args.path:
        for path in args.path:
            present = exists(path)
            mount = containing_mount(path, mounts) if present else None
            if mount is None and present:  # a chroot: the mount table does not list it
                mount = disks.unlisted(path)
            if mount is None and _denied(path):
                raise nagiosplugin.CheckError("cannot reach %s: permission denied" % path)
            if mount is None:
                missing.append((path, "does not exist"))
            elif path.rstrip("/") in fstab and mount.mountpoint != os.path.realpath(path):
                missing.append((path, "is not mounted (listed in /etc/fstab; its directory "
                                      "lies on %s)" % mount.mountpoint))
            elif mount not in chosen:
                chosen.append(mount)
    else:
        seen_devices = set()
        for mount in mounts:
            if args.include_type:
                if mount.fstype not in args.include_type:
                    continue
            elif mount.fstype in disks.VIRTUAL_TYPES:
                continue
            # A device mounted twice (bind mounts) is counted once, as df does.
            if mount.device in seen_devices and mount.device.startswith("/"):
                continue
            seen_devices.add(mount.device)
            chosen.append(mount)
        if not chosen and args.include_type:
            return chosen, missing, "no filesystem of %s is mounted" % cli.as_given(
                "--include-type", args.include_type)
    chosen, why = narrow(chosen, args)
    return chosen, missing, why


def _select_remote(partitions, args, host):
    """SNMP mode: choose among the agent's storage rows. -p names a mount point exactly as the
    agent lists it (nothing can be resolved on the remote side); other rows are chosen by
    hrStorage type (fixedDisk by default). Returns (selected partitions, missing paths, the
    words naming the filter that left nothing or None)."""
    chosen, missing = [], []
    if args.path:
        by_mount = {}
        for part in partitions:
            by_mount.setdefault(part.mountpoint.rstrip("/") or "/", part)
        for path in args.path:
            part = by_mount.get(path.rstrip("/") or "/")
            if part is None:
                missing.append((path, "is not in the storage table of %s (not mounted, or "
                                      "not a mount point there)" % host))
            elif part not in chosen:
                if part.size <= 0 and not part.error:
                    part.error = "the agent reports a size of 0 (nothing to measure)"
                chosen.append(part)
    else:
        from osop_checks.sources import snmp_storage

        types = args.storage_type or snmp_storage.DEFAULT_TYPES
        # A row of size 0 (no swap configured, an empty card reader) has nothing to judge.
        chosen = [p for p in partitions if p.fstype in types and p.size > 0]
        if not chosen:
            return chosen, missing, "no storage of %s matches the selection (types: %s)" % (
                host, ", ".join(types))
    chosen, why = narrow(chosen, args, "storage of %s" % host)
    return chosen, missing, why


# -- evaluation ---------------------------------------------------------------------------

class Limits:
    """What the partitions are judged against, built from the arguments: the free-space
    FreeLimits (and per mount point overrides), the inode ranges in percent free, and the
    state of a missing -p path."""

    def __init__(self, warning, critical, inode_warning, inode_critical, overrides=(),
                 missing=Critical):
        self.default = (warning, critical)
        self.overrides = {mount.rstrip("/") or "/": (w, c) for mount, w, c in overrides}
        self.inode_warning = inode_warning
        self.inode_critical = inode_critical
        self.missing = missing

    @classmethod
    def from_args(cls, args):
        return cls(args.warning, args.critical, args.inode_warning, args.inode_critical,
                   args.path_threshold, Ok if args.ignore_missing else Critical)

    def space(self, part):
        """(warning, critical) FreeLimits of ``part``: its mount point's override, else -w/-c."""
        return self.overrides.get(part.mountpoint, self.default)


def judge(partitions, missing, limits):
    """The verdict on the measured ``partitions`` and the ``missing`` (path, reason) pairs.
    Pure.

    Per partition its free space (UNKNOWN when it could not be measured) and, where it has
    inodes, its free inodes; per missing path CRITICAL (OK with --ignore-missing). Status
    line: the problems worst first, else how many are ok and the least free. Perfdata: used
    bytes and used inodes, the thresholds converted to the same terms."""
    judged, perfdata = [], []  # judged: (state, words, partition or None, kind)
    for part in partitions:
        if part.error:
            judged.append((Unknown, "%s: %s" % (part.mountpoint, part.error), part, "space"))
            continue
        warning, critical = limits.space(part)
        state = Critical if critical.breached(part) else Warn if warning.breached(part) else Ok
        judged.append((state, describe(part), part, "space"))
        # The label passes text.label: over SNMP the mount point is the agent's text.
        perfdata.append(nagiosplugin.Performance(
            text.label(part.mountpoint), part.used, "B", warning.used_limit(part),
            critical.used_limit(part), 0, part.size))
        if part.inodes_total:
            judged.append((judge_inodes(part, limits), inodes_words(part), part, "inodes"))
            # Remote inodes are percentages (total 100): the same numbers with the unit '%'.
            perfdata.append(nagiosplugin.Performance(
                text.label(part.mountpoint + " inodes"), part.inodes_total - part.inodes_free,
                "" if getattr(part, "inodes_exact", True) else "%",
                used_inodes(limits.inode_warning, part), used_inodes(limits.inode_critical, part),
                0, part.inodes_total))
    for path, reason in missing:
        judged.append((limits.missing, "%s %s" % (path, reason), None, "missing"))
    findings = [(state, words) for state, words, _, _ in judged]
    if any(state != Ok for state, _ in findings):
        summary = ", ".join(words for _, words in plugin.worst_first(
            [f for f in findings if f[0] != Ok], state=lambda f: f[0]))
    else:
        summary = all_ok(judged)
    return plugin.Verdict(findings, summary, perfdata, [
        line for line in (long_line(*j) for j in plugin.by_significance(judged, lambda j: j[0]))
        if line])


def judge_inodes(part, limits):
    return plugin.state_of(part.inodes_free_percent, limits.inode_warning,
                           limits.inode_critical)


def inodes_words(part):
    if not getattr(part, "inodes_exact", True):  # SNMP: the agent gives percentages only
        return "%s %.1f%% inodes free" % (part.mountpoint, part.inodes_free_percent)
    return "%s %.1f%% inodes free (%d of %d)" % (
        part.mountpoint, part.inodes_free_percent, part.inodes_free, part.inodes_total)


def used_inodes(rng, part):
    """An inode range in percent free as a Nagios range over used inodes, for perfdata; None
    when it is not a plain lower bound ('N:')."""
    if rng.invert or rng.end != float("inf") or rng.start == float("-inf"):
        return None
    # (100 - start) first: 1 - 80/100 is 0.19999..., which would floor 20 to 19.
    return units.range_of(end=max(0, int(part.inodes_total * (100 - rng.start) / 100)))


def describe(part):
    return "%s %.1f%% free (%s of %s)" % (
        part.mountpoint, part.free_percent, units.format_size(part.free),
        units.format_size(part.size))


def all_ok(judged):
    """The OK status line: how many partitions, the least free, and the missing paths that
    --ignore-missing let pass."""
    parts = [part for _, _, part, kind in judged if kind == "space"]
    ignored = ["%s (ignored)" % words for _, words, _, kind in judged if kind == "missing"]
    if not parts:
        return ", ".join(ignored)
    least = min(parts, key=lambda p: p.free_percent)
    return "; ".join(["%d partition%s ok, least free: %s" % (
        len(parts), plugin.plural(len(parts)), describe(least))] + ignored)


def long_line(state, words, part, kind):
    """A partition's line of the long output (with type, device, used space and inodes), a
    problem's words, or None for an inode count or a missing path that is OK."""
    if kind == "space" and not part.error:
        inodes = part.inodes_free_percent
        where = "%s on %s" % (part.fstype, part.device) if part.listed else \
            "no entry of the mount table holds it (as in a chroot), measured with " \
            "statvfs on the path itself"
        return "%s: %s, %s, used %s, inodes %s" % (
            str(state).upper(), describe(part), where, units.format_size(part.used),
            "n/a" if inodes is None else "%.1f%% free" % inodes)
    if kind != "space" and state == Ok:
        return None
    return "%s: %s" % (str(state).upper(), words)




SNMP_ONLY = ("storage_type", "community", "community_file", "snmp_user", "auth_key",
             "auth_key_file", "priv_key", "priv_key_file")


def check_mode(args):
    """Local or SNMP: options of the other mode are usage errors, not silently ignored."""
    if args.snmp:
        if not args.host:
            raise cli.UsageError("--snmp needs -H/--host")
        if args.include_type:
            raise cli.UsageError("--include-type is for local filesystem types; in SNMP mode "
                                 "choose hrStorage types with --storage-type")
        return True
    if args.host:
        raise cli.UsageError("-H/--host reads a remote host: add --snmp")
    given = ["--" + name.replace("_", "-") for name in SNMP_ONLY if getattr(args, name)]
    if args.family:
        given.append("-%d" % args.family)  # which address of HOST: SNMP mode only
    if given:
        raise cli.UsageError("%s %s for SNMP mode: add -H HOST --snmp" % (
            ", ".join(given), plugin.plural(len(given), "is", "are")))
    return False


def build_check(args, list_mounts=disks.list_mounts, usage=disks.usage,
                fstab=disks.read_fstab, exists=os.path.exists,
                fetch_remote=None):
    if check_mode(args):
        from osop_checks.sources import snmp_storage

        target = snmp_options.target_from_args(args)
        fetch_remote = fetch_remote or snmp_storage.fetch
        partitions, missing, why = _select_remote(fetch_remote(target), args, args.host)
        if not partitions and not missing:
            raise nagiosplugin.CheckError(why or "no storage of %s to check" % args.host)
    else:
        mounts, missing, why = _select(list_mounts(), args,
                                       fstab() if args.path else frozenset(), exists)
        if not mounts and not missing:
            raise nagiosplugin.CheckError(why or "no filesystem to check in the mount table")
        partitions = usage(mounts)
    return judge(partitions, missing, Limits.from_args(args))


def main(argv=None):
    runtime.main(NAME, build_parser, build_check, argv)
