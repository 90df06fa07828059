"""Borg repositories: the archives, the lock of a local repository.

The repository reaches borg as BORG_REPO and the passphrase file through BORG_PASSCOMMAND
(``cat FILE``: borg reads it, the check never does), or what the caller's environment holds
(BORG_PASSCOMMAND, BORG_PASSPHRASE, a keyfile repository without a passphrase); nothing secret
is in argv. The listing bypasses the repository's lock (a backup may hold it) and uses a
cache directory of the check's own, so a running ``borg create`` holding its cache lock does
not block it, and nothing of the backup user's cache is touched.

``parse_list`` and ``parse_roster`` are pure functions of borg's output, tested on recorded
output (tests/fixtures/borg/).
"""
from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex

from osop_checks import bounded, proc
from osop_checks.sources.repository import Listing, Lock, Snapshot, Tool, holders

LISTING_LIMIT = 64 * bounded.LIMIT
# A checkpoint archive: what a backup that was cut off left, to be resumed (name.checkpoint,
# name.checkpoint.1 ...). Never a backup of its own.
CHECKPOINT = re.compile(r"\.checkpoint(\.\d+)?$")

# borg check reads all of the data (--verify-data) or none of it
ALL_DATA = ("100%", "1/1")


def _layout(what, raw):
    return proc.LayoutError("borg %s gave output of an unknown layout" % what, raw)


def parse_time(text):
    """borg's archive time: local time without a zone ('2026-12-06T11:12:58.000000'), or
    with one (borg 2); epoch seconds."""
    import datetime

    return datetime.datetime.fromisoformat(text.strip()).timestamp()


def parse_list(raw):
    """The Snapshots of ``borg list --json`` (archives, checkpoints included when listed)."""
    try:
        items = json.loads(raw)["archives"]
        return [Snapshot(id=str(item["id"]), name=str(item["name"]),
                         time=parse_time(item.get("start") or item["time"]))
                for item in items]
    except (KeyError, TypeError, ValueError):
        raise _layout("list --json", raw) from None


def is_checkpoint(name):
    return CHECKPOINT.search(name) is not None


def matches(snapshot, prefix=None, glob=None):
    """Whether an archive counts: no checkpoint, and its name starts with ``prefix`` and
    matches the shell pattern ``glob`` where given."""
    if is_checkpoint(snapshot.name):
        return False
    if prefix and not snapshot.name.startswith(prefix):
        return False
    return not glob or fnmatch.fnmatchcase(snapshot.name, glob)


def parse_roster(raw, time):
    """The Locks of a repository's lock.roster (``{"exclusive": [[host@node, pid, thread]],
    "shared": [...]}``); ``time`` is the lock's time (its directory's mtime)."""
    try:
        roster = json.loads(raw)
        return [Lock(id="%s.%d-%d" % (host, pid, thread), time=time, host=str(host),
                     pid=int(pid), exclusive=(kind == "exclusive"))
                for kind in ("exclusive", "shared")
                for host, pid, thread in roster.get(kind) or ()]
    except (AttributeError, TypeError, ValueError):
        raise _layout("lock.roster", raw) from None


def read_locks(path):
    """The Locks of the local repository at ``path`` (none when it is not locked)."""
    lock_dir = os.path.join(path, "lock.exclusive")
    try:
        since = os.stat(lock_dir).st_mtime
        raw = bounded.read_text(os.path.join(path, "lock.roster"), 256 * 1024)
    except FileNotFoundError:
        return []
    return parse_roster(raw, since)


def cache_directory():
    """The check's own Borg cache (None: no cache directory can be written; borg's
    default then)."""
    from osop_checks import state as state_files

    base = state_files.default_cache_directory()
    return os.path.join(base, "borg") if base else None


def _home_writable():
    home = os.path.expanduser("~")
    return os.path.isdir(home) and os.access(home, os.W_OK | os.X_OK)


def environment(location, password_file=None, rsh=None):
    env = {"BORG_REPO": location,
           # read only: a repository first seen by the user the check runs as is fine
           "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
           "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes"}
    cache = cache_directory()
    if cache:
        env["BORG_CACHE_DIR"] = cache
        if not _home_writable() and not any(
                os.environ.get(name) for name in ("BORG_BASE_DIR", "BORG_CONFIG_DIR",
                                                  "BORG_SECURITY_DIR", "BORG_KEYS_DIR")):
            # borg creates ~/.config/borg (keys, security) at every start: a user without
            # a home of its own (osop-checks-api's, HOME=/nonexistent) keeps them beside
            # its cache instead of failing with "Permission denied: '/nonexistent'"
            env["BORG_BASE_DIR"] = os.path.join(cache, "base")
    if password_file:
        env["BORG_PASSCOMMAND"] = "cat -- %s" % shlex.quote(password_file)
    if rsh:
        env["BORG_RSH"] = rsh
    return env


