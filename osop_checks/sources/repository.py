"""What restic and Borg repositories have in common: their backups (Snapshot), their locks
(Lock) and the processes holding them (Running), as plain data for check_backup_age; and the
Tool, the one record through which the check uses either."""
from __future__ import annotations

import collections
import re

from osop_checks.record import Record


class Snapshot(collections.namedtuple(
        "Snapshot", "id name time host paths tags files bytes", defaults=("", (), (), None, None))):
    """One backup in a repository (restic snapshot or Borg archive): its id, its name (short
    id, archive name), time (epoch seconds), host, paths, tags, and, where the tool records
    them cheaply, its file count and bytes (None: not recorded)."""
    __slots__ = ()


class Lock(collections.namedtuple(
        "Lock", "id time host pid exclusive username", defaults=(False, ""))):
    """A lock on a repository: who holds it (host, pid), since when (epoch seconds), and
    whether it is exclusive."""
    __slots__ = ()


# What a lock's holder is: a live process of the tool on this host, a process that is gone
# from this host (a stale lock), or a process on another host that cannot be looked at.
RUNNING, GONE, ELSEWHERE = "running", "gone", "elsewhere"


class Running(collections.namedtuple(
        "Running", "host pid status since lock_time refreshed command", defaults=(False, ""))):
    """The holder of a lock: its host and pid, what it is (RUNNING, GONE, ELSEWHERE), since
    when it runs (the process's start where it can be seen, else the lock's time), the lock's
    own time, and whether the tool refreshes that time while it runs (restic: every 5
    minutes, so a lock of another host not refreshed for 30 minutes is stale)."""
    __slots__ = ()


class Listing(collections.namedtuple("Listing", "snapshots running", defaults=((),))):
    """A repository as one listing found it: its snapshots and the holders of its locks."""
    __slots__ = ()


class Tool(collections.namedtuple(
        "Tool", "name snapshot repo_env password_env shares filters local_path read verify "
                "restore_sample matches")):
    """A repository tool (restic, Borg) as a check uses it, one of each in its source module
    (``TOOL``), so a check chooses it once and never asks which it is again:

    - ``name``: its command, and its name in words; ``snapshot``: its word for one backup;
    - ``repo_env``: the variable that names the repository where the check is given none;
    - ``password_env``: the variables that give it the password where no file is given
      (None: it may need none, as a Borg keyfile repository without a passphrase);
    - ``shares``: the shares of the data its check can read besides none (None: any);
    - ``filters``: the keywords its ``matches(snapshot, **filters)`` takes;
    - ``local_path(location)``: the directory of a repository on this host, None if remote;
    - ``read(location, password_file, ssh_options=)``: the Listing;
      ``verify(location, password_file, share, ssh_options=)``: a Verification;
      ``restore_sample(location, password_file, snapshot, n, cap, ssh_options=)``: a
      RestoreSample (the ssh options, an ssh.Options, for a repository behind ssh)."""
    __slots__ = ()


def this_host():
    import socket

    return socket.gethostname()


def holders(locks, tool, refreshed=False, hostname=None):
    """The Running of each lock: on this host, whether its pid is still a ``tool`` process
    (a pid reused by another program is gone too), and that process's start."""
    import psutil

    hostname = hostname or this_host()
    found = []
    for lock in locks:
        host = lock.host.partition("@")[0]  # borg: host@node-id
        if host not in (hostname, hostname.partition(".")[0]) and \
                host.partition(".")[0] != hostname:
            found.append(Running(host, lock.pid, ELSEWHERE, lock.time, lock.time, refreshed))
            continue
        try:
            process = psutil.Process(lock.pid)
            name = " ".join(process.cmdline()[:3]) or process.name()
            alive = tool in process.name() or tool in name
            since = process.create_time()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            alive, name, since = False, "", lock.time
        except psutil.AccessDenied:
            alive, name, since = True, "", lock.time
        found.append(Running(host, lock.pid, RUNNING if alive else GONE,
                             since if alive else lock.time, lock.time, refreshed, name))
    return found


