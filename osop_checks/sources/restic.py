"""restic repositories: the snapshots, the locks, a check and a sample restore.

The repository and its password reach restic through the environment (RESTIC_REPOSITORY,
RESTIC_PASSWORD_FILE, or what the caller's environment already holds: RESTIC_PASSWORD_COMMAND,
RESTIC_PASSWORD), never through argv: ``ps`` shows argv to every user, and a rest: URL may
carry credentials. The check itself never reads the password.

``parse_snapshots`` and ``parse_lock`` are pure functions of restic's JSON, tested on recorded
output (tests/fixtures/restic/); the rest runs restic through ``proc``.
"""
from __future__ import annotations

import collections
import json
import re

from osop_checks import bounded, proc
from osop_checks.sources.repository import Listing, Lock, Snapshot, Tool, holders

LISTING_LIMIT = 64 * bounded.LIMIT  # a repository of some thousand snapshots lists in a few MiB


_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def parse_time(text):
    """restic's RFC 3339 time with nanoseconds ('2026-12-06T11:09:55.532656222Z',
    '...+01:00') as epoch seconds; ValueError on anything else."""
    import datetime

    text = _FRACTION.sub(r"\1", text.strip(), count=1)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    when = datetime.datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError("no time zone in %r" % text)
    return when.timestamp()


def _layout(what, raw):
    return proc.LayoutError("restic %s gave JSON of an unknown layout" % what, raw)


def parse_snapshots(raw):
    """The Snapshots of ``restic snapshots --json``; LayoutError on anything else."""
    try:
        items = json.loads(raw)
    except ValueError:
        raise _layout("snapshots", raw) from None
    if not isinstance(items, list):
        raise _layout("snapshots", raw)
    found = []
    for item in items:
        try:
            summary = item.get("summary") or {}
            found.append(Snapshot(
                id=str(item["id"]), name=str(item.get("short_id") or item["id"][:8]),
                time=parse_time(item["time"]), host=str(item.get("hostname", "")),
                paths=tuple(str(p) for p in item.get("paths") or ()),
                tags=tuple(str(t) for t in item.get("tags") or ()),
                files=_count(summary.get("total_files_processed")),
                bytes=_count(summary.get("total_bytes_processed"))))
        except (AttributeError, KeyError, TypeError, ValueError):
            raise _layout("snapshots", json.dumps(item)) from None
    return found


def _count(value):
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_lock(lock_id, raw):
    """The Lock of ``restic cat lock ID``; LayoutError on anything else."""
    try:
        item = json.loads(raw)
        return Lock(id=lock_id, time=parse_time(item["time"]), host=str(item["hostname"]),
                    pid=int(item["pid"]), exclusive=bool(item.get("exclusive")),
                    username=str(item.get("username", "")))
    except (AttributeError, KeyError, TypeError, ValueError):
        raise _layout("cat lock", raw) from None


def matches(snapshot, hosts=(), tags=(), paths=()):
    """Whether ``snapshot`` passes restic's own filters: any of ``hosts``; any of ``tags``,
    each a comma-separated list of tags that must all be present; all of ``paths``."""
    if hosts and snapshot.host not in hosts:
        return False
    if tags and not any(set(filter(None, group.split(","))) <= set(snapshot.tags)
                        for group in tags):
        return False
    return all(path in snapshot.paths for path in paths)


