"""Backups on a local filesystem: the newest entry under a tree, dated snapshot directories,
stamp files and backup logs.

I/O functions (``scan_tree``, ``list_snapshots``, ``read_stamp``, ``read_log``) return plain
data; the parsers (``name_time``, ``NameFormat``, ``parse_stamp``, ``log_verdict``) are pure
functions of text, tested on their own.

``scan_tree`` walks a million files in one pass with bounded memory (a stack of pending
directory paths, never a list of files). Measured here, Python threads do not make a walk
faster (every stat hands the GIL over and back); separate processes do, so the walk forks a
few workers that take subtrees from a shared pipe, each stat'ing its files relative to an
open directory (``fstatat``: no path lookup from the root for every file).
"""
from __future__ import annotations

import collections
import datetime
import errno
import fnmatch
import json
import os
import re
import select
import signal
import stat
import struct
import time

from osop_checks import bounded, deadline

MTIME, CTIME = 8, 9          # indices of the whole-second times in an os.stat_result
SIZE = 6
S_IFMT, S_IFREG = 0o170000, 0o100000
ERRORS_KEPT = 5              # unreadable directories named in the result (all are counted)
LOG_TAIL = 4 * 1024 * 1024   # a backup log is judged on its last 4 MiB


class NotFound(Exception):
    """The path to look at does not exist; ``path`` is that path (the message too)."""

    def __init__(self, path):
        super().__init__(path)
        self.path = path


class Entry(collections.namedtuple("Entry", "path time size is_dir time_source",
                                   defaults=(0, False, "mtime"))):
    """One file or directory: its path, the time chosen (mtime or ctime, or the time its
    name gives) in seconds since the epoch, its size in bytes, whether it is a directory, and
    which time was chosen."""
    __slots__ = ()


class Scan:
    """What a walk found: the newest matching entry (an Entry or None), and the regular files,
    bytes and directories it counted, its errors (the first ERRORS_KEPT in words)."""

    def __init__(self, newest=None, files=0, bytes=0, dirs=0, error_count=0, errors=None,
                 workers=1):
        self.newest = newest
        self.files = files
        self.bytes = bytes
        self.dirs = dirs
        self.error_count = error_count
        self.errors = [] if errors is None else errors
        self.workers = workers

    def as_dict(self):
        """Plain data for JSON (a walker process sends it to its parent)."""
        return {"newest": None if self.newest is None else self.newest._asdict(),
                "files": self.files, "bytes": self.bytes, "dirs": self.dirs,
                "error_count": self.error_count, "errors": self.errors,
                "workers": self.workers}

    def __eq__(self, other):
        return isinstance(other, Scan) and self.as_dict() == other.as_dict()

    def __repr__(self):
        return "Scan(%s)" % ", ".join("%s=%r" % kv for kv in self.as_dict().items())

    def merge(self, other):
        if other.newest is not None and (self.newest is None
                                         or other.newest.time > self.newest.time):
            self.newest = other.newest
        self.files += other.files
        self.bytes += other.bytes
        self.dirs += other.dirs
        self.error_count += other.error_count
        self.errors = (self.errors + other.errors)[:ERRORS_KEPT]


# -- the walk ------------------------------------------------------------------------------

class _Parent:
    """An open directory whose subdirectories are still to be walked: closed when the last
    of them has been opened."""

    __slots__ = ("fd", "refs")

    def __init__(self, fd, refs):
        self.fd, self.refs = fd, refs

    def release(self):
        self.refs -= 1
        if self.refs == 0:
            os.close(self.fd)