def rsh(ssh_options):
    """BORG_RSH: ssh in batch mode with the check's ssh options (borg adds the user, port
    and host of the repository's ssh:// location)."""
    from osop_checks.sources import repository

    options = ssh_options._replace(port=None, user=None)
    return " ".join(shlex.quote(a) for a in repository.ssh_command(None, options))


def run(location, password_file, args, limit=bounded.LIMIT, program="borg", ok_codes=(0,),
        ssh_options=None, cwd=None):
    """borg ``args`` as a proc.Completed; a code outside ``ok_codes`` (None: any) raises
    proc.CommandError, or repository.Unreachable when ssh could not reach the host of an
    ssh:// repository."""
    from osop_checks.sources import repository

    remote = local_path(location) is None
    env = environment(location, password_file,
                      rsh(ssh_options) if remote and ssh_options else None)
    try:
        result = proc.run([program, *args], env=env, limit=limit, ok_codes=None, cwd=cwd)
    except proc.CommandError as exc:
        if exc.reason == proc.TIMEOUT and remote:
            raise repository.Unreachable("timeout", str(exc)) from None
        raise
    if ok_codes is None:
        return result
    return repository.outcome(result, "borg", ok_codes, remote)


def list_archives(location, password_file=None, program="borg", ssh_options=None):
    out = run(location, password_file, ["list", "--json", "--bypass-lock",
                                        "--consider-checkpoints"],
              limit=LISTING_LIMIT, program=program, ssh_options=ssh_options)
    return parse_list(out.stdout)


def local_path(location):
    if location.startswith("file://"):
        return location[len("file://"):]
    return location if location.startswith("/") else None


def read(location, password_file=None, program="borg", ssh_options=None):
    """The Listing of a Borg repository: its archives, and for a local one who holds its
    lock."""
    archives = list_archives(location, password_file, program, ssh_options)
    local = local_path(location)
    locks = read_locks(local) if local else []
    return Listing(archives, holders(locks, "borg"))


def verify(location, password_file=None, share="", program="borg", ssh_options=None):
    """``borg check`` as a Verification (--verify-data, every chunk decrypted and
    authenticated, when SHARE is 100%: borg reads all or nothing); repository.Locked when a
    backup holds the lock."""
    import time

    from osop_checks.sources.repository import Verification, check_result, reached

    args = ["check"] + (["--verify-data"] if share.strip() in ALL_DATA + ("all",) else [])
    out = run(location, password_file, args, limit=LISTING_LIMIT, program=program,
              ok_codes=None, ssh_options=ssh_options)
    reached(out, "borg", local_path(location) is None)
    ok, result = check_result(out.returncode, out.stdout + "\n" + out.stderr)
    return Verification(time.time(), ok, result, share, ran=True)


def restore_sample(location, password_file, archive, n, cap, program="borg",
                   ssh_options=None):
    """``n`` random regular files of ``archive`` extracted into a private directory and
    compared (repository.compare) with the live files (borg keeps paths without the leading
    /); the directory is removed afterwards."""
    from osop_checks.sources import repository

    remote = local_path(location) is None
    env = environment(location, password_file,
                      rsh(ssh_options) if remote and ssh_options else None)
    pool = repository.Reservoir(n, cap)
    with proc.stream([program, "list", "--json-lines", "--bypass-lock", "::" + archive.name],
                     env=env) as lines:
        for line in lines:
            try:
                item = json.loads(line)
                if item.get("type") != "-":
                    continue
                path = str(item["path"])
                pool.offer(repository.FileNode(path, int(item.get("size", 0)),
                                               parse_time(item["mtime"]), "/" + path))
            except (AttributeError, KeyError, TypeError, ValueError):
                raise _layout("list --json-lines", line) from None
    nodes = pool.drawn()
    if not nodes:
        return repository.RestoreSample([], pool.seen)
    target = repository.private_directory()
    try:
        error = ""
        try:
            run(location, password_file, ["extract", "--bypass-lock", "::" + archive.name] +
                ["pp:" + node.path for node in nodes], program=program,
                ssh_options=ssh_options, cwd=target)
        except proc.CommandError as exc:
            if exc.reason == proc.TIMEOUT:
                raise
            error = str(exc)
        samples = repository.compare(nodes, lambda node: os.path.join(target, node.path))
    finally:
        repository.remove(target)
    return repository.RestoreSample(samples, pool.seen, error)


TOOL = Tool(name="borg", snapshot="archive", repo_env="BORG_REPO", password_env=None,
            shares=ALL_DATA, filters=("prefix", "glob"), local_path=local_path, read=read,
            verify=verify, restore_sample=restore_sample, matches=matches)