class Repository(collections.namedtuple(
        "Repository", "location password_file program options", defaults=(None, "restic", ()))):
    """How to reach a restic repository: its location, the password file (None: the
    environment's RESTIC_PASSWORD_FILE, RESTIC_PASSWORD_COMMAND or RESTIC_PASSWORD), the
    program, and extra options for restic (-o sftp.command=...)."""
    __slots__ = ()

    def environment(self):
        env = {"RESTIC_REPOSITORY": self.location}
        if self.password_file:
            env["RESTIC_PASSWORD_FILE"] = self.password_file
        return env

    @property
    def remote(self):
        return local_path(self.location) is None

    def run(self, args, limit=bounded.LIMIT, timeout=None, ok_codes=(0,)):
        """restic ``args`` as a proc.Completed; a code outside ``ok_codes`` (None: any)
        raises proc.CommandError, or repository.Unreachable when ssh could not reach the
        host of an sftp repository."""
        from osop_checks.sources import repository

        argv = [self.program, *self.options, *args]
        try:
            result = proc.run(argv, env=self.environment(), limit=limit, timeout=timeout,
                              ok_codes=None)
        except proc.CommandError as exc:
            if exc.reason == proc.TIMEOUT and self.remote:
                raise repository.Unreachable("timeout", str(exc)) from None
            raise
        if ok_codes is None:
            return result
        if result.returncode not in ok_codes:
            self.ask_ssh_again(result)
        return repository.outcome(result, "restic", ok_codes, self.remote)

    def ask_ssh_again(self, result):
        """restic may exit on "unable to start the sftp session" before it has passed on
        what its ssh said ("Connection refused"): then the same ssh command is run once more,
        stdin closed, for its own words, so a sleeping host is told apart from a failure."""
        import shlex

        from osop_checks.sources import repository, ssh

        command = [o[len("sftp.command="):] for o in self.options
                   if o.startswith("sftp.command=")]
        if not command or "unable to start the sftp session" not in result.stderr or \
                ssh.classify(result.stderr):
            return
        try:
            again = proc.run(shlex.split(command[0]), ok_codes=None, limit=64 * 1024)
        except proc.CommandError as exc:
            if exc.reason == proc.TIMEOUT:
                raise repository.Unreachable("timeout", str(exc)) from None
            return
        repository.reached(again, "restic's ssh", True)


def local_path(location):
    """The directory of a repository on this host, or None for a remote one."""
    location = location[len("local:"):] if location.startswith("local:") else location
    return location if location.startswith("/") else None


def list_snapshots(repo):
    """The repository's Snapshots, read without a lock (a backup may be running)."""
    out = repo.run(["snapshots", "--json", "--no-lock"], limit=LISTING_LIMIT)
    return parse_snapshots(out.stdout)


def list_locks(repo):
    """The repository's Locks: ``restic list locks`` and ``restic cat lock`` for each. A
    lock that vanished between the two (its backup ended) is left out."""
    ids = [line.strip() for line in repo.run(["list", "locks", "--no-lock"]).stdout.splitlines()
           if line.strip()]
    locks = []
    for lock_id in ids[:20]:  # more than a few locks: the oldest twenty tell enough
        try:
            out = repo.run(["cat", "lock", lock_id, "--no-lock"])
        except proc.CommandError as exc:
            if exc.reason == proc.FAILED:
                continue
            raise
        locks.append(parse_lock(lock_id, out.stdout))
    return locks


_SFTP = re.compile(r"^sftp:(?://(?:(?P<user>[^@/]+)@)?(?P<host>\[[^\]]+\]|[^:/]+)"
                   r"(?::(?P<port>\d+))?/|(?:(?P<user2>[^@:/]+)@)?(?P<host2>\[[^\]]+\]|[^:/]+):)")


def sftp_options(location, ssh_options):
    """restic's -o sftp.command for an sftp: repository: ssh in batch mode with the check's
    ssh options (key, known_hosts), the user and port of the location; () otherwise."""
    import shlex

    from osop_checks.sources import repository

    match = _SFTP.match(location)
    if not match:
        return ()
    user = match.group("user") or match.group("user2")
    host = match.group("host") or match.group("host2")
    port = int(match.group("port")) if match.group("port") else ssh_options.port
    options = ssh_options._replace(port=port, user=user or ssh_options.user)
    command = repository.ssh_command(host, options, "sftp")
    return ("-o", "sftp.command=" + " ".join(shlex.quote(a) for a in command))