class Verification(collections.namedtuple(
        "Verification", "time ok result share ran", defaults=("", False))):
    """A check of a repository's integrity by its own tool: when (epoch seconds), whether
    it passed, its result in one line, the share of the data read, and whether it ran in
    this run (False: remembered from an earlier run)."""
    __slots__ = ()

    def record(self):
        return {"time": self.time, "ok": self.ok, "result": self.result, "share": self.share}


class Locked(Exception):
    """The tool could not take the repository's lock for a check (a backup holds it):
    nothing was checked."""


# Lines of restic check and borg check that tell progress, never a finding.
_PROGRESS = re.compile(
    r"^(using temporary cache|create exclusive lock|load indexes|check all packs|"
    r"check snapshots|read (all|[\d.]+%) .*data packs|\[[\d:]+\]|no errors were found|"
    r"Starting (repository|archive) |Finished full repository check|Completed repository|"
    r"Analyzing archive|Archive consistency check complete|Remote: Starting|"
    r"Archive authentication|Checking segments|Starting cryptographic|Finished cryptographic|"
    r"Enter passphrase|\d+ orphaned objects found|\s*$)")
_LOCK = re.compile(r"already locked|Failed to create/acquire the lock|unable to create lock",
                   re.I)


def check_result(returncode, output):
    """(ok, one line) of a tool's check from its exit code and output; Locked when it could
    not lock the repository."""
    lines = [line.strip() for line in output.splitlines()]
    if returncode != 0 and any(_LOCK.search(line) for line in lines):
        raise Locked(next(line for line in lines if _LOCK.search(line)))
    findings = []
    for line in lines:
        if _PROGRESS.match(line):
            continue
        if findings and findings[-1].endswith(":"):  # "error for tree 1e2547cb:" and its why
            findings[-1] += " " + line
        else:
            findings.append(line)
    if returncode == 0:
        return True, "no errors found"
    if not findings:
        return False, "exit code %d" % returncode
    first = findings[0]
    last = findings[-1]
    more = len(findings) - 1
    if more and last != first:
        first += " ... (%d more line%s, the last: %s)" % (more, "" if more == 1 else "s", last)
    return False, first


# -- a restore tried: a few files of the newest snapshot, compared --------------------------

class FileNode(collections.namedtuple("FileNode", "path size mtime live", defaults=("",))):
    """A regular file in a snapshot: its path there, its recorded size and mtime (epoch
    seconds), and the live file it was backed up from on this host ('' when not here)."""
    __slots__ = ()


# How a restored file compares (Sampled.outcome)
SAME = "same as the live file"
DIFFERS = "differs from the live file, which is unchanged since the snapshot"
AS_RECORDED = "as recorded (the live file changed since, or is not here)"
WRONG_SIZE = "of another size than recorded"
NOT_RESTORED = "not restored"


class Sampled(collections.namedtuple("Sampled", "node restored_size outcome")):
    """One sampled file after the restore: the FileNode, the restored copy's size (None: not
    restored), and the outcome (SAME, DIFFERS, AS_RECORDED, WRONG_SIZE, NOT_RESTORED)."""
    __slots__ = ()


class RestoreSample(Record):
    """The restore tried: the files sampled and compared, the snapshot's regular files seen,
    and the restore's error in words ('' when it worked)."""

    def __init__(self, samples, files_seen=0, error=""):
        self.samples = samples
        self.files_seen = files_seen
        self.error = error


class Reservoir:
    """``n`` files drawn at random, alike, from a listing read once (reservoir sampling: the
    listing of a million files is never held), each at most ``cap`` bytes."""

    def __init__(self, n, cap):
        import random

        self.n, self.cap = n, cap
        self.random = random.SystemRandom()
        self.kept, self.seen = [], 0

    def offer(self, node):
        if node.size > self.cap or any(c in node.path for c in "*?[\\\n"):
            return  # too large to restore here; a name restic would read as a pattern
        self.seen += 1
        if len(self.kept) < self.n:
            self.kept.append(node)
        else:
            slot = self.random.randrange(self.seen)
            if slot < self.n:
                self.kept[slot] = node

    def drawn(self):
        """The files drawn, the largest dropped while together they exceed the cap."""
        kept = sorted(self.kept, key=lambda node: node.size)
        while kept and sum(node.size for node in kept) > self.cap:
            kept.pop()
        return kept


