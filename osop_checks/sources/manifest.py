"""Manifests of directory trees (relative path, type, size, mtime), local or over ssh, and
their streaming comparison.

A manifest is produced on the side that holds the tree, with standard tools only: ``find
-printf`` piped through ``LC_ALL=C sort -z`` (NUL-terminated, so names with tabs or newlines
are safe), then ``tr`` swaps NUL and newline so that each record is one line on the way.
Both sides run the same three commands with the same arguments, so they sort alike: a
remote tree in a small POSIX sh script over ssh, a local one as a pipeline of the three
processes (a shell would cost more than the three commands of a small tree). A listing is
never held whole: ``compare`` merges the sorted source manifest with every copy's
in one pass, keeping only counters, a few examples and a bounded sample.

A record (one line) of a copy:   TYPE \\t SIZE \\t MTIME \\t PATH
A record of the source adds its ctime in front: CTIME \\t TYPE \\t SIZE \\t MTIME \\t PATH
(directories print size 0: their size depends on the filesystem, not on what they hold).
"""
from __future__ import annotations

import collections
import contextlib
import io
import logging
import os
import random
import stat
import threading
import time

from osop_checks import bounded, deadline, units
from osop_checks.record import Record

log = logging.getLogger("nagiosplugin")

# address, proc and sources.ssh are imported where a remote tree, a command or an error needs
# them: a run over small local trees (walked in this process, see listing) needs none of them,
# and they and what they import (subprocess, the address parser) are a cost at every start.

# How much memory sort may take before it spills to temporary files (in $TMPDIR, never the
# tree being listed).
SORT_BUFFER = "8M"
EXAMPLES = 5

# The remote side of a listing: listing_pipeline's find, sort and tr (each shell-quoted into
# the %s) in a POSIX sh script. Their exit codes come back through fd 5, since a POSIX sh
# pipeline only reports the last command's.
LIST_SCRIPT = (
    'export LC_ALL=C; exec 3>&1; '
    's=$( { { %s; echo "$?" >&5; } | { %s; echo "$?" >&5; } | %s >&3; } 5>&1 ); '
    'case $s in *[1-9]*) exit 1;; esac')

# $1 root, $2 stamp file name (may be empty). One line: missing | notdir | unreadable |
# ok DEVICE STAMP_MTIME_OR_DASH. The stamp's mtime to the nanosecond (%.9Y, GNU stat), as the
# ctimes it is compared with: %Y cuts it to the second, and a change made in the stamp's own
# second would then read as pending.
PROBE_SCRIPT = (
    'export LC_ALL=C; [ -e "$1" ] || { echo missing; exit 0; }; '
    '[ -d "$1" ] || { echo notdir; exit 0; }; '
    'cd "$1" 2>/dev/null && [ -r . ] && [ -x . ] || { echo unreadable; exit 0; }; '
    'dev=$(stat -L -c %d .) || exit 1; stamp=-; '
    'if [ -n "$2" ]; then stamp=$(stat -c %.9Y -- "$2" 2>/dev/null) || stamp=-; fi; '
    'echo "ok $dev $stamp"')

# $1 root, then relative paths: their sha256, NUL-terminated records "HASH  PATH".
HASH_SCRIPT = 'cd "$1" || exit 2; shift; exec sha256sum -z -- "$@"'

# A local tree of at most this many entries is walked in this process (listing, _walk)
# instead of piped through find, sort and tr. Measured in a clean Debian 12 root (python3.11,
# the source's format): the walk costs about 6 us of CPU an entry, the three commands about 4
# us an entry plus 4 ms to start them (and subprocess to import, once): both take some 13 ms
# at 2,000 entries. Past it, the walk gives up after counting names (about 1 us an entry, no
# lstat yet): 2 ms lost on a tree of any size, nothing beside a million-file listing.
WALK_BUDGET = 2000

COPY_FORMAT = ("d\\t0\\t%T@\\t%P\\0", "%y\\t%s\\t%T@\\t%P\\0", 4)
SOURCE_FORMAT = ("%C@\\td\\t0\\t%T@\\t%P\\0", "%C@\\t%y\\t%s\\t%T@\\t%P\\0", 5)


class LocationError(ValueError):
    """A location that cannot be a tree: relative path, empty host ..."""