def _repository(location, password_file, program, ssh_options):
    """The Repository of ``location``: an sftp: one reached by ssh with ``ssh_options``."""
    options = () if ssh_options is None else sftp_options(location, ssh_options)
    return Repository(location, password_file, program, tuple(options))


def read(location, password_file=None, program="restic", ssh_options=None):
    """The Listing of a restic repository: its snapshots and who holds its locks."""
    repo = _repository(location, password_file, program, ssh_options)
    snapshots = list_snapshots(repo)
    return Listing(snapshots, holders(list_locks(repo), "restic", refreshed=True))


def verify(location, password_file=None, share="", program="restic", ssh_options=None):
    """``restic check`` (with --read-data-subset SHARE when given) as a Verification;
    repository.Locked when a backup holds the lock."""
    import time

    from osop_checks.sources.repository import Verification, check_result, reached

    repo = _repository(location, password_file, program, ssh_options)
    args = ["check"] + (["--read-data-subset=%s" % share] if share else [])
    out = repo.run(args, limit=LISTING_LIMIT, ok_codes=None)
    reached(out, "restic", repo.remote)
    ok, result = check_result(out.returncode, out.stdout + "\n" + out.stderr)
    return Verification(time.time(), ok, result, share, ran=True)


def _live_path(path, snapshot_paths):
    """The live file of ``path`` in a snapshot's tree: the path itself when restic was
    given absolute paths, else it stored each backed-up path under its last component
    (``restic backup www`` in /srv: /www/...)."""
    import os

    if any(path.startswith(p.rstrip("/") + "/") for p in snapshot_paths):
        return path
    top = path.lstrip("/").split("/", 1)[0]
    owners = [p for p in snapshot_paths if os.path.basename(p.rstrip("/")) == top]
    if len(owners) != 1:
        return ""
    return os.path.dirname(owners[0].rstrip("/")) + path


def restore_sample(location, password_file, snapshot, n, cap, program="restic",
                   ssh_options=None):
    """``n`` random regular files of ``snapshot`` restored into a private directory and
    compared (repository.compare) with the live files where the snapshot is of this host;
    the directory is removed afterwards."""
    from osop_checks.sources import repository

    repo = _repository(location, password_file, program, ssh_options)
    live = snapshot.host == repository.this_host()
    pool = repository.Reservoir(n, cap)
    with proc.stream([program, *repo.options, "ls", "--json", "--no-lock", snapshot.id],
                     env=repo.environment()) as lines:
        for line in lines:
            try:
                item = json.loads(line)
                if item.get("struct_type") != "node" or item.get("type") != "file":
                    continue
                path = str(item["path"])
                pool.offer(repository.FileNode(
                    path, int(item.get("size", 0)), parse_time(item["mtime"]),
                    _live_path(path, snapshot.paths) if live else ""))
            except (AttributeError, KeyError, TypeError, ValueError):
                raise _layout("ls", line) from None
    nodes = pool.drawn()
    if not nodes:
        return repository.RestoreSample([], pool.seen)
    target = repository.private_directory()
    try:
        args = ["restore", snapshot.id, "--no-lock", "--verify", "--target", target]
        for node in nodes:
            args += ["--include", node.path]
        error = ""
        try:
            repo.run(args, limit=LISTING_LIMIT)
        except proc.CommandError as exc:
            if exc.reason == proc.TIMEOUT:
                raise
            error = str(exc)
        samples = repository.compare(nodes, lambda node: target + node.path)
    finally:
        repository.remove(target)
    return repository.RestoreSample(samples, pool.seen, error)


TOOL = Tool(name="restic", snapshot="snapshot", repo_env="RESTIC_REPOSITORY",
            password_env=("RESTIC_PASSWORD_FILE", "RESTIC_PASSWORD_COMMAND", "RESTIC_PASSWORD"),
            shares=None, filters=("hosts", "tags", "paths"), local_path=local_path, read=read,
            verify=verify, restore_sample=restore_sample, matches=matches)