class _Walker:
    """One process's share of a walk. ``kind`` 'file' or 'dir' is what may be the newest
    entry; with 'file' the matching regular files are counted, with 'dir' files are not even
    stat'ed."""

    def __init__(self, kind="file", pattern=None, max_depth=None, time_field="mtime"):
        self.want_dirs = kind == "dir"
        self.match = re.compile(fnmatch.translate(pattern)).match if pattern else None
        self.max_depth = max_depth
        self.index = CTIME if time_field == "ctime" else MTIME
        self.time_field = time_field
        self.reset()

    def reset(self):
        """Forget what was found (a forked worker must not report its parent's share)."""
        self.scan = Scan()
        self.best = -float("inf")
        self.best_path = None
        self.best_size = 0
        self.best_dir = False

    def error(self, path, exc):
        if isinstance(exc, OSError) and exc.errno in (errno.ENOENT, errno.ENOTDIR,
                                                      errno.ELOOP):
            return  # vanished (or became a symlink) while we looked: a backup running now
        self.scan.error_count += 1
        if len(self.scan.errors) < ERRORS_KEPT:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.scan.errors.append("%s: %s" % (path, reason))

    def walk(self, start):
        """Walk the directory ``start`` (a task: see _one_dir) and everything under it within
        max_depth, depth first: the pending directories are the only memory kept."""
        stack = [start]
        while stack:
            for sub in self._one_dir(stack.pop()):
                stack.append(sub)

    def _one_dir(self, task):
        """List one directory; return its subdirectories to descend into as tasks.

        A task is (parent, name, path, depth): the directory ``name`` in the open directory
        ``parent`` (a _Parent; None for the root, opened by ``path``), ``path`` only for the
        words. A directory is opened relative to its parent's descriptor with O_NOFOLLOW, never
        by its path: a directory swapped for a symlink by another user (the walk runs as root)
        is not followed, at any level, as find does not follow links; the root may be one."""
        parent, name, path, level = task
        self.scan.dirs += 1
        try:
            if parent is None:
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            else:
                fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                             dir_fd=parent.fd)
        except OSError as exc:
            self.error(path, exc)
            return ()
        finally:
            if parent is not None:
                parent.release()
        depth = level + 1
        descend = self.max_depth is None or depth < self.max_depth
        match, index, want_dirs = self.match, self.index, self.want_dirs
        best = self.best
        files = nbytes = 0
        subdirs = []
        newest = denied = None
        keep = False
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        if descend:
                            subdirs.append(entry.name)
                        if want_dirs and (match is None or match(entry.name)):
                            try:
                                st = entry.stat(follow_symlinks=False)
                            except OSError as exc:
                                if exc.errno != errno.ENOENT:
                                    denied = exc
                                continue
                            if st[index] > best:
                                best, newest = st[index], (entry.name, st[SIZE], True)
                        continue
                    if want_dirs or (match is not None and not match(entry.name)):
                        continue
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError as exc:
                        if exc.errno != errno.ENOENT:  # a directory readable, not searchable
                            denied = exc
                        continue
                    if st[0] & S_IFMT != S_IFREG:
                        continue
                    files += 1
                    nbytes += st[SIZE]
                    if st[index] > best:
                        best, newest = st[index], (entry.name, st[SIZE], False)
            keep = bool(subdirs)
        except OSError as exc:
            self.error(path, exc)
            subdirs = []
        finally:
            if not keep:
                os.close(fd)
        if denied is not None:
            self.error(path, denied)
        self.scan.files += files
        self.scan.bytes += nbytes
        if newest is not None:
            self.best = best
            self.best_path = os.path.join(path, newest[0])
            self.best_size, self.best_dir = newest[1], newest[2]
        if not subdirs:
            return []
        here = _Parent(fd, len(subdirs))
        return [(here, sub, os.path.join(path, sub), depth) for sub in subdirs]

    def result(self):
        scan = self.scan
        if self.best_path is not None:
            scan.newest = Entry(self.best_path, float(self.best), self.best_size,
                                self.best_dir, self.time_field)
        return scan


