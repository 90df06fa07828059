"""Processes still running code that an upgrade replaced, as needrestart finds them.

An upgrade replaces a library or a program by renaming the new file over the old one; a
process that had the old one mapped keeps running its code, and the kernel shows the mapping
in /proc/PID/maps with the path and " (deleted)" (/proc/PID/exe too, for the program). Only
executable mappings of files in the places packages install code (/usr, /lib*, /bin, /sbin,
/opt) count: a deleted data file, a memfd or a JIT's deleted file in /tmp or a home directory
is no outdated code. Each process is named by its systemd unit, the innermost ``.service`` (else
``.scope``) of its cgroup in /proc/PID/cgroup (cgroup v2, else the v1 ``name=systemd`` tree).

Bounded: at most MAPS_LIMIT bytes of one maps file and TOTAL_LIMIT of all of them are read;
processes whose maps cannot be read (those of other users, unless root) are counted, not
guessed.
"""
import os

from osop_checks import bounded

MAPS_LIMIT = 8 * 1024 * 1024     # bytes of one process's maps (a big JVM has a few MiB)
TOTAL_LIMIT = 256 * 1024 * 1024  # bytes of all maps read in one run
SMALL_LIMIT = 64 * 1024          # bytes of /proc/PID/cgroup and comm
CODE_PLACES = ("/usr/", "/lib/", "/lib32/", "/lib64/", "/libx32/", "/bin/", "/sbin/", "/opt/")
DELETED = " (deleted)"


class Stale:
    """A process running replaced code: ``pid``, ``name`` (its comm), ``unit`` (None outside
    systemd's units), ``files`` (the deleted paths, sorted)."""

    def __init__(self, pid, name, unit, files):
        self.pid, self.name, self.unit, self.files = pid, name, unit, sorted(files)

    def __eq__(self, other):
        return type(other) is type(self) and vars(other) == vars(self)

    def __repr__(self):
        return "Stale(%r, %r, %r, %r)" % (self.pid, self.name, self.unit, self.files)


class Scan:
    """What a look at /proc found: the ``stale`` processes, how many were ``scanned``, how
    many could not be read (``unreadable``, with ``root`` whether this ran as root) and
    whether the byte limit ended the look early (``truncated``)."""

    def __init__(self, stale=None, scanned=0, unreadable=0, root=True, truncated=False):
        self.stale = [] if stale is None else stale
        self.scanned, self.unreadable, self.root = scanned, unreadable, root
        self.truncated = truncated

    def __eq__(self, other):
        return type(other) is type(self) and vars(other) == vars(self)

    def __repr__(self):
        return "Scan(%s)" % ", ".join("%s=%r" % kv for kv in vars(self).items())


def is_code(path):
    return path.startswith(CODE_PLACES)


def deleted_code(maps):
    """The paths of deleted files that ``maps`` (the text of /proc/PID/maps) maps
    executable, in the places of installed code."""
    found = set()
    for line in maps.splitlines():
        fields = line.split(None, 5)
        if len(fields) < 6 or "x" not in fields[1] or not fields[5].endswith(DELETED):
            continue
        path = fields[5][:-len(DELETED)]
        if is_code(path):
            found.add(path)
    return found


def unit_of(cgroup):
    """The systemd unit of a process from the text of /proc/PID/cgroup: the innermost
    '.service' of its cgroup path (else '.scope'), None where there is none."""
    paths = {}
    for line in cgroup.splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if number == "0" and not controllers:
            paths["v2"] = path
        elif controllers == "name=systemd":
            paths["v1"] = path
    for key in ("v2", "v1"):
        parts = [p for p in paths.get(key, "").split("/") if p]
        for suffix in (".service", ".scope"):
            for part in reversed(parts):
                if part.endswith(suffix):
                    return part
    return None


def _small(path):
    return bounded.read_text(path, SMALL_LIMIT, keep="start")


def scan(proc="/proc", own=None, maps_limit=MAPS_LIMIT, total_limit=TOTAL_LIMIT):
    """Every process of ``proc`` (but ``own``, this one) whose maps or executable is
    replaced code, as a Scan."""
    own = os.getpid() if own is None else own
    result = Scan(root=os.geteuid() == 0)
    total = 0
    for entry in sorted(os.listdir(proc), key=lambda e: (len(e), e)):
        if not entry.isdigit() or int(entry) == own:
            continue
        if total > total_limit:
            result.truncated = True
            break
        base = os.path.join(proc, entry)
        try:
            maps = bounded.read_file(os.path.join(base, "maps"), maps_limit, keep="start")
        except PermissionError:
            result.unreadable += 1
            continue
        except OSError:  # gone meanwhile
            continue
        total += len(maps)
        if not maps:  # a kernel thread, or a zombie
            continue
        result.scanned += 1
        files = deleted_code(maps.decode("utf-8", "surrogateescape"))
        try:
            exe = os.readlink(os.path.join(base, "exe"))
        except OSError:
            exe = ""
        if exe.endswith(DELETED) and is_code(exe[:-len(DELETED)]):
            files.add(exe[:-len(DELETED)])
        if not files:
            continue
        try:
            name = _small(os.path.join(base, "comm")).strip()
            unit = unit_of(_small(os.path.join(base, "cgroup")))
        except OSError:
            continue
        result.stale.append(Stale(int(entry), name, unit, files))
    return result
