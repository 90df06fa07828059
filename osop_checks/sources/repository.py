"""What restic and Borg repositories have in common: their backups (Snapshot), their locks
(Lock) and the processes holding them (Running), as plain data for check_backup_age."""
from __future__ import annotations

import dataclasses
import re


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """One backup in a repository (restic snapshot or Borg archive): its id, its name (short
    id, archive name), time (epoch seconds), host, paths, tags, and, where the tool records
    them cheaply, its file count and bytes (None: not recorded)."""
    id: str
    name: str
    time: float
    host: str = ""
    paths: tuple = ()
    tags: tuple = ()
    files: int | None = None
    bytes: int | None = None


@dataclasses.dataclass(frozen=True)
class Lock:
    """A lock on a repository: who holds it (host, pid), since when (epoch seconds), and
    whether it is exclusive."""
    id: str
    time: float
    host: str
    pid: int
    exclusive: bool = False
    username: str = ""


# What a lock's holder is: a live process of the tool on this host, a process that is gone
# from this host (a stale lock), or a process on another host that cannot be looked at.
RUNNING, GONE, ELSEWHERE = "running", "gone", "elsewhere"


@dataclasses.dataclass(frozen=True)
class Running:
    """The holder of a lock: its host and pid, what it is (RUNNING, GONE, ELSEWHERE), since
    when it runs (the process's start where it can be seen, else the lock's time), the lock's
    own time, and whether the tool refreshes that time while it runs (restic: every 5
    minutes, so a lock of another host not refreshed for 30 minutes is stale)."""
    host: str
    pid: int
    status: str
    since: float
    lock_time: float
    refreshed: bool = False
    command: str = ""


@dataclasses.dataclass(frozen=True)
class Listing:
    """A repository as one listing found it: its snapshots and the holders of its locks."""
    snapshots: list
    running: list = dataclasses.field(default_factory=list)


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


@dataclasses.dataclass(frozen=True)
class Verification:
    """A check of a repository's integrity by its own tool: when (epoch seconds), whether
    it passed, its result in one line, the share of the data read, and whether it ran in
    this run (False: remembered from an earlier run)."""
    time: float
    ok: bool
    result: str
    share: str = ""
    ran: bool = False

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