def default_workers():
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def scan_tree(root, kind="file", pattern=None, max_depth=None, time_field="mtime",
              workers=None, timeout=None):
    """The newest ``kind`` ('file' or 'dir') under ``root`` whose name matches the shell
    pattern ``pattern``, at most ``max_depth`` levels down (1: only root's own entries), by
    ``time_field`` ('mtime' or 'ctime'); with kind 'file', also the count and total size of
    the matching regular files (kind 'dir' leaves files alone). ``root`` itself never counts
    as the newest directory; a ``root`` that is a file is its own newest entry.

    Symbolic links are not followed (as find). Directories that cannot be read are counted and
    named in ``Scan.errors``; entries that vanish during the walk are skipped. ``workers`` > 1
    forks that many processes in all (this one included) to share the subtrees.
    Raises NotFound, or OSError when ``root`` cannot be read."""
    try:
        st = os.stat(root)
    except FileNotFoundError:
        raise NotFound(root) from None
    if not stat.S_ISDIR(st.st_mode):
        index = CTIME if time_field == "ctime" else MTIME
        scan = Scan(files=1, bytes=st.st_size)
        if kind == "file":
            scan.newest = Entry(root, float(st[index]), st.st_size, False, time_field)
        return scan
    os.close(os.open(root, os.O_RDONLY | os.O_DIRECTORY))  # unreadable root: OSError now
    walker = _Walker(kind, pattern, max_depth, time_field)
    workers = default_workers() if workers is None else max(1, workers)
    if workers == 1:
        walker.walk((None, None, root, 0))
        return walker.result()
    frontier = _expand(walker, root, 16 * workers)
    if len(frontier) < 2:
        for task in frontier:
            walker.walk(task)
        return walker.result()
    return _parallel(walker, frontier, workers, timeout)


def _expand(walker, root, enough):
    """Walk breadth-first until the directories still to walk are ``enough`` (or none)."""
    frontier = [(None, None, root, 0)]
    while frontier and len(frontier) < enough:
        following = []
        for task in frontier:
            following.extend(walker._one_dir(task))
        frontier = following
    return frontier