# Records: named tuples and osop_checks.record (no dataclasses, a cost at every start).
class Location(collections.namedtuple("Location", "path host user port",
                                      defaults=(None, None, None))):
    """A directory tree: a local ``path``, or ``path`` on ``host`` over ssh."""
    __slots__ = ()

    @property
    def remote(self):
        return self.host is not None

    def __str__(self):  # as the admin writes it: [v6] in brackets
        if self.host is None:
            return self.path
        from osop_checks import address

        return str(address.Remote(self.user, self.host, self.port, self.path))


def parse_location(text):
    """``/path``, ``[user@]host:/path`` or ``ssh://[user@]host[:port]/path`` (an IPv6
    address in brackets) as a Location: address.parse_remote_path, the path normalised."""
    text = str(text)
    if text.startswith("/"):  # a local path, as address.parse_remote_path reads it
        return Location(os.path.normpath(text))
    from osop_checks import address

    try:
        remote = address.parse_remote_path(text)
    except ValueError as exc:
        raise LocationError(str(exc)) from None
    return Location(os.path.normpath(remote.path), remote.host, remote.user, remote.port)


def _options(location, options):
    """The ssh.Options for a remote ``location``: ``options`` (None: ssh's own), its port
    that of the location when it names one."""
    if options is None:
        from osop_checks.sources import ssh

        options = ssh.DEFAULT
    if location.port:
        return options._replace(port=location.port)
    return options


# -- probing ------------------------------------------------------------------------------

class Probe(collections.namedtuple("Probe", "state device stamp_mtime",
                                   defaults=(None, None))):
    """What a first look at a tree found: ``state`` ok | missing | notdir | unreadable;
    the filesystem (device number) it is on, and the stamp file's mtime if asked for."""
    __slots__ = ()


def parse_probe(line):
    from osop_checks import proc

    words = line.split()
    if not words or words[0] not in ("ok", "missing", "notdir", "unreadable"):
        raise proc.CommandError("unexpected answer to the probe: %r" % line[:80])
    if words[0] != "ok":
        return Probe(words[0])
    if len(words) != 3:
        raise proc.CommandError("unexpected answer to the probe: %r" % line[:80])
    try:
        return Probe("ok", int(words[1]), None if words[2] == "-" else float(words[2]))
    except ValueError:
        raise proc.CommandError("unexpected answer to the probe: %r" % line[:80]) from None


def probe(location, stamp=None, options=None):
    """Look at a tree without listing it. Remote failures of ssh raise ssh.SshError.
    ``options``: ssh.Options for a remote tree (None: ssh's own)."""
    if location.remote:
        from osop_checks.sources import ssh

        result = ssh.run(location.host, ["sh", "-c", PROBE_SCRIPT, "sh", location.path,
                                         stamp or ""], _options(location, options),
                         user=location.user)
        lines = result.stdout.strip().splitlines()
        return parse_probe(lines[-1] if lines else "")
    path = location.path
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return Probe("missing")
    except PermissionError:
        return Probe("unreadable")
    if not stat.S_ISDIR(info.st_mode):
        return Probe("notdir")
    if not os.access(path, os.R_OK | os.X_OK):
        return Probe("unreadable")
    stamp_mtime = None
    if stamp:
        try:
            stamp_mtime = os.stat(os.path.join(path, stamp)).st_mtime
        except OSError:
            stamp_mtime = None
    return Probe("ok", info.st_dev, stamp_mtime)


# -- listing ------------------------------------------------------------------------------

def listing_argv(location, source=False, sort_buffer=SORT_BUFFER):
    """The remote argv that writes the sorted manifest of a tree: listing_pipeline's
    commands in LIST_SCRIPT."""
    import shlex  # POSIX quoting: the remote sh may be dash

    return ["sh", "-c", LIST_SCRIPT % tuple(
        " ".join(shlex.quote(word) for word in argv)
        for argv in listing_pipeline(location, source, sort_buffer))]


def listing_pipeline(location, source=False, sort_buffer=SORT_BUFFER):
    """The argvs of find, sort and tr that write the sorted manifest of a tree: piped by
    proc for a local tree (proc runs every command with LC_ALL=C), in LIST_SCRIPT for a
    remote one."""
    dirs, others, key = SOURCE_FORMAT if source else COPY_FORMAT
    return [["find", "-H", location.path, "-mindepth", "1", "(", "-type", "d", "-printf",
             dirs, ")", "-o", "-printf", others],
            ["sort", "-z", "-t", "\t", "-k%d" % key, "-S", sort_buffer],
            ["tr", "\\000\\n", "\\n\\000"]]


