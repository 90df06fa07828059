"""Manifests of directory trees (relative path, type, size, mtime), local or over ssh, and
their streaming comparison.

A manifest is produced on the side that holds the tree, with standard tools only: ``find
-printf`` piped through ``LC_ALL=C sort -z`` (NUL-terminated, so names with tabs or newlines
are safe), then ``tr`` swaps NUL and newline so that each record is one line on the way.
The same small POSIX sh script runs locally and remotely, so both sides sort alike. A
listing is never held whole: ``compare`` merges the sorted source manifest with every copy's
in one pass, keeping only counters, a few examples and a bounded sample.

A record (one line) of a copy:   TYPE \\t SIZE \\t MTIME \\t PATH
A record of the source adds its ctime in front: CTIME \\t TYPE \\t SIZE \\t MTIME \\t PATH
(directories print size 0: their size depends on the filesystem, not on what they hold).
"""
from __future__ import annotations

import dataclasses
import os
import random
import re
import time

from osop_checks import proc
from osop_checks.sources import ssh

# How much memory sort may take before it spills to temporary files (in $TMPDIR, never the
# tree being listed).
SORT_BUFFER = "8M"
EXAMPLES = 5

# $1 root, $2 printf format for directories, $3 for everything else, $4 sort key field,
# $5 sort buffer, $6 a tab. The exit codes of find and sort come back through fd 5, since a
# POSIX sh pipeline only reports the last command's.
LIST_SCRIPT = (
    'export LC_ALL=C; exec 3>&1; '
    's=$( { { find -H "$1" -mindepth 1 \\( -type d -printf "$2" \\) -o -printf "$3"; '
    'echo "$?" >&5; } | { sort -z -t "$6" -k"$4" -S "$5"; echo "$?" >&5; } | '
    'tr \'\\000\\n\' \'\\n\\000\' >&3; } 5>&1 ); '
    'case $s in *[1-9]*) exit 1;; esac')

# $1 root, $2 stamp file name (may be empty). One line: missing | notdir | unreadable |
# ok DEVICE STAMP_MTIME_OR_DASH
PROBE_SCRIPT = (
    'export LC_ALL=C; [ -e "$1" ] || { echo missing; exit 0; }; '
    '[ -d "$1" ] || { echo notdir; exit 0; }; '
    'cd "$1" 2>/dev/null && [ -r . ] && [ -x . ] || { echo unreadable; exit 0; }; '
    'dev=$(stat -L -c %d .) || exit 1; stamp=-; '
    'if [ -n "$2" ]; then stamp=$(stat -c %Y -- "$2" 2>/dev/null) || stamp=-; fi; '
    'echo "ok $dev $stamp"')

# $1 root, then relative paths: their sha256, NUL-terminated records "HASH  PATH".
HASH_SCRIPT = 'cd "$1" || exit 2; shift; exec sha256sum -z -- "$@"'

COPY_FORMAT = ("d\\t0\\t%T@\\t%P\\0", "%y\\t%s\\t%T@\\t%P\\0", 4)
SOURCE_FORMAT = ("%C@\\td\\t0\\t%T@\\t%P\\0", "%C@\\t%y\\t%s\\t%T@\\t%P\\0", 5)


class LocationError(ValueError):
    """A location that cannot be a tree: relative path, empty host ..."""


@dataclasses.dataclass(frozen=True)
class Location:
    """A directory tree: a local ``path``, or ``path`` on ``host`` over ssh."""
    path: str
    host: str | None = None
    user: str | None = None
    port: int | None = None

    @property
    def remote(self):
        return self.host is not None

    def __str__(self):
        if not self.remote:
            return self.path
        user = self.user + "@" if self.user else ""
        if self.port:
            return "ssh://%s%s:%d%s" % (user, self.host, self.port, self.path)
        return "%s%s:%s" % (user, self.host, self.path)