def _parallel(walker, frontier, workers, timeout):
    """Share ``frontier``'s subtrees between this process and ``workers - 1`` forked ones.

    Tasks are slices of the frontier written to a pipe before the fork; every process reads
    8-byte tasks until the pipe is empty, so a process that finishes early takes more. Each
    child sends its Scan back as JSON on a pipe of its own and leaves with os._exit. When time
    runs out (or anything else goes wrong here), the children are killed."""
    count = min(len(frontier), 64 * workers)
    bounds = [len(frontier) * i // count for i in range(count + 1)]
    task_r, task_w = os.pipe()
    os.write(task_w, b"".join(struct.pack("II", bounds[i], bounds[i + 1])
                              for i in range(count)))
    os.close(task_w)
    children = []
    try:
        for _ in range(workers - 1):
            result_r, result_w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: walk, report, leave without running any cleanup
                code = 0
                try:
                    signal.signal(signal.SIGALRM, signal.SIG_DFL)
                    os.close(result_r)
                    walker.reset()
                    _take_tasks(walker, frontier, task_r)
                    data = json.dumps(walker.result().as_dict()).encode()
                    while data:
                        data = data[os.write(result_w, data):]
                except BaseException:  # the parent sees the missing result
                    code = 1
                os._exit(code)
            os.close(result_w)
            children.append((pid, result_r))
        _take_tasks(walker, frontier, task_r)
        scan = walker.result()
        for _pid, result_r in children:
            scan.merge(_read_child(result_r, timeout))
        scan.workers = workers
        return scan
    finally:
        os.close(task_r)
        for pid, result_r in children:
            try:
                os.close(result_r)
            except OSError:
                pass
            _reap(pid)


def _take_tasks(walker, frontier, task_r):
    while True:
        task = os.read(task_r, 8)
        if len(task) < 8:
            return
        start, end = struct.unpack("II", task)
        for task in frontier[start:end]:
            walker.walk(task)


def _read_child(fd, timeout):
    chunks = []
    while True:
        ready, _, _ = select.select([fd], [], [], deadline.remaining(timeout))
        if not ready:
            raise deadline.Timeout("a tree walker did not finish in time")
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    if not chunks:
        raise OSError("a tree walker process failed")
    data = json.loads(b"".join(chunks))
    newest = data.pop("newest")
    scan = Scan(**data)
    scan.newest = Entry(**newest) if newest else None
    return scan


def _reap(pid):
    """Collect a child; one still running (we are leaving early) is killed first. A child
    stuck in the kernel (a hung NFS mount) is left behind rather than waited for."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0]:
            return
        os.kill(pid, signal.SIGKILL)
        for _ in range(20):  # at most 0.2 s: SIGKILL takes effect at once unless stuck
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
            time.sleep(0.01)
    except (ChildProcessError, ProcessLookupError):
        pass


# -- snapshots -----------------------------------------------------------------------------

_FIELDS = {
    "Y": r"(?P<Y>\d{4})", "y": r"(?P<y>\d{2})", "m": r"(?P<m>\d{2})", "d": r"(?P<d>\d{2})",
    "H": r"(?P<H>\d{2})", "M": r"(?P<M>\d{2})", "S": r"(?P<S>\d{2})", "s": r"(?P<s>\d{1,12})",
}

# Dates found in names when no --name-format is given: 2024-05-01, 2024-05-01_0300,
# 2024-05-01T03:00:00, 2024-05-01-030000, 20240501, 20240501-0300, 20240501T030000.
_AUTO = re.compile(
    r"(?<!\d)(?P<Y>(?:19|20)\d\d)(?P<sep>-?)(?P<m>[01]\d)(?P=sep)(?P<d>[0-3]\d)"
    r"(?:[T_ .-]?(?P<H>[0-2]\d):?(?P<M>[0-5]\d)(?::?(?P<S>[0-5]\d))?)?(?!\d)")

RSNAPSHOT = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*\.\d+$")


class NameFormat:
    """A --name-format: strftime-like fields %Y %y %m %d %H %M %S %s (epoch) and %%, ``*``
    for any text, everything else literal; matched against a whole name. The names
    'auto' (a date anywhere in the name, else the entry's own time) and 'rsnapshot'
    (``<interval>.<N>`` names, timed by the entry's own time) are built in."""

    def __init__(self, text="auto"):
        self.text = text
        self.regex = None
        if text in ("auto", "rsnapshot"):
            return
        parts, i = [], 0
        seen = set()
        while i < len(text):
            ch = text[i]
            if ch == "%":
                if i + 1 >= len(text):
                    raise ValueError("%r ends with a lone %%" % text)
                field = text[i + 1]
                if field == "%":
                    parts.append("%")
                elif field in _FIELDS:
                    if field in seen:
                        raise ValueError("%r uses %%%s twice" % (text, field))
                    seen.add(field)
                    parts.append(_FIELDS[field])
                else:
                    raise ValueError("%r: %%%s is not one of %%Y %%y %%m %%d %%H %%M %%S %%s"
                                     % (text, field))
                i += 2
                continue
            parts.append(".*?" if ch == "*" else re.escape(ch))
            i += 1
        if seen and not ({"Y", "y"} & seen and {"m", "d"} <= seen) and "s" not in seen:
            raise ValueError("%r needs a whole date: %%Y (or %%y), %%m and %%d, or %%s" % text)
        self.regex = re.compile("^" + "".join(parts) + "$")
        self.dated = bool(seen)

    def matches(self, name):
        if self.text == "auto":
            return True
        if self.text == "rsnapshot":
            return bool(RSNAPSHOT.match(name))
        return bool(self.regex.match(name))

    def time(self, name, tz=None):
        """The time a name gives (seconds since the epoch), or None when it gives none.
        Names without a zone are read in ``tz`` (None: the local time zone)."""
        if self.text == "rsnapshot":
            return None
        if self.text == "auto":
            # the last date in a name is the most specific (host-2024-05-01)
            found = list(_AUTO.finditer(name))
            return _fields_time(found[-1].groupdict(), tz) if found else None
        match = self.regex.match(name)
        if not match or not self.dated:
            return None
        return _fields_time(match.groupdict(), tz)


def name_time(name, name_format="auto", tz=None):
    """Pure: the time a snapshot's name gives, or None (see NameFormat)."""
    return NameFormat(name_format).time(name, tz)


def _fields_time(fields, tz):
    if fields.get("s") is not None:
        return float(fields["s"])
    year = int(fields["Y"]) if fields.get("Y") else 2000 + int(fields["y"])
    try:
        when = datetime.datetime(
            year, int(fields["m"]), int(fields["d"]), int(fields.get("H") or 0),
            int(fields.get("M") or 0), int(fields.get("S") or 0), tzinfo=tz)
    except ValueError:
        return None  # 2024-13-45: not a date, so not a snapshot name
    return when.timestamp()


def list_snapshots(root, name_format="auto", pattern=None, kind="dir", time_field="mtime",
                   tz=None):
    """The entries directly under ``root`` that are snapshots: directories (or files, with
    ``kind`` 'file') whose names fit ``name_format`` and the shell pattern ``pattern``; hidden
    names (a leading '.') are left out. Each Entry's time is the time its name gives, else its
    own mtime/ctime. Returns (snapshots, number of entries looked at). Raises NotFound."""
    fmt = name_format if isinstance(name_format, NameFormat) else NameFormat(name_format)
    match = re.compile(fnmatch.translate(pattern)).match if pattern else None
    index = CTIME if time_field == "ctime" else MTIME
    found, seen = [], 0
    try:
        entries = os.scandir(root)
    except FileNotFoundError:
        raise NotFound(root) from None
    with entries:
        for entry in entries:
            seen += 1
            name = entry.name
            if name.startswith(".") or (match and not match(name)) or not fmt.matches(name):
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
                st = entry.stat(follow_symlinks=True)
            except OSError:
                continue
            if is_dir != (kind == "dir") or (not is_dir and not stat.S_ISREG(st.st_mode)):
                continue
            when = fmt.time(name, tz)
            if when is None and fmt.text not in ("auto", "rsnapshot") and fmt.dated:
                continue  # the name fits the pattern but holds no real date
            source = "name" if when is not None else time_field
            found.append(Entry(entry.path, when if when is not None else float(st[index]),
                               0 if is_dir else st.st_size, is_dir, source))
    if fmt.text == "auto" and any(e.time_source == "name" for e in found):
        # Dated names are there: an undated entry beside them ('latest' -> a snapshot,
        # lost+found) is not a snapshot of its own.
        found = [e for e in found if e.time_source == "name"]
    return found, seen


def newest_snapshot(snapshots):
    """The newest of ``snapshots`` (ties: the later name, so daily.0 beats nothing older)."""
    return max(snapshots, key=lambda e: (e.time, os.path.basename(e.path)), default=None)


def oldest_snapshot(snapshots):
    """The oldest of ``snapshots``: how far back the kept versions reach."""
    return min(snapshots, key=lambda e: (e.time, os.path.basename(e.path)), default=None)


# -- stamp files ---------------------------------------------------------------------------

_ISO = re.compile(
    r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?)?(?!\d)")
_EPOCH = re.compile(r"^\s*@?(\d{9,12})(?:\.\d+)?\s*$")


def parse_stamp(text, tz=None):
    """Pure: the time a stamp file's text holds, or None. Accepts an ISO 8601 timestamp
    (``2024-05-01T03:00:00+02:00``, ``2024-05-01 03:00:00``, ``...Z``, a bare date) anywhere
    in the first non-empty line, or seconds since the epoch (``date +%s``) alone on it.
    A timestamp without a zone is read in ``tz`` (None: the local time zone)."""
    line = next((ln for ln in str(text).splitlines() if ln.strip()), "")
    epoch = _EPOCH.match(line)
    if epoch:
        return float(epoch.group(1))
    match = _ISO.search(line)
    if not match:
        return None
    y, mo, d, h, mi, s, frac, zone = match.groups()
    zone_info = tz
    if zone:
        if zone == "Z":
            zone_info = datetime.timezone.utc
        else:
            digits = zone[1:].replace(":", "")
            minutes = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) > 2 else 0)
            if minutes >= 24 * 60:
                return None
            zone_info = datetime.timezone(datetime.timedelta(
                minutes=minutes if zone[0] == "+" else -minutes))
    try:
        when = datetime.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0),
                                 int(s or 0), int((frac or "0")[:6].ljust(6, "0")),
                                 tzinfo=zone_info)
    except ValueError:
        return None
    return when.timestamp()