def listing(location, source=False, options=None, timeout=None, budget=WALK_BUDGET):
    """A context manager yielding the sorted manifest lines of a tree (see module doc). A
    local tree of at most ``budget`` entries is walked in this process (``_walk``: the same
    lines), a larger one is listed by listing_pipeline's commands."""
    if location.remote:
        from osop_checks.sources import ssh

        return ssh.stream(location.host, listing_argv(location, source),
                          _options(location, options), user=location.user, timeout=timeout)
    lines = _walk(location.path, source, budget, timeout)
    if lines is not None:
        log.info("listed %s in this process: %d entries (find, sort and tr list a tree of "
                 "more than %d)", location.path, len(lines), budget)
        return contextlib.nullcontext(iter(lines))
    from osop_checks import proc

    return proc.stream_pipeline(listing_pipeline(location, source), timeout=timeout)


# find's %y of each file type (find -H: below the root, a link is a link).
_KINDS = {stat.S_IFREG: b"f", stat.S_IFDIR: b"d", stat.S_IFLNK: b"l", stat.S_IFIFO: b"p",
          stat.S_IFSOCK: b"s", stat.S_IFCHR: b"c", stat.S_IFBLK: b"b"}


def _walk(root, source, budget, timeout=None):
    """The lines listing_pipeline's find, sort and tr write for the local tree ``root``, made
    in this process: a record in find's format per entry (os.lstat's fields; %T@ as find
    prints it: seconds, a dot, nine digits of nanoseconds and a 0), sorted by the path's
    bytes (sort -z in the C locale, -kN: the path is the key; paths are unique, so sort's
    whole-record tie-break never decides), NUL and newline swapped as tr does, decoded as
    proc decodes a command's lines.

    None when the tree has more than ``budget`` entries (found before any is stat'ed: the
    names alone are cheap to count), or when anything is not as plain as a small tree's
    files: an error of any kind (an unreadable or vanished entry: find says so and exits 1,
    which the pipeline's caller judges), a file type find has another letter for, an entry
    that changed type between the two looks, a record longer than proc's line limit. The
    pipeline then lists the tree, and what it says stands. Runs out of ``timeout`` (capped
    by the check's --timeout) as a command would: deadline.Timeout."""
    with _WALKING:
        return _walk_alone(root, source, budget, deadline.remaining(timeout))


# One walk at a time: the trees are listed from threads (three_copies starts each as its
# probe answers), and walks side by side would hand the GIL over at every lstat, a context
# switch each (measured: a survey of three small trees took twice the CPU of its walks).
_WALKING = threading.Lock()


def _walk_alone(root, source, budget, limit):
    end = None if limit is None else time.monotonic() + limit
    top = os.fsencode(root)
    found = []  # (path relative to root, its os.DirEntry)
    pending = [b""]  # directories to read: relative to root, ending in "/" ("" the root)
    records = []
    try:
        while pending:
            _in_time(end, root, limit)
            below = pending.pop()
            with os.scandir(top + b"/" + below if below else top) as entries:
                for entry in entries:
                    if len(found) == budget:
                        return None
                    path = below + entry.name
                    found.append((path, entry))
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(path + b"/")
        for count, (path, entry) in enumerate(found):
            if not count % 256:
                _in_time(end, root, limit)
            info = entry.stat(follow_symlinks=False)
            kind = _KINDS.get(stat.S_IFMT(info.st_mode))
            if kind is None or (kind == b"d") != entry.is_dir(follow_symlinks=False):
                return None
            size = 0 if kind == b"d" else info.st_size
            seconds, nanoseconds = divmod(info.st_mtime_ns, 1000000000)
            if source:
                record = b"%d.%09d0\t%s\t%d\t%d.%09d0\t%s" % (
                    *divmod(info.st_ctime_ns, 1000000000), kind, size, seconds, nanoseconds,
                    path)
            else:
                record = b"%s\t%d\t%d.%09d0\t%s" % (kind, size, seconds, nanoseconds, path)
            if len(record) > bounded.LIMIT:
                return None
            records.append((path, record))
    except OSError:
        return None
    records.sort()
    # tr's swap and proc's decoding, on all the records at once (UTF-8 resynchronises at
    # every newline, so it decodes as line by line); lines end at "\n" only.
    listed = b"".join([record + b"\0" for _path, record in records]).translate(_TR)
    return list(io.StringIO(listed.decode("utf-8", "surrogateescape"), newline="\n"))


_TR = bytes.maketrans(b"\0\n", b"\n\0")