def parse_location(text):
    """``/path``, ``[user@]host:/path`` or ``ssh://[user@]host[:port]/path`` as a Location."""
    text = str(text)
    if text.startswith("/"):
        return Location(os.path.normpath(text))
    match = re.match(r"^ssh://(?:([^@/]+)@)?(\[[^\]/]+\]|[^:/@]+)(?::(\d+))?(/.*)$", text)
    if match:
        user, host, port, path = match.groups()
        if host.strip("[]").startswith("-"):
            raise LocationError("%r: a host name cannot start with '-'" % text)
        return Location(os.path.normpath(path), host.strip("[]"), user, int(port) if port
                        else None)
    match = re.match(r"^(?:([^@/:]+)@)?(\[[^\]/]+\]|[^:/@]+):(.*)$", text)
    if match:
        user, host, path = match.groups()
        if not path.startswith("/"):
            raise LocationError("%r: the path on %s must be absolute" % (text, host))
        if host.strip("[]").startswith("-"):
            raise LocationError("%r: a host name cannot start with '-'" % text)
        return Location(os.path.normpath(path), host.strip("[]"), user)
    raise LocationError("%r is not an absolute path, [user@]host:/path or "
                        "ssh://[user@]host[:port]/path" % text)


def _options(location, options):
    if location.port:
        return dataclasses.replace(options, port=location.port)
    return options


# -- probing ------------------------------------------------------------------------------

@dataclasses.dataclass
class Probe:
    """What a first look at a tree found: ``state`` ok | missing | notdir | unreadable;
    the filesystem (device number) it is on, and the stamp file's mtime if asked for."""
    state: str
    device: int | None = None
    stamp_mtime: float | None = None


def parse_probe(line):
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


def probe(location, stamp=None, options=ssh.Options()):
    """Look at a tree without listing it. Remote failures of ssh raise ssh.SshError."""
    if location.remote:
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
    import stat as stat_module
    if not stat_module.S_ISDIR(info.st_mode):
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
    """The argv (local) or the remote argv that writes the sorted manifest of a tree."""
    dirs, others, key = SOURCE_FORMAT if source else COPY_FORMAT
    return ["sh", "-c", LIST_SCRIPT, "sh", location.path, dirs, others, str(key),
            sort_buffer, "\t"]


def listing(location, source=False, options=ssh.Options(), timeout=None):
    """A context manager yielding the sorted manifest lines of a tree (see module doc)."""
    args = listing_argv(location, source)
    if location.remote:
        return ssh.stream(location.host, args, _options(location, options),
                          user=location.user, timeout=timeout)
    return proc.stream(args, timeout=timeout)


@dataclasses.dataclass
class Entry:
    """One parsed record."""
    path: str
    kind: str
    size: int
    mtime: float
    ctime: float | None = None

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

@dataclasses.dataclass
class Tally:
    """What one copy lacks or has different, compared with the source.

    ``oldest_change`` is the ctime of the oldest change in the source (outside the settle
    window) that the copy does not have yet; None when it has them all."""
    equal: int = 0
    missing: int = 0
    extra: int = 0
    differing: int = 0
    settling: int = 0
    oldest_change: float | None = None
    examples: dict = dataclasses.field(default_factory=lambda: {
        "missing": [], "extra": [], "differing": []})
    sampled_bad: set = dataclasses.field(default_factory=set)
    verified: int = 0

    def note(self, what, path, when=None, detail=""):
        setattr(self, what, getattr(self, what) + 1)
        if len(self.examples[what]) < EXAMPLES:
            self.examples[what].append(path + (" (%s)" % detail if detail else ""))
        self.changed(when)

    def changed(self, when):
        if when is not None and (self.oldest_change is None or when < self.oldest_change):
            self.oldest_change = when


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


def compare(source_lines, copies, now=None, settle=3600, ignore=(), sample=None):
    """See _compare; a listing line that is not a record (a corrupt or foreign listing)
    raises proc.CommandError saying so, never a bare ValueError."""
    try:
        return _compare(source_lines, copies, now, settle, ignore, sample)
    except (ValueError, IndexError) as exc:
        raise proc.CommandError("a listing holds a line that is not a record (%s)"
                                % exc) from None