class Stamp(collections.namedtuple("Stamp", "path mtime ctime text")):
    """A stamp file: its path, times and the start of its text."""
    __slots__ = ()


def read_stamp(path, limit=4096):
    """A stamp file's times and the start of its text. Raises NotFound when it is missing."""
    try:
        st = os.stat(path)
        data = bounded.read_file(path, limit, keep="start")
    except FileNotFoundError:
        raise NotFound(path) from None
    return Stamp(path, st.st_mtime, st.st_ctime, data.decode("utf-8", "replace"))


# -- backup logs ---------------------------------------------------------------------------

# rsync's own failure line: "rsync error: some files/attrs were not transferred ... (code 23)"
RSYNC_ERROR = re.compile(r"rsync error:|rsync: connection unexpectedly closed")
# rsync's last line after a run that finished (with -v or --stats)
RSYNC_DONE = re.compile(r"total size is [\d,.]+\s+speedup is")
# An exit code a job recorded: "exit code 23", "exit status: 0", "exited with 1", "rc=2"
EXIT_CODE = re.compile(
    r"\b(?:exit(?:ed)?(?:\s+with)?(?:\s+(?:code|status))?|return\s+code|rc)\s*[:=]?\s*(\d+)\b",
    re.IGNORECASE)


class Verdict(collections.namedtuple("Verdict", "state line lineno note",
                                     defaults=("", 0, ""))):
    """How a log judges the newest backup run: state 'ok', 'error' or 'none' (nothing
    decisive found), the deciding line and its number (1-based, counted in the text read)."""
    __slots__ = ()