def _in_time(end, root, limit):
    if end is not None and time.monotonic() > end:
        raise deadline.Timeout("listing %s took longer than %s" % (
            root, units.format_seconds(limit)))


class Entry:
    """One parsed record (``ctime``: the source's only); slots: one is made per line."""
    __slots__ = ("path", "kind", "size", "mtime", "ctime")

    def __init__(self, path, kind, size, mtime, ctime=None):
        self.path = path
        self.kind = kind
        self.size = size
        self.mtime = mtime
        self.ctime = ctime

    def __repr__(self):
        return "Entry(%r, %r, %r, %r, %r)" % (self.path, self.kind, self.size, self.mtime,
                                              self.ctime)

    @property
    def key(self):
        return self.path.encode("utf-8", "surrogateescape")


def parse_copy_record(line):
    kind, size, mtime, path = line.rstrip("\n").split("\t", 3)
    return Entry(path.replace("\0", "\n"), kind, int(size), float(mtime))


def parse_source_record(line):
    ctime, rest = line.split("\t", 1)
    entry = parse_copy_record(rest)
    entry.ctime = float(ctime)
    return entry


def _key(line):
    """The sort key of a copy record: its path as bytes (sort -z ran in the C locale)."""
    return line.rstrip("\n").split("\t", 3)[3].encode("utf-8", "surrogateescape")


# -- comparing ----------------------------------------------------------------------------

class Tally(Record):
    """What one copy lacks or has different, compared with the source.

    ``pending`` counts entries the copy lacks or holds differently that changed in the
    source after the copy's last sync (see compare): not defects, a sync is still due.
    ``oldest_change`` is the ctime of the oldest change in the source that the copy does
    not have yet, pending or not; None when it has them all. ``tree`` counts the copy's own
    entries and bytes."""

    def __init__(self, equal=0, missing=0, extra=0, differing=0, pending=0,
                 oldest_change=None, oldest_path=None, examples=None, sampled_bad=None,
                 verified=0, content=0, tree=None):
        self.equal = equal
        self.missing = missing
        self.extra = extra
        self.differing = differing
        self.pending = pending
        self.oldest_change = oldest_change
        self.oldest_path = oldest_path  # the entry of that change (a directory: entries added)
        self.examples = examples if examples is not None else {
            "missing": [], "extra": [], "differing": []}
        self.sampled_bad = sampled_bad if sampled_bad is not None else set()
        self.verified = verified
        self.content = content  # sampled files whose sha256 differs (counted in differing)
        self.tree = tree if tree is not None else Tree()

    def note(self, what, path, when=None, detail=""):
        setattr(self, what, getattr(self, what) + 1)
        if len(self.examples[what]) < EXAMPLES:
            self.examples[what].append(path + (" (%s)" % detail if detail else ""))
        self.changed(when, path)

    def changed(self, when, path=None):
        if when is not None and (self.oldest_change is None or when < self.oldest_change):
            self.oldest_change = when
            self.oldest_path = path


class Tree:
    """Aggregate counters of one tree, never its names: entries, regular files and their
    bytes, the same per top-level name (at most TOP_NAMES of them, each at most NAME_MAX
    characters, the rest together in ``other``), and, with ``since``, the regular files
    whose mtime is later (``changed``)."""

    TOP_NAMES = 100
    NAME_MAX = 100  # longer top-level names are counted in ``other`` (the state stays small)

    def __init__(self, since=None):
        self.since = since
        self.entries = 0
        self.files = 0
        self.bytes = 0
        self.changed = 0
        self.top = {}  # "docs/" or "file.txt" -> [entries, bytes]
        self.other = [0, 0]
        self._prefix = None
        self._current = None

    def add(self, kind, size, mtime, path, sign=1):
        """One record's fields as listed (strings; ``path`` may end in a newline);
        ``sign`` -1 takes it away (a copy's difference from the source, see compare)."""
        self.entries += sign
        if kind == "f":
            size = int(size) * sign
            self.files += sign
            self.bytes += size
            if self.since is not None and float(mtime) > self.since:
                self.changed += sign
        else:
            size = 0
        current = self._current
        if current is None or not path.startswith(self._prefix):
            current = self._switch(kind, path)
        current[0] += sign
        current[1] += size

    def _switch(self, kind, path):
        slash = path.find("/")
        if slash >= 0:
            name = prefix = path[:slash + 1]
        else:
            name = path.rstrip("\n").replace("\0", "\n")
            if kind == "d":
                name += "/"
            prefix = name if kind == "d" else path
        current = self.top.get(name)
        if current is None:
            if len(self.top) < self.TOP_NAMES and len(name) <= self.NAME_MAX:
                current = self.top[name] = [0, 0]
            else:
                current = self.other
        self._prefix, self._current = prefix, current
        return current

    def plus(self, delta):
        """A new Tree: this one with ``delta`` (a Tree of differences) added."""
        tree = Tree(self.since)
        tree.entries = self.entries + delta.entries
        tree.files = self.files + delta.files
        tree.bytes = self.bytes + delta.bytes
        tree.changed = self.changed + delta.changed
        tree.top = {name: list(counts) for name, counts in self.top.items()}
        tree.other = [a + b for a, b in zip(self.other, delta.other)]
        for name, (entries, size) in delta.top.items():
            counts = tree.top.get(name)
            if counts is None and len(tree.top) >= self.TOP_NAMES:
                counts = tree.other
            elif counts is None:
                counts = tree.top[name] = [0, 0]
            counts[0] += entries
            counts[1] += size
        tree.top = {name: counts for name, counts in tree.top.items() if counts[0] > 0}
        return tree

    def to_json(self):
        return {"entries": self.entries, "files": self.files, "bytes": self.bytes,
                "top": self.top, "other": self.other}