def _compare(source_lines, copies, now=None, settle=3600, ignore=(), sample=None):
    """Merge the sorted source manifest with each copy's sorted manifest in one pass.

    ``copies`` is a list of line iterators; returns one Tally per copy. Entries whose source
    ctime is within ``settle`` seconds of ``now`` do not count (a sync may be running).
    Paths in ``ignore`` (a stamp file) are skipped on both sides. Directories count when
    missing or extra; a directory whose mtime in the source is newer (entries added or
    removed since the copy was made) only sets the copy's age. ``sample`` (a Sample) gets
    every regular file that is not settling; a sampled file that a copy does not have
    alike goes into that copy's ``sampled_bad``.
    """
    now = time.time() if now is None else now
    limit = now - settle
    ignore = set(ignore)
    tallies = [Tally() for _ in copies]
    iters = [iter(c) for c in copies]
    heads = [next(it, None) for it in iters]
    pairs = list(zip(range(len(iters)), iters, tallies))
    for sline in source_lines:
        tab = sline.index("\t")
        rest = sline[tab + 1:]
        in_sample = False
        if sample is not None and rest[0] == "f" and float(sline[:tab]) <= limit:
            slot = sample.slot()
            if slot is not None:
                sample.paths[slot] = parse_copy_record(rest).path
                in_sample = True
        src = None
        for i, it, tally in pairs:
            head = heads[i]
            if head == rest:  # the common case: the copy has the very same record
                heads[i] = next(it, None)
                tally.equal += 1
                continue
            if src is None:
                src = parse_source_record(sline)
                skey = src.key
                settling = src.ctime > limit
                ignored = src.path in ignore
            while head is not None and _key(head) < skey:
                _extra(tally, parse_copy_record(head), ignore)
                head = next(it, None)
            if head is None or _key(head) > skey:
                heads[i] = head
                copy = None
            else:
                copy = parse_copy_record(head)
                heads[i] = next(it, None)
            if ignored:
                continue
            if copy is None:
                why = "missing"
            else:
                why = _differs(src, copy)
                if not why and src.kind == "d" and int(src.mtime) > int(copy.mtime) \
                        and not settling:
                    tally.changed(src.ctime)
            if not why:
                tally.equal += 1
            elif settling:
                tally.settling += 1
            else:
                if copy is None:
                    tally.note("missing", src.path, src.ctime)
                else:
                    tally.note("differing", src.path, src.ctime, why)
                if in_sample:
                    tally.sampled_bad.add(src.path)
    for i, it, tally in pairs:
        head = heads[i]
        while head is not None:
            _extra(tally, parse_copy_record(head), ignore)
            head = next(it, None)
    return tallies


def _extra(tally, entry, ignore):
    if entry.path not in ignore:
        tally.note("extra", entry.path)


# -- checksums ----------------------------------------------------------------------------

def parse_hashes(output):
    """``sha256sum -z`` output -> {relative path: hex digest}."""
    hashes = {}
    for record in output.split("\0"):
        if len(record) > 66 and record[64:66] in ("  ", " *"):
            hashes[record[66:]] = record[:64]
    return hashes


def checksums(location, paths, options=ssh.Options(), timeout=None):
    """sha256 of ``paths`` (relative to the tree) on the side that holds the tree. A file
    that cannot be read is left out of the answer (sha256sum exits 1 and goes on)."""
    if not paths:
        return {}
    args = ["sh", "-c", HASH_SCRIPT, "sh", location.path] + list(paths)
    if location.remote:
        result = ssh.run(location.host, args, _options(location, options),
                         user=location.user, timeout=timeout, ok_codes=(0, 1))
    else:
        result = proc.run(args, timeout=timeout, ok_codes=(0, 1))
    return parse_hashes(result.stdout)