def _classify(line, ok_patterns, error_patterns):
    if RSYNC_ERROR.search(line) or any(p.search(line) for p in error_patterns):
        return "error"
    code = EXIT_CODE.search(line)
    if code:
        return "error" if int(code.group(1)) != 0 else "ok"
    if RSYNC_DONE.search(line) or any(p.search(line) for p in ok_patterns):
        return "ok"
    return None


def log_verdict(text, ok_patterns=(), error_patterns=(), start_pattern=None):
    """Pure: the verdict of a backup log on its newest run.

    Built in: rsync's ``rsync error:`` lines and a non-zero recorded exit code are errors;
    rsync's ``total size is ... speedup is`` line and a recorded exit code 0 are successes.
    ``ok_patterns`` and ``error_patterns`` (compiled regexes) add to them; a line that is both
    counts as an error. Without ``start_pattern`` the last decisive line decides (an old error
    followed by a later success is history). With it, the log is cut into runs at each line
    it matches, and the newest run with a decisive line decides: any error in it fails it
    (a run still going, without a decisive line yet, leaves the verdict to the run before)."""
    lines = str(text).splitlines()
    if start_pattern is None:
        for number in range(len(lines), 0, -1):
            kind = _classify(lines[number - 1], ok_patterns, error_patterns)
            if kind:
                return Verdict(kind, lines[number - 1].strip(), number)
        return Verdict("none")
    starts = [i for i, line in enumerate(lines) if start_pattern.search(line)] or [0]
    if starts[0] != 0:
        starts.insert(0, 0)
    ends = starts[1:] + [len(lines)]
    skipped = 0
    for begin, end in reversed(list(zip(starts, ends))):
        first_error = first_ok = None
        for i in range(begin, end):
            kind = _classify(lines[i], ok_patterns, error_patterns)
            if kind == "error" and first_error is None:
                first_error = i
            elif kind == "ok":
                first_ok = i if first_ok is None else first_ok
        decided = first_error if first_error is not None else first_ok
        if decided is None:
            skipped += 1
            continue
        note = ("the newest run (from line %d) has no result yet" % (starts[-1] + 1)
                if skipped else "")
        return Verdict("error" if first_error is not None else "ok",
                       lines[decided].strip(), decided + 1, note)
    return Verdict("none")