class Sample:
    """A uniform random sample of at most ``size`` paths from a stream (reservoir)."""

    def __init__(self, size, rng=None):
        self.size = size
        self.seen = 0
        self.paths = []
        self._random = (rng or random.Random()).random

    def slot(self):
        """Count one more candidate; the index it takes in the sample, or None."""
        self.seen += 1
        if len(self.paths) < self.size:
            self.paths.append(None)
            return len(self.paths) - 1
        slot = int(self._random() * self.seen)
        return slot if slot < self.size else None

    def offer(self, path):
        """Offer one path; True when it is (for now) in the sample."""
        slot = self.slot()
        if slot is None:
            return False
        self.paths[slot] = path
        return True


def _differs(src, copy, window=0):
    """Why a copy's entry differs from the source's, in a few words; '' when it does not."""
    if src.kind != copy.kind:
        return "type %s, source %s" % (copy.kind, src.kind)
    if src.kind == "d":  # its mtime only dates a change (see compare), its size is the fs'
        return ""
    if src.size != copy.size:
        return "size %d, source %d" % (copy.size, src.size)
    if abs(int(src.mtime) - int(copy.mtime)) > window:
        return "mtime differs by %ds" % (int(copy.mtime) - int(src.mtime))
    return ""


def compare(source_lines, copies, now=None, settle=3600, ignore=(), sample=None, since=None,
            source_tree=None, sample_settle=3600):
    """See _compare; a listing line that is not a record (a corrupt or foreign listing)
    raises proc.CommandError saying so, never a bare ValueError."""
    try:
        return _compare(source_lines, copies, now, settle, ignore, sample, since,
                        source_tree, sample_settle)
    except (ValueError, IndexError) as exc:
        from osop_checks import proc

        raise proc.CommandError("a listing holds a line that is not a record (%s)"
                                % exc) from None