def _hashes(paths):
    from osop_checks import proc
    from osop_checks.sources.manifest import parse_hashes

    if not paths:
        return {}
    out = proc.run(["sha256sum", "-z", "--", *paths], ok_codes=(0, 1),
                   limit=256 * len(paths) + 4096)
    return parse_hashes(out.stdout)


def compare(nodes, restored_path):
    """The Sampled of each node, its copy restored at ``restored_path(node)``: compared by
    sha256 with the live file where that is unchanged since the snapshot (same size and
    mtime), else by size with what the snapshot recorded."""
    import os

    restored, live = {}, {}
    for node in nodes:
        try:
            info = os.stat(restored_path(node), follow_symlinks=False)
            restored[node.path] = info.st_size
        except OSError:
            continue
        if node.live:
            try:
                now = os.stat(node.live)
            except OSError:
                continue
            if now.st_size == node.size and abs(now.st_mtime - node.mtime) < 0.001:
                live[node.path] = node.live
    hashes = _hashes([restored_path(n) for n in nodes if n.path in live] + list(live.values()))
    found = []
    for node in nodes:
        size = restored.get(node.path)
        if size is None:
            outcome = NOT_RESTORED
        elif node.path in live and restored_path(node) in hashes and node.live in hashes:
            outcome = SAME if hashes[restored_path(node)] == hashes[node.live] else DIFFERS
        else:
            outcome = AS_RECORDED if size == node.size else WRONG_SIZE
        found.append(Sampled(node, size, outcome))
    return found


def private_directory():
    """A directory of this process alone (0700) for restored files."""
    import tempfile

    return tempfile.mkdtemp(prefix="osop-restore-")


def remove(directory):
    import shutil

    shutil.rmtree(directory, ignore_errors=True)


class Unreachable(Exception):
    """The repository's host could not be reached over ssh; ``kind`` says how, in ssh's
    words ('connection refused', 'timeout', 'unreachable' ...), ``message`` in full."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


def outcome(result, tool, ok_codes=(0,), remote=False):
    """``result`` (a proc.Completed run with any exit code) when its code is in ``ok_codes``;
    else Unreachable when ssh (for a remote repository) failed to reach the host, else
    proc.CommandError with the tool's last line of stderr."""
    from osop_checks import proc

    if result.returncode in ok_codes:
        return result
    reached(result, tool, remote)
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    # restic passes on what its ssh said ("subprocess ssh: ...") before its own last line
    said = [line for line in lines[:-1] if line.startswith(("subprocess ssh:", "Remote:"))]
    last = " / ".join(said[-2:] + lines[-1:])
    raise proc.CommandError("%s failed (exit %d): %s" % (tool, result.returncode, last[:1000]),
                            tool, proc.FAILED, result.returncode, last[:1000])


def reached(result, tool, remote):
    """Unreachable when ``result`` failed because ssh could not reach a remote repository's
    host (its words on the tool's stderr)."""
    from osop_checks.sources import ssh

    kind = ssh.classify(result.stderr) if remote and result.returncode else None
    if kind:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        raise Unreachable(kind, "%s could not reach the repository's host: %s (%s)" % (
            tool, kind, (lines[-1] if lines else "")[:300]))


def ssh_command(host, options, subsystem=None):
    """The ssh argv (batch mode, the check's own options) that reaches ``host``: for
    ``subsystem`` the whole command (restic's sftp.command), else the part before the host
    that BORG_RSH takes (borg adds the host and its command)."""
    from osop_checks.sources import ssh

    base = ssh.argv(host or "localhost", ["true"], options)[:-3]
    if subsystem:
        return base + ["-s", "--", host, subsystem]
    return base