def read_log(path, limit=LOG_TAIL):
    """The last ``limit`` bytes of a log as text (from a line start). Raises NotFound."""
    try:
        data = bounded.read_file(path, limit, keep="end")
    except FileNotFoundError:
        raise NotFound(path) from None
    if len(data) == limit:  # cut from a longer file: start at a line
        data = data[data.find(b"\n") + 1:]
    return data.decode("utf-8", "replace")


class Missing(collections.namedtuple("Missing", "path parent mount unmounted")):
    """Where a backup that does not exist would be: ``parent`` its nearest existing parent,
    ``mount`` the mount point of the filesystem that parent is on, ``unmounted`` the mount
    point on its way that /etc/fstab lists but that is not mounted now ('' if none)."""
    __slots__ = ()


def _fstab_mount_points(text):
    points = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and not fields[0].startswith("#") and fields[1].startswith("/"):
            points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[1]))
    return points


def missing_place(path, fstab="/etc/fstab"):
    """A Missing for ``path``, which does not exist: the loss the check guards, said with
    where it would have been (an unmounted /data2, a deleted mirror)."""
    parent = os.path.dirname(path.rstrip("/")) or "/"
    while parent != "/" and not os.path.isdir(parent):
        parent = os.path.dirname(parent)
    mount = parent
    while mount != "/" and not os.path.ismount(mount):
        mount = os.path.dirname(mount)
    try:
        listed = _fstab_mount_points(bounded.read_text(fstab, 256 * 1024, keep="start"))
    except OSError:
        listed = []
    unmounted = ""
    for point in listed:
        point = point.rstrip("/") or "/"
        inside = path == point or path.startswith(point + "/")
        if inside and point != "/" and not os.path.ismount(point) and len(point) > len(unmounted):
            unmounted = point
    return Missing(path, parent, mount, unmounted)


def running_copies(path, programs=("rsync",)):
    """The Runnings of copy programs at work on ``path`` now: a process of this host named
    one of ``programs`` with ``path`` (or a path inside it, or one it is inside of) among its
    arguments, e.g. the nightly ``rsync -a /data1/ /data2/mirror``. Its start is the copy's
    start."""
    import psutil

    from osop_checks.sources.repository import RUNNING, Running, this_host

    root = path.rstrip("/") or "/"
    found = []
    for process in psutil.process_iter(["pid", "name", "cmdline", "create_time"]):
        info = process.info
        if info.get("name") not in programs or not info.get("cmdline"):
            continue
        for arg in info["cmdline"][1:]:
            arg = arg.rstrip("/") or "/"
            if arg.startswith("/") and (arg == root or arg.startswith(root + "/")
                                        or root.startswith(arg + "/")):
                found.append(Running(this_host(), info["pid"], RUNNING, info["create_time"],
                                     info["create_time"],
                                     command=" ".join(info["cmdline"][:3])))
                break
    return found