def _compare(source_lines, copies, now=None, settle=3600, ignore=(), sample=None, since=None,
             source_tree=None, sample_settle=3600):
    """Merge the sorted source manifest with each copy's sorted manifest in one pass.

    ``copies`` is a list of line iterators; returns one Tally per copy. An entry a copy
    lacks or holds differently is *pending* (counted, not a defect) when its source ctime
    is later than that copy's last sync: ``since[i]`` (e.g. its stamp's mtime), or, where
    ``since`` is None or holds None, ``now - settle``. Every such entry, pending or not,
    sets the copy's ``oldest_change``. Paths in ``ignore`` (a stamp file) are skipped on
    both sides. Directories count when missing or extra; a directory whose mtime in the
    source is newer (entries added or removed since the copy was made) only sets the copy's
    age. ``sample`` (a Sample) gets every regular file older than ``sample_settle``; a
    sampled file that a copy does not have alike goes into that copy's ``sampled_bad``.
    ``source_tree`` (a Tree) and each Tally's ``tree`` count the trees' entries and bytes.
    """
    now = time.time() if now is None else now
    default = now - settle
    limits = [default if since is None or since[i] is None else since[i]
              for i in range(len(copies))]
    sample_limit = now - min(settle, sample_settle)
    ignore = set(ignore)
    tree = Tree() if source_tree is None else source_tree
    # The source's counting is Tree.add written out in the loop below, with local counters:
    # it runs once per source entry (a million of them in the bench), where a method call
    # per record would add to the merge's time.
    since_run = tree.since
    switch = tree._switch
    entries = files = nbytes = changed = 0
    prefix, current = "\0", tree.other  # no path starts with NUL
    tallies = [Tally() for _ in copies]
    # A copy's tree is counted as the source's plus its differences (``delta``), so the
    # common case, an identical record, costs nothing more.
    deltas = [Tree() for _ in copies]
    iters = [iter(c) for c in copies]
    heads = [next(it, None) for it in iters]
    pairs = [(i, it, tally, deltas[i], limits[i])
             for i, (it, tally) in enumerate(zip(iters, tallies))]
    for sline in source_lines:
        tab = sline.index("\t")
        rest = sline[tab + 1:]
        kind, size, mtime, path = rest.split("\t", 3)
        entries += 1
        if kind == "f":
            size_ = int(size)
            files += 1
            nbytes += size_
            if since_run is not None and float(mtime) > since_run:
                changed += 1
        else:
            size_ = 0
        if not path.startswith(prefix):
            current = switch(kind, path)
            prefix = tree._prefix
        current[0] += 1
        current[1] += size_
        in_sample = False
        if sample is not None and kind == "f" and float(sline[:tab]) <= sample_limit:
            slot = sample.slot()
            if slot is not None:
                sample.paths[slot] = parse_copy_record(rest).path
                in_sample = True
        src = None
        for i, it, tally, delta, limit in pairs:
            head = heads[i]
            if head == rest:  # the common case: the copy has the very same record
                heads[i] = next(it, None)
                tally.equal += 1
                continue
            delta.add(kind, size, None, path, -1)
            if src is None:
                src = parse_source_record(sline)
                skey = src.key
                ignored = src.path in ignore
            while head is not None and _key(head) < skey:
                _extra(tally, head, ignore, delta)
                head = next(it, None)
            if head is None or _key(head) > skey:
                heads[i] = head
                copy = None
            else:
                copy = parse_copy_record(head)
                if not ignored:
                    delta.add(copy.kind, copy.size, None, head.split("\t", 3)[3])
                heads[i] = next(it, None)
            if ignored:
                continue
            if copy is None:
                why = "missing"
            else:
                why = _differs(src, copy)
                if not why and src.kind == "d" and int(src.mtime) > int(copy.mtime):
                    tally.changed(src.ctime, src.path + "/")
            if not why:
                tally.equal += 1
                continue
            if in_sample:
                tally.sampled_bad.add(src.path)
            if src.ctime > limit:
                tally.pending += 1
                tally.changed(src.ctime, src.path)
            elif copy is None:
                tally.note("missing", src.path, src.ctime)
            else:
                tally.note("differing", src.path, src.ctime, why)
    tree.entries += entries
    tree.files += files
    tree.bytes += nbytes
    tree.changed += changed
    for i, it, tally, delta, _limit in pairs:
        head = heads[i]
        while head is not None:
            _extra(tally, head, ignore, delta)
            head = next(it, None)
        tally.tree = tree.plus(delta)
        tally.tree.since = tally.tree.changed = None
    return tallies


def _extra(tally, line, ignore, delta):
    entry = parse_copy_record(line)
    if entry.path not in ignore:
        tally.note("extra", entry.path)
        delta.add(entry.kind, entry.size, None, line.split("\t", 3)[3])


# -- checksums ----------------------------------------------------------------------------

def parse_hashes(output):
    """``sha256sum -z`` output -> {relative path: hex digest}."""
    hashes = {}
    for record in output.split("\0"):
        if len(record) > 66 and record[64:66] in ("  ", " *"):
            hashes[record[66:]] = record[:64]
    return hashes


def checksums(location, paths, options=None, timeout=None):
    """sha256 of ``paths`` (relative to the tree) on the side that holds the tree. A file
    that cannot be read is left out of the answer (sha256sum exits 1 and goes on)."""
    if not paths:
        return {}
    args = ["sh", "-c", HASH_SCRIPT, "sh", location.path] + list(paths)
    if location.remote:
        from osop_checks.sources import ssh

        result = ssh.run(location.host, args, _options(location, options),
                         user=location.user, timeout=timeout, ok_codes=(0, 1))
    else:
        from osop_checks import proc

        result = proc.run(args, timeout=timeout, ok_codes=(0, 1))
    return parse_hashes(result.stdout)
