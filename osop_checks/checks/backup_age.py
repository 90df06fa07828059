"""check_backup_age: how old the newest backup is, and whether it holds anything.

arguments -> gather: the backup (sources.tree: the newest entry of a tree, the newest dated
snapshot, or a stamp file) and optionally a log's verdict, as a Backup -> judge (pure): its
age against -w/-c with clock-skew slack, its size and file count (empty is CRITICAL), the
snapshots kept, the log -> a plugin.Verdict, rendered by runtime.
"""
from __future__ import annotations

import collections
import datetime
import functools
import os
import time

import nagiosplugin
from nagiosplugin import Critical, Ok, Warn

from osop_checks import cli, plugin, proc, runtime, text, units
from osop_checks.sources import repository, tree

NAME = "BACKUP_AGE"


def build_parser():
    parser = cli.Parser(
        NAME, "check_backup_age",
        "Age of the newest backup: the newest file (or directory) under a tree, the newest "
        "dated snapshot directory, a stamp file a backup job writes, or the newest snapshot "
        "of a restic or Borg repository; with its size and file count (an empty backup is "
        "CRITICAL) and, optionally, the verdict of its log, a backup still running, the "
        "repository's integrity and a restore tried.",
        examples=[
            "check_backup_age -p /data2/backup/fileserver --time ctime -w 26h -c 50h",
            "check_backup_age -p /var/backups/db --mode snapshot --type file --glob '*.sql.gz' "
            "--min-size 1MiB",
            "check_backup_age -p /backup/rsnapshot --mode snapshot --name-format rsnapshot "
            "--min-files 1000",
            "check_backup_age -p /backup/rsnapshot --mode snapshot --name-format rsnapshot "
            "--min-snapshots 7 --oldest-snapshot 6d",
            "check_backup_age -p /backup/snapshots --mode snapshot --name-format "
            "'host-%Y-%m-%d_%H%M' -w 2d -c 3d",
            "check_backup_age --stamp /var/lib/backup/last-success -p /data2/backup "
            "--log /var/log/backup.log --log-start '^=== backup started'",
            "check_backup_age --mode restic --repo sftp:backup@nas:/srv/restic "
            "--password-file /etc/osop-checks/restic.pw --host web1 -w 26h -c 50h "
            "--verify 5% --restore-sample 3",
            "check_backup_age --mode borg --repo /backup/borg --password-file "
            "/etc/borgmatic/passphrase --prefix web1- --min-snapshots 7",
        ],
        behind_the_scenes=[
            "newest: one walk of --path like find -P (symlinks not followed): getdents and",
            "fstatat(2) for every entry, shared between a few forked processes (--workers) that",
            "take subtrees from a pipe; memory holds the pending directories, never the files.",
            "snapshot: one listing of --path, the date in each name (or its mtime/ctime), then",
            "a walk of the newest snapshot for its size and file count; the count and the",
            "oldest come from the same listing.",
            "stamp: the stamp file's first line (ISO 8601 or epoch seconds), else its mtime.",
            "--log: the last 4 MiB of the log, read once; nothing is ever written.",
            "restic: restic snapshots --json --no-lock, restic list locks --no-lock (and",
            "restic cat lock per lock); borg: borg list --json --bypass-lock with a cache of",
            "the check's own, lock.roster of a local repository. The repository and password",
            "go to the tool in its environment, never argv. --verify: the tool's check, once",
            "per --verify-every; --restore-sample: one listing, one restore into a private",
            "temporary directory, one sha256sum; ssh always in batch mode.",
        ])
    sel = parser.add_argument_group("what the backup is")
    sel.add_argument("-p", "--path", kind=cli.PATH, type=cli.absolute_path, metavar="PATH",
                     action="append", default=[],
                     help="the backup: a directory tree (or a single file), or the directory "
                          "holding the snapshots; with --mode restic: only snapshots of this "
                          "path (repeatable: of all of them); a PATH that does not exist is "
                          "CRITICAL (the "
                          "loss the check guards: an unmounted disk, a deleted mirror), "
                          "naming its nearest existing parent and whether that is mounted")
    sel.add_argument("--mode", kind=cli.PLAIN,
                     choices=("newest", "snapshot", "stamp", "restic", "borg"),
                     help="newest: the tree under --path is one backup, as old as its newest "
                          "entry (an rsync mirror; default); snapshot: each entry directly "
                          "under --path is a backup, the newest one is judged (rsnapshot "
                          "daily.0, 2024-05-01_0300, nightly dump files); stamp: the time "
                          "in/of --stamp FILE (the default when --stamp is given); restic, "
                          "borg: the newest snapshot (archive) in --repo")
    sel.add_argument("--type", kind=cli.PLAIN, choices=("file", "dir"), default=None,
                     help="what counts as an entry: regular files or directories (default: "
                          "file in newest mode, dir in snapshot mode)")
    sel.add_argument("--glob", kind=cli.PLAIN, metavar="PATTERN",
                     help="only entries whose name matches this shell pattern, e.g. "
                          "'*.tar.gz' (as find -name)")
    sel.add_argument("--max-depth", kind=cli.PLAIN, type=cli.count_type(minimum=1), metavar="N",
                     help="newest mode: look at most N levels below --path (1: its own "
                          "entries only; as find -maxdepth)")
    sel.add_argument("--time", kind=cli.PLAIN, choices=("mtime", "ctime"), default="mtime",
                     help="which time of an entry counts (default: mtime); rsync -a copies "
                          "the source's mtimes, so the time of the last sync into a copy "
                          "shows only in ctime")
    sel.add_argument("--name-format", kind=cli.PLAIN, default=None, metavar="FORMAT",
                     help="snapshot mode: how snapshot names look: 'auto' (default: a date "
                          "such as 2024-05-01, 2024-05-01_0300 or 20240501T030000 anywhere in "
                          "the name, else the entry's own time), 'rsnapshot' (daily.0, "
                          "hourly.3 ..., timed by their mtime/ctime), or a pattern with %%Y "
                          "%%y %%m %%d %%H %%M %%S %%s and * (any text), e.g. "
                          "'db-%%Y%%m%%d.sql.gz'; other names are not snapshots")
    sel.add_argument("--utc", kind=cli.PLAIN, action="store_true",
                     help="dates in names and stamps without a time zone are UTC (default: "
                          "local time)")
    sel.add_argument("--stamp", kind=cli.FILE_READ, type=cli.absolute_path, metavar="FILE",
                     help="a file the backup job writes when it succeeds; its age is the "
                          "backup's; a missing stamp file is CRITICAL")
    sel.add_argument("--stamp-time", kind=cli.PLAIN,
                     choices=("auto", "content", "mtime"), default="auto",
                     help="the stamp's time: its first line (an ISO 8601 timestamp or epoch "
                          "seconds), its mtime, or auto: the content when it holds one "
                          "(default: auto)")
    sel.add_argument("--skip-unreadable", kind=cli.PLAIN, action="store_true",
                     help="go on when some directories under --path cannot be read (default: "
                          "UNKNOWN, since the newest backup may be in there)")
    sel.add_argument("--ignore-missing", kind=cli.PLAIN, action="store_true",
                     help="a --path that does not exist is OK (a backup that may be absent, "
                          "e.g. a disk that is only plugged in now and then)")
    sel.add_argument("--workers", kind=cli.PLAIN,
                     type=cli.count_type(minimum=1, maximum=64), metavar="N",
                     help="processes walking a tree (default: the CPUs usable, at most 4)")
    repo = parser.add_argument_group("repositories (--mode restic, --mode borg)")
    repo.add_argument("--repo", kind=cli.FILE_READ, metavar="REPOSITORY",
                      help="the repository: a local path, sftp:user@host:/path (restic), "
                           "ssh://user@host/path (borg) ... (default: $RESTIC_REPOSITORY, "
                           "$BORG_REPO); given to the tool in its environment, never in argv")
    repo.add_argument("--password-file", kind=cli.FILE_READ, type=cli.absolute_path,
                      metavar="FILE",
                      help="the repository's password (passphrase) in a file, handed to the "
                           "tool as RESTIC_PASSWORD_FILE (restic) or read by it through "
                           "BORG_PASSCOMMAND (borg); the check never reads it (default: what "
                           "the environment has: RESTIC_PASSWORD_FILE, "
                           "RESTIC_PASSWORD_COMMAND, BORG_PASSCOMMAND, or a keyfile "
                           "repository without a passphrase)")
    repo.add_argument("--host", kind=cli.PLAIN, action="append", default=[], metavar="HOST",
                      help="restic: only snapshots of this host (repeatable: of any of them); "
                           "the newest of another host does not hide an old one of this")
    repo.add_argument("--tag", kind=cli.PLAIN, action="append", default=[], metavar="TAGS",
                      help="restic: only snapshots with these tags (TAG[,TAG...]: all of "
                           "them; repeatable: any of the lists)")
    repo.add_argument("--prefix", kind=cli.PLAIN, metavar="PREFIX",
                      help="borg: only archives whose name starts with this (borgmatic's "
                           "'{hostname}-')")
    repo.add_argument("--glob-archives", kind=cli.PLAIN, metavar="PATTERN",
                      help="borg: only archives whose name matches this shell pattern")
    repo.add_argument("--max-run", kind=cli.PLAIN, type=cli.duration_type(minimum=60),
                      default=6 * 3600, metavar="DURATION",
                      help="a backup still running (the repository locked by a live "
                           "process; in the file modes an rsync at work on --path) turns a "
                           "too old backup into WARNING while it has run less than this; "
                           "longer, or a lock whose process is gone, is CRITICAL (default: "
                           "6h)")
    repo.add_argument("--verify", kind=cli.PLAIN, type=cli.value_type(parse_share, "share"),
                      metavar="SHARE",
                      help="also check the repository's integrity with its own tool, at most "
                           "once per --verify-every: restic check --read-data-subset=SHARE "
                           "(5%%, 1/10; 0: the structure only), borg check (with "
                           "--verify-data when SHARE is 100%%); a failed check is CRITICAL "
                           "until a check passes")
    repo.add_argument("--verify-every", kind=cli.PLAIN, type=cli.duration_type(minimum=60),
                      default=86400, metavar="DURATION",
                      help="how often --verify runs the check (default: 1d); between checks "
                           "the last result, from the state file, is judged")
    repo.add_argument("--state-file", kind=cli.FILE_WRITTEN, type=cli.absolute_path,
                      metavar="PATH",
                      help="where the last --verify result is kept (default: a file per "
                           "repository in the state directory)")
    repo.add_argument("--restore-sample", kind=cli.PLAIN, type=cli.count_type(1, 1000),
                      metavar="N",
                      help="restore N random files of the newest snapshot into a private "
                           "temporary directory (removed afterwards) and compare each with "
                           "its live file where that is unchanged since the snapshot, else "
                           "with the size the snapshot recorded; a mismatch or a failed "
                           "restore is CRITICAL, naming the file")
    repo.add_argument("--restore-max-size", kind=cli.PLAIN,
                      type=cli.quantity_type(units.SIZE, minimum=1), default=64 * 1024 * 1024,
                      metavar="SIZE",
                      help="--restore-sample restores at most this much (files larger are "
                           "never drawn; default: 64MiB)")
    ssh_file_type = cli.value_type(check_ssh_file, "ssh file")
    repo.add_argument("--ssh-identity", kind=cli.FILE_READ, metavar="FILE", type=ssh_file_type,
                      help="sftp:/ssh:// repositories: the private key to log in with (only "
                           "this key is offered; ssh always runs in batch mode, never asks)")
    repo.add_argument("--ssh-known-hosts", kind=cli.FILE_READ, metavar="FILE",
                      type=ssh_file_type,
                      help="sftp:/ssh:// repositories: the known_hosts file the host key is "
                           "checked against, strictly (default: ssh's own)")
    repo.add_argument("--sleeping", kind=cli.PLAIN, action="store_true",
                      help="the repository's host is off outside its backup window: while "
                           "it cannot be reached (connection refused, timeout, unreachable) "
                           "the last good listing (state file) is judged, its newest "
                           "snapshot aging as usual against -w/-c")
    log = parser.add_argument_group("log verdict (optional)")
    log.add_argument("--log", kind=cli.FILE_READ, type=cli.absolute_path, metavar="FILE",
                     help="the backup job's log: an error in its newest run is CRITICAL. "
                          "Built in: rsync's 'rsync error:' lines and a non-zero recorded exit "
                          "code ('exit code 23', 'rc=1') are errors; rsync's 'total size is "
                          "... speedup is' and exit code 0 are successes; a log with neither "
                          "is WARNING")
    log.add_argument("--log-ok", kind=cli.PLAIN, type=cli.regex_type, action="append", default=[],
                     metavar="REGEX", help="a line telling success (repeatable)")
    log.add_argument("--log-error", kind=cli.PLAIN,
                     type=cli.regex_type, action="append", default=[],
                     metavar="REGEX", help="a line telling failure (repeatable)")
    log.add_argument("--log-start", kind=cli.PLAIN, type=cli.regex_type, metavar="REGEX",
                     help="a line that begins a run: then only the newest run with a result "
                          "counts, and any error in it fails it (default: the last success "
                          "or error line in the log decides)")
    thr = parser.add_argument_group("thresholds")
    parser.add_thresholds(
        units.DURATION, "26h", "50h", metavar="AGE", group=thr, help=(
            "warn when the newest backup is older than this (Nagios range of durations: 26h, "
            "2d, 90m; default: 26h)", "critical when older than this (default: 50h)"))
    thr.add_argument("--min-size", kind=cli.PLAIN, type=cli.quantity_type(units.SIZE, minimum=0),
                     metavar="SIZE",
                     help="critical when the newest backup is smaller (512MiB, 10GB, 4096); "
                          "a backup of 0 bytes is always critical")
    thr.add_argument("--min-files", kind=cli.PLAIN, type=cli.count_type(minimum=0), metavar="N",
                     help="critical when the newest backup holds fewer regular files; one "
                          "without any is always critical")
    thr.add_argument("--min-snapshots", kind=cli.PLAIN, type=cli.count_type(minimum=1), metavar="N",
                     help="snapshot mode: critical when fewer than N snapshots are kept (the "
                          "versions to restore from when a loss reached the newest one)")
    thr.add_argument("--oldest-snapshot", kind=cli.PLAIN, type=cli.duration_type(minimum=1),
                     metavar="DURATION",
                     help="snapshot mode: critical when the oldest snapshot is younger than "
                          "this: the history does not reach back that far (7 nightly "
                          "snapshots reach back 6d and some hours: use 6d)")
    thr.add_argument("--future-slack", kind=cli.PLAIN,
                     type=cli.duration_type(minimum=0), default=300,
                     metavar="DURATION",
                     help="a time in the future by up to this much (clock skew) counts as "
                          "age 0; more is WARNING (default: 5m)")
    return parser


# -- gathering -----------------------------------------------------------------------------

class Backup:
    """What the check found, ready to judge."""

    def __init__(self, mode, entry=None, what="", files=None, bytes=None, single_file=False,
                 snapshots=None, oldest=None, notes=None, verdict=None, log=None,
                 missing=None, where="", running=(), called=""):
        self.mode = mode
        self.called = called            # repository modes: one backup in words ("borg archive")
        self.entry = entry              # the newest backup (or the stamp), None: none found
        self.what = what                # what was looked for, in words
        self.files = files              # regular files of the newest backup (None: n/a)
        self.bytes = bytes
        self.single_file = single_file  # the backup is one file (a dump)
        self.snapshots = snapshots      # snapshot mode: how many were found
        self.oldest = oldest            # snapshot mode: the oldest of them (a tree.Entry)
        self.notes = [] if notes is None else notes
        self.verdict = verdict          # the log's tree.Verdict, None: no --log
        self.log = log
        self.missing = missing          # --path does not exist: a tree.Missing
        self.where = where              # where the snapshots are, in words ("under /backup")
        self.running = tuple(running)   # repository modes: the Runnings holding its locks
        self.verified = None            # --verify: the newest repository.Verification
        self.verify_note = ""           # why no check ran this run although one was due
        self.newest = None              # repository modes: the newest repository.Snapshot
        self.restored = None            # --restore-sample: a repository.RestoreSample
        self.listing = None             # the repository's Listing; --sleeping: its record
        self.asleep = None              # --sleeping, host unreachable: (how, listed at|None)

    def __eq__(self, other):
        return isinstance(other, Backup) and vars(self) == vars(other)

    def __repr__(self):
        return "Backup(%s)" % ", ".join("%s=%r" % kv for kv in vars(self).items())


REPO_MODES = ("restic", "borg")


def check_ssh_file(path):
    from osop_checks.sources import ssh

    return ssh.check_file_option(path)


def parse_share(text):
    """A share of a repository's data to read: '5%', '1/10', or '0' (none: the structure
    only); kept as written, for the tool."""
    import re

    text = text.strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)%|(\d+)/(\d+)|0", text)
    if not match or (match.group(1) and not 0 < float(match.group(1)) <= 100) or (
            match.group(2) and not 0 < int(match.group(2)) <= int(match.group(3))):
        raise ValueError("%r is not a share of the data: 5%%, 1/10 or 0" % text)
    return "" if text == "0" else text


def check_options(args):
    """Option combinations that do not fit, as one usage line each. Returns the mode, and
    leaves ``args.paths`` (every --path) and ``args.path`` (the one --path of the file
    modes, None in the repository modes)."""
    mode = args.mode or ("stamp" if args.stamp else "newest")
    args.paths = list(args.path or ())
    if mode in REPO_MODES:  # checked with its tool: check_repo_options
        args.path = None
        return mode
    for flag, value in (("--repo", args.repo), ("--password-file", args.password_file),
                        ("--host", args.host), ("--tag", args.tag), ("--prefix", args.prefix),
                        ("--glob-archives", args.glob_archives)):
        if value:
            raise cli.UsageError("%s is for --mode restic and borg" % flag)
    if args.verify is not None or args.state_file or args.restore_sample or args.sleeping \
            or args.ssh_identity or args.ssh_known_hosts:
        raise cli.UsageError("--verify, --state-file, --restore-sample, --sleeping and the "
                             "--ssh options are for --mode restic and borg")
    if len(args.paths) > 1:
        raise cli.UsageError("--path is given once in --mode %s" % mode)
    args.path = args.paths[0] if args.paths else None
    if mode == "stamp" and not args.stamp:
        raise cli.UsageError("--mode stamp needs --stamp FILE")
    if args.stamp and mode != "stamp":
        raise cli.UsageError("--stamp goes with --mode stamp (or no --mode)")
    if mode != "stamp" and not args.path:
        raise cli.UsageError("--path is required (the backup to look at)")
    if args.name_format and mode != "snapshot":
        raise cli.UsageError("--name-format is for --mode snapshot")
    if (args.min_snapshots or args.oldest_snapshot) and mode not in ("snapshot",) + REPO_MODES:
        raise cli.UsageError("--min-snapshots and --oldest-snapshot are for --mode snapshot, "
                             "restic and borg")
    if args.max_depth and mode == "snapshot":
        raise cli.UsageError("--max-depth is for --mode newest (snapshots are the entries "
                             "directly under --path)")
    if mode == "stamp" and args.type:
        raise cli.UsageError("--type is for --mode newest and snapshot (with --stamp, the "
                             "files under --path are counted)")
    if mode == "stamp" and (args.glob or args.max_depth) and not args.path:
        raise cli.UsageError("--glob and --max-depth need --path")
    if (args.log_ok or args.log_error or args.log_start) and not args.log:
        raise cli.UsageError("--log-ok, --log-error and --log-start need --log FILE")
    if mode == "snapshot" and args.name_format:
        try:
            tree.NameFormat(args.name_format)
        except ValueError as exc:
            raise cli.UsageError("--name-format %s" % exc) from None
    return mode


def repository_tool(mode):
    """The repository.Tool of --mode restic or borg, chosen here once (its source imported
    only now: a run of the file modes pays for neither)."""
    if mode == "restic":
        from osop_checks.sources import restic as source
    else:
        from osop_checks.sources import borg as source
    return source.TOOL


def repo_filters(args):
    """The options that choose a repository's snapshots: (flag, the keyword of the
    Tool.matches that takes it, its value)."""
    return [("--host", "hosts", args.host), ("--tag", "tags", args.tag),
            ("--path", "paths", args.paths), ("--prefix", "prefix", args.prefix),
            ("--glob-archives", "glob", args.glob_archives)]


def check_repo_options(args, tool):
    """The options of the repository modes that do not fit ``tool``, as one usage line."""
    for flag, value in (("--stamp", args.stamp), ("--type", args.type), ("--glob", args.glob),
                        ("--max-depth", args.max_depth), ("--name-format", args.name_format),
                        ("--log", args.log), ("--min-size", args.min_size),
                        ("--min-files", args.min_files),
                        ("--ignore-missing", args.ignore_missing)):
        if value:
            raise cli.UsageError("%s is not for --mode %s" % (flag, tool.name))
    if args.verify and tool.shares is not None and args.verify not in tool.shares:
        raise cli.UsageError("%s check reads all of the data or none: --verify %s or 0" % (
            tool.name, tool.shares[0]))
    for flag, keyword, value in repo_filters(args):
        if value and keyword not in tool.filters:
            raise cli.UsageError(other_tools_filter(args, flag, keyword, tool))
    if not (args.repo or os.environ.get(tool.repo_env)):
        raise cli.UsageError("--mode %s needs --repo (or %s)" % (tool.name, tool.repo_env))
    if tool.password_env and not args.password_file and not any(
            os.environ.get(name) for name in tool.password_env):
        raise cli.UsageError("--mode %s needs --password-file (or %s in the environment)" % (
            tool.name, _listed(tool.password_env, "or")))


def other_tools_filter(args, flag, keyword, tool):
    """Why ``flag``, a filter of another tool than ``tool``, is refused: whose it is, and
    the filters of both."""
    def flags(of):
        return _listed([f for f, k, value in repo_filters(args) if k in of.filters], "and")

    owner = next(other for other in map(repository_tool, REPO_MODES)
                 if keyword in other.filters)
    return "%s is for --mode %s (%s: %s; %s: %s)" % (flag, owner.name, owner.name, flags(owner),
                                                    tool.name, flags(tool))


def _listed(words, last):
    """'a', 'a and b', 'a, b and c' (``last``: 'and', 'or')."""
    words = list(words)
    return ", ".join(words[:-1]) + " %s %s" % (last, words[-1]) if len(words) > 1 \
        else words[0]


def _too_unreadable(scan, root, args, backup):
    if not scan.error_count:
        return
    message = "cannot read %d director%s under %s (first: %s)" % (
        scan.error_count, plugin.plural(scan.error_count, "y", "ies"), root, scan.errors[0])
    if not args.skip_unreadable:
        raise nagiosplugin.CheckError(
            message + "; the newest backup may be in there (--skip-unreadable goes on "
                      "without them)")
    backup.notes.append("skipped: " + message)


class Access(collections.namedtuple("Access", "tool location password_file ssh")):
    """How the repository is reached: the tool (a repository.Tool), the location, the
    password file (None: the environment's) and the ssh.Options of an sftp/ssh repository."""
    __slots__ = ()

    @property
    def mode(self):
        """The tool's name, as --mode says it."""
        return self.tool.name


def access_of(tool, args):
    from osop_checks.sources import ssh

    return Access(tool, args.repo or os.environ.get(tool.repo_env, ""), args.password_file,
                  ssh.Options(identity=args.ssh_identity, known_hosts=args.ssh_known_hosts))


def repo_words(tool, args):
    """What is looked for in a repository, in words: 'restic snapshots of host web1 with
    tags nightly'."""
    words = ["%s %ss" % (tool.name, tool.snapshot)]
    if args.host:
        words.append("of host %s" % " or ".join(args.host))
    if args.tag:
        words.append("tagged %s" % " or ".join(args.tag))
    if args.paths:
        words.append("of %s" % " and ".join(args.paths))
    if args.prefix:
        words.append("named %s*" % args.prefix)
    if args.glob_archives:
        words.append("matching %s" % args.glob_archives)
    return " ".join(words)


def selected(tool, snapshots, args):
    """The snapshots the filters let through; a Borg checkpoint archive (a backup cut off
    and resumed later) is never a backup."""
    chosen = {keyword: value for flag, keyword, value in repo_filters(args)
              if keyword in tool.filters}
    return [s for s in snapshots if tool.matches(s, **chosen)]


def default_state_file(mode, location, environ=None, uid=None):
    from osop_checks import state as state_files

    return state_files.default_path("backup_age", identity=[mode, location], environ=environ,
                                    uid=uid)


def read_verification(record):
    """The Verification a state file remembers (None: none, or not one of ours)."""
    try:
        return repository.Verification(float(record["time"]), bool(record["ok"]),
                                       str(record["result"]), str(record.get("share", "")))
    except (KeyError, TypeError, ValueError):
        return None


def gather_verify(args, access, backup, verify, previous, now):
    """--verify: the tool's check when the last is older than --verify-every (or checked
    another share), else the remembered one; never while a backup holds the lock."""
    last = read_verification((previous or {}).get("verify"))
    due = last is None or now - last.time >= args.verify_every or last.share != args.verify
    backup.verified = last
    if not due:
        return
    if any(run.status == repository.RUNNING for run in backup.running):
        backup.verify_note = "check due, not run: a backup holds the lock"
        return
    try:
        backup.verified = verify(access, args.verify)
    except (repository.Unreachable, repository.Locked) as exc:
        backup.verify_note = "check due, not run: %s" % text.oneline(str(exc), 200)
    except proc.CommandError as exc:
        if exc.reason != proc.TIMEOUT:
            raise
        backup.verify_note = ("check due, not finished within the --timeout (give it "
                              "longer: -t)")


def verify_repository(access, share):
    """The repository checked by its own tool, as a repository.Verification."""
    return access.tool.verify(access.location, access.password_file, share,
                              ssh_options=access.ssh)


def gather_repo(args, access, read_repo, missing_place):
    """Repository modes: the newest snapshot the filters let through, how many there are,
    the oldest, and who holds the repository's locks (a backup running now). A host that
    cannot be reached raises repository.Unreachable."""
    tool, location = access.tool, access.location
    local = tool.local_path(location)
    if local is not None and not os.path.exists(local):
        return Backup(tool.name, what="--repo %s" % location, missing=missing_place(local))
    listing = read_repo(access)
    return listed(args, tool, location, listing)


def listed(args, tool, location, listing):
    """The Backup of a repository's Listing (read now, or remembered by --sleeping)."""
    found = selected(tool, listing.snapshots, args)
    backup = Backup(tool.name, what="%s in %s (%d in all)" % (
        repo_words(tool, args), location, len(listing.snapshots)),
        where="in %s" % location, running=listing.running,
        called="%s %s" % (tool.name, tool.snapshot))
    backup.listing = listing
    if not found:
        return backup
    newest = max(found, key=lambda snap: snap.time)
    oldest = min(found, key=lambda snap: snap.time)
    backup.newest = newest
    backup.entry = _snapshot_entry(newest)
    backup.files, backup.bytes = newest.files, newest.bytes
    backup.snapshots, backup.oldest = len(found), _snapshot_entry(oldest)
    backup.notes.append("%d of %d snapshot%s in %s match, the oldest %s of %s" % (
        len(found), len(listing.snapshots), plugin.plural(len(listing.snapshots)), location,
        oldest.name, _when(oldest.time)))
    return backup


def _snapshot_entry(snap):
    label = snap.name
    if snap.host:
        label += " (%s:%s)" % (snap.host, ",".join(snap.paths))
    return tree.Entry(label, snap.time, snap.bytes or 0, False, None)


def read_repository(access):
    """The Listing of a repository by its own tool."""
    return access.tool.read(access.location, access.password_file, ssh_options=access.ssh)


def listing_record(listing, now):
    """A Listing as the state file keeps it for --sleeping: its time and its snapshots
    (without locks: a lock tells about the moment it was seen)."""
    return {"time": now, "snapshots": [s._asdict() for s in listing.snapshots]}


def read_listing(record):
    """(time, Listing) of a remembered listing; None when there is none (or it is not one
    of ours)."""
    try:
        snapshots = [repository.Snapshot(**dict(item, paths=tuple(item["paths"]),
                                                tags=tuple(item["tags"])))
                     for item in record["snapshots"]]
        return float(record["time"]), repository.Listing(snapshots)
    except (KeyError, TypeError, ValueError):
        return None


def gather(args, mode, scan, snapshots, stamp, tz):
    """The backup as ``mode`` finds it: one gatherer per mode, chosen here."""
    if mode == "stamp":
        return gather_stamp(args, stamp, scan, tz)
    if mode == "snapshot":
        return gather_snapshot(args, args.type or "dir", snapshots, scan, tz)
    return gather_newest(args, args.type or "file", scan)


def gather_stamp(args, stamp, scan, tz):
    """Stamp mode: the time in (or of) the stamp file; the files under --path counted."""
    backup = Backup("stamp", what="stamp file %s" % args.stamp)
    try:
        found = stamp(args.stamp)
    except tree.NotFound:
        if not os.path.isdir(os.path.dirname(args.stamp)):
            raise nagiosplugin.CheckError("the directory of --stamp %s does not exist"
                                          % args.stamp) from None
        return backup
    when = tree.parse_stamp(found.text, tz) if args.stamp_time != "mtime" else None
    if args.stamp_time == "content" and when is None:
        raise nagiosplugin.CheckError(
            "stamp file %s holds no timestamp in its first line (ISO 8601 or epoch "
            "seconds): %r" % (args.stamp, text.oneline(found.text, 60)))
    if when is None:
        when, source = (found.ctime, "ctime") if args.time == "ctime" else (
            found.mtime, "mtime")
    else:
        source = "content"
    backup.entry = tree.Entry(args.stamp, when, 0, False, source)
    if args.path:
        result = _walk(scan, args, args.path, "file", backup)
        backup.files, backup.bytes = result.files, result.bytes
    return backup


def gather_snapshot(args, kind, snapshots, scan, tz):
    """Snapshot mode: the newest of the dated entries under --path, its contents counted,
    how many there are and the oldest."""
    backup = Backup("snapshot", where="under %s" % args.path)
    fmt = args.name_format or "auto"
    found, seen = snapshots(args.path, fmt, args.glob, kind, args.time, tz)
    backup.what = "%s snapshot%s under %s (%d entr%s looked at)" % (
        "file" if kind == "file" else "directory",
        "" if fmt == "auto" else " named %s" % fmt, args.path, seen,
        plugin.plural(seen, "y", "ies"))
    newest = tree.newest_snapshot(found)
    if newest is None:
        return backup
    backup.entry = newest
    backup.snapshots = len(found)
    backup.oldest = tree.oldest_snapshot(found)
    if newest.is_dir:
        result = _walk(scan, args, newest.path, "file", backup, whole=True)
        backup.files, backup.bytes = result.files, result.bytes
    else:
        backup.files, backup.bytes, backup.single_file = 1, newest.size, True
    backup.notes.append("%d snapshot%s found, the oldest %s: %s %s" % (
        len(found), plugin.plural(len(found)), backup.oldest.path,
        backup.oldest.time_source, _when(backup.oldest.time)))
    return backup


def gather_newest(args, kind, scan):
    """Newest mode: the tree under --path is one backup, as old as its newest entry."""
    backup = Backup("newest")
    result = _walk(scan, args, args.path, kind, backup)
    backup.what = "%s%s under %s" % (
        "directory" if kind == "dir" else "file",
        " matching %s" % args.glob if args.glob else "", args.path)
    backup.entry = result.newest
    if result.newest is not None and result.newest.path == args.path:
        backup.single_file = True  # --path is a file
    if kind == "dir" and result.newest is not None:
        result_inner = _walk(scan, args, result.newest.path, "file", backup, whole=True)
        backup.files, backup.bytes = result_inner.files, result_inner.bytes
    else:
        backup.files, backup.bytes = result.files, result.bytes
    backup.notes.append("walked %d director%s with %d process%s" % (
        result.dirs, plugin.plural(result.dirs, "y", "ies"), result.workers,
        plugin.plural(result.workers, "", "es")))
    return backup


def _walk(scan, args, root, kind, backup, whole=False):
    """One scan of ``root``; directories it could not read fail the check, or are noted
    in ``backup`` with --skip-unreadable."""
    result = _scan(scan, args, root, kind, whole)
    _too_unreadable(result, root, args, backup)
    return result


def _scan(scan, args, root, kind, whole=False):
    if whole:  # the contents of one backup: every regular file at any depth
        return scan(root, kind="file", pattern=None, max_depth=None, time_field=args.time,
                    workers=args.workers)
    return scan(root, kind=kind, pattern=args.glob, max_depth=args.max_depth,
                time_field=args.time, workers=args.workers)


# -- judgement -----------------------------------------------------------------------------

class Limits(collections.namedtuple("Limits", "warning critical future_slack min_size "
                                    "min_files min_snapshots oldest_snapshot ignore_missing "
                                    "max_run",
                                    defaults=(None, None, 300, None, None, None, None, False,
                                              6 * 3600))):
    """What the backup is judged against: -w/-c (age ranges in seconds, nagiosplugin.Range or
    None), the clock-skew slack, the lower limits (None: none), and whether a missing --path
    is fine."""
    __slots__ = ()


def limits_of(args):
    return Limits(args.warning, args.critical, args.future_slack, args.min_size,
                  args.min_files, args.min_snapshots, args.oldest_snapshot,
                  args.ignore_missing, args.max_run)


def _when(seconds):
    return datetime.datetime.fromtimestamp(seconds).astimezone().isoformat(timespec="seconds")


def _limit(rng):
    """The threshold a backup breached, as written: 'limit 50h', 'range @0:1h'."""
    plain = not rng.invert and rng.start == 0 and rng.end != float("inf")
    return "%s %s" % ("limit" if plain else "range", units.range_text(rng, units.DURATION))


def describe(backup):
    entry = backup.entry
    if backup.called:
        return "newest %s %s" % (backup.called, entry.path)
    if backup.mode == "stamp":
        return "stamp %s" % entry.path
    if backup.mode == "snapshot":
        return "newest snapshot %s" % entry.path
    return "newest %s %s" % ("directory" if entry.is_dir else "file", entry.path)


def _at_least(name, value, uom, minimum):
    """The perfdata of a quantity with a lower limit: the limit is its critical range."""
    critical = units.range_of(start=minimum) if minimum else None
    return nagiosplugin.Performance(name, value, uom, None, critical, 0)


def judge_age(backup, limits, now):
    """The age of the newest backup against -w/-c: (state, words), perfdata. A time in the
    future within the slack is age 0, beyond it WARNING."""
    age = now - backup.entry.time
    perfdata = nagiosplugin.Performance("age", int(round(max(0.0, age))), "s",
                                        limits.warning, limits.critical, 0)
    what, source = describe(backup), backup.entry.time_source
    if age < -limits.future_slack:
        return (Warn, "%s is dated %s in the future (%s %s; clock skew?)" % (
            what, units.format_duration(-age), source, _when(backup.entry.time))), perfdata
    age = max(0.0, age)
    shown = "%s is %s old%s" % (what, units.format_duration(age),
                                " (%s)" % source if source else "")
    state = plugin.state_of(age, limits.warning, limits.critical)
    if state == Ok:
        return (Ok, shown), perfdata
    return (state, "%s, %s" % (shown, _limit(
        limits.critical if state == Critical else limits.warning))), perfdata


def judge_contents(backup, limits):
    """The newest backup's size and file count: an empty one is CRITICAL, so is one below
    --min-size or --min-files."""
    what, size, files = describe(backup), backup.bytes, backup.files
    if size == 0 and files:
        found = (Critical, "%s is empty (0 bytes%s)" % (
            what, "" if backup.single_file else " in %d files" % files))
    elif limits.min_size is not None and size < limits.min_size and files:
        found = (Critical, "%s holds only %s (minimum %s)" % (
            what, units.format_size(size), units.format_size(limits.min_size)))
    else:
        found = (Ok, units.format_size(size))
    findings = [found]
    if files == 0:
        findings.append((Critical, "%s is empty (no files)" % what))
    elif limits.min_files is not None and files < limits.min_files:
        findings.append((Critical, "%s holds only %d file%s (minimum %d)" % (
            what, files, plugin.plural(files), limits.min_files)))
    else:
        findings.append((Ok, "%d file%s" % (files, plugin.plural(files))))
    return findings, [_at_least("size", size, "B", limits.min_size),
                      _at_least("files", files, "", limits.min_files)]


def judge_history(backup, limits, now):
    """Snapshot mode: how many versions are kept (--min-snapshots) and how far back the
    oldest reaches (--oldest-snapshot)."""
    count, oldest = backup.snapshots, backup.oldest
    shown = "%d snapshot%s" % (count, plugin.plural(count))
    if limits.min_snapshots is not None and count < limits.min_snapshots:
        kept = (Critical, "only %s %s, at least %d wanted" % (
            shown, backup.where or "under %s" % os.path.dirname(backup.entry.path),
            limits.min_snapshots))
    else:
        kept = (Ok, shown)
    reach = max(0.0, now - oldest.time)
    if limits.oldest_snapshot is not None and reach < limits.oldest_snapshot:
        back = (Critical, "oldest snapshot %s is only %s old%s, at least %s wanted" % (
            oldest.path, units.format_duration(reach),
            " (%s)" % oldest.time_source if oldest.time_source else "",
            units.format_duration(limits.oldest_snapshot)))
    else:
        back = (Ok, "the oldest %s old" % units.format_duration(reach))
    return [kept, back], [
        _at_least("snapshots", count, "", limits.min_snapshots),
        _at_least("oldest_age", int(round(reach)), "s", limits.oldest_snapshot)]


def judge_log(backup):
    """The verdict of the backup's log: an error in its newest run is CRITICAL, a log that
    tells neither success nor failure WARNING."""
    verdict, path = backup.verdict, backup.log
    if verdict.state == "error":
        return (Critical, "log %s line %d: %s" % (path, verdict.lineno,
                                                  text.oneline(verdict.line, 160)))
    if verdict.state == "none":
        return (Warn, "log %s tells neither success nor failure" % path)
    return (Ok, "log %s ok at line %d: %s" % (path, verdict.lineno,
                                              text.oneline(verdict.line, 160)))


def judge_missing(missing, ignore, flag="--path"):
    """A --path (--repo) that does not exist: CRITICAL (the backup is lost, or its disk is not
    mounted), OK with --ignore-missing; where it would be, in words."""
    if ignore:
        return (Ok, "%s %s does not exist (--ignore-missing)" % (flag, missing.path))
    if missing.unmounted:
        where = "%s is in /etc/fstab but not mounted" % missing.unmounted
    else:
        where = "nearest existing parent %s, on the filesystem mounted at %s" % (
            missing.parent, missing.mount)
    return (Critical, "%s %s does not exist (%s)" % (flag, missing.path, where))


STALE_REFRESH = 30 * 60  # restic refreshes its locks every 5 minutes, and calls 30 stale


def _hhmm(epoch):
    return units.format_time(epoch, "%H:%M")


def _holder(run):
    return "pid %d on %s" % (run.pid, "this host" if run.status != repository.ELSEWHERE
                             else run.host)


def judge_asleep(age, backup, now):
    """--sleeping, the host not reached: the age finding of the remembered newest snapshot,
    with when it was listed; too old, the box may not have woken up."""
    if backup.asleep is None:
        return age
    state, words = age
    how, listed_at = backup.asleep
    said = "%s; repository host asleep (%s), last listed %s ago" % (
        words, how, units.format_duration(max(0.0, now - listed_at)))
    return (state, said + (": did the box wake up?" if state != Ok else ""))


def judge_running(age, backup, limits, now):
    """A newest snapshot too old while a backup holds the repository's lock: WARNING
    "backup running since HH:MM" while it has run less than --max-run; longer, or a lock
    whose process is gone (stale), CRITICAL saying so. ``age`` is the age finding."""
    state, words = age
    live = [run for run in backup.running if run.status == repository.RUNNING or (
        run.status == repository.ELSEWHERE and not (
            run.refreshed and now - run.lock_time > STALE_REFRESH))]
    stale = [run for run in backup.running if run not in live]
    if state == Ok or not backup.running:
        return age
    if live:
        run = min(live, key=lambda r: r.since)
        took = max(0.0, now - run.since)
        if took > limits.max_run:
            return (Critical, "%s; backup running since %s (%s, %s), longer than --max-run "
                    "%s" % (words, _hhmm(run.since), units.format_duration(took),
                            _holder(run), units.format_duration(limits.max_run)))
        return (Warn, "%s; backup running since %s (%s)" % (words, _hhmm(run.since),
                                                              _holder(run)))
    run = stale[0]
    why = ("its process is gone" if run.status == repository.GONE else
           "not refreshed for %s" % units.format_duration(now - run.lock_time))
    return (Critical, "%s; the repository is locked since %s by %s, but %s: a stale lock" % (
        words, _hhmm(run.lock_time), _holder(run), why))


def judge_verified(backup, now, limit=120):
    """--verify: the last check of the repository, CRITICAL while it failed (until one
    passes); none yet (due, but a backup held the lock) is only said."""
    verified, tool = backup.verified, backup.mode
    if verified is None:
        return (Ok, "not checked yet (%s)" % backup.verify_note if backup.verify_note
                else "not checked yet")
    when = "%s check of %s (%s ago)" % (tool, units.format_time(verified.time, "%Y-%m-%d %H:%M"),
                                        units.format_duration(max(0.0, now - verified.time)))
    if verified.ok:
        return (Ok, "%s passed" % when)
    return (Critical, "%s failed: %s" % (when, text.oneline(verified.result, limit)))


def judge_restore(restored):
    """--restore-sample: each file whose restored copy differs from its unchanged live file,
    has another size than recorded, or was not restored is CRITICAL, named; the restore's
    own failure too. The last finding tells what was tried."""
    findings = []
    if restored.error:
        findings.append((Critical, "restore failed: %s" % text.oneline(restored.error, 160)))
    bad = [s for s in restored.samples if s.outcome in (
        repository.DIFFERS, repository.WRONG_SIZE, repository.NOT_RESTORED)]
    for sample in bad:
        findings.append((Critical, "restored %s %s" % (sample.node.live or sample.node.path,
                                                        sample.outcome)))
    same = sum(1 for s in restored.samples if s.outcome == repository.SAME)
    tried = len(restored.samples)
    if not tried:
        findings.append((Ok, "no file to restore (%d seen)" % restored.files_seen))
    else:
        findings.append((Ok, "%d of %d file%s restored fine (%d compared with the live "
                         "file)" % (tried - len(bad), tried, plugin.plural(tried), same)))
    return findings


def judge(backup, limits, now, save=None):
    """The Verdict on ``backup`` (what gather found) against ``limits`` at time ``now``: the
    status line names every problem, worst first; when all is well, the age, the contents,
    the history and the log. ``save``: a callable taking the next state (--verify)."""
    findings, perfdata, fine = [], [], []
    if backup.missing is not None:
        found = judge_missing(backup.missing, limits.ignore_missing,
                              "--repo" if backup.mode in REPO_MODES else "--path")
        findings.append(found)
        fine.append(found[1])
    elif backup.asleep is not None and backup.entry is None:
        findings.append((Critical, "%s asleep (%s) and never listed: nothing to judge" % (
            backup.what, backup.asleep[0])))
    elif backup.entry is None:
        findings.append((Critical, "no backup found: %s" % (
            "%s does not exist" % backup.what if backup.mode == "stamp"
            else "no %s" % backup.what)))
    else:
        age, performance = judge_age(backup, limits, now)
        age = judge_running(age, backup, limits, now)
        age = judge_asleep(age, backup, now)
        findings.append(age)
        perfdata.append(performance)
        fine.append(age[1])
        if backup.files is not None:
            found, performance = judge_contents(backup, limits)
            findings += found
            perfdata += performance
            fine.append("%d file%s, %s" % (backup.files, plugin.plural(backup.files),
                                           units.format_size(backup.bytes)))
        if backup.snapshots is not None:
            found, performance = judge_history(backup, limits, now)
            findings += found
            perfdata += performance
            fine.append("%s, %s" % (found[0][1], found[1][1]))
    if backup.verdict is not None:
        findings.append(judge_log(backup))
        fine.append("log ok")
    if backup.restored is not None:
        found = judge_restore(backup.restored)
        findings += found
        fine.append(found[-1][1])
    remember = {}
    if backup.verified is not None or backup.verify_note:
        found = judge_verified(backup, now)
        findings.append(found)
        if backup.verified is not None:
            fine.append("last check passed")
            remember["verify"] = backup.verified.record()
    if backup.listing is not None:
        remember["listing"] = backup.listing
    problems = [words for state, words in plugin.worst_first(
        findings, state=lambda finding: finding[0]) if state != Ok]
    long = details(backup)
    if backup.verified is not None or backup.verify_note:
        long.insert(0, "integrity: %s" % judge_verified(backup, now, 400)[1] + (
            "; %s" % backup.verify_note if backup.verify_note and backup.verified else ""))
    return plugin.Verdict(findings, "; ".join(problems or fine), perfdata, long,
                          save=None if save is None or not remember
                          else functools.partial(save, remember))


def details(backup):
    """The long output: the backup's time, its contents, the log's deciding line, notes."""
    lines = []
    if backup.entry is not None:
        entry = backup.entry
        lines.append("%s: %s %s" % (entry.path, entry.time_source or "time",
                                    _when(entry.time)))
        if backup.files is not None:
            lines.append("backup holds %d regular file%s, %s (%d bytes)" % (
                backup.files, plugin.plural(backup.files),
                units.format_size(backup.bytes), backup.bytes))
    if backup.verdict is not None:
        verdict = backup.verdict
        if verdict.state != "none":
            lines.append("log %s: %s at line %d: %s" % (
                backup.log, verdict.state, verdict.lineno, verdict.line))
        if verdict.note:
            lines.append("log %s: %s" % (backup.log, verdict.note))
    if backup.restored is not None:
        for sample in backup.restored.samples:
            lines.append("restore sample %s (%d bytes recorded, %s restored): %s" % (
                sample.node.live or sample.node.path, sample.node.size,
                "not" if sample.restored_size is None else "%d bytes" % sample.restored_size,
                sample.outcome))
    for run in backup.running:
        lines.append("lock held by %s (%s)%s: %s, lock time %s" % (
            _holder(run), run.status, " " + run.command if run.command else "",
            "since %s" % _when(run.since), _when(run.lock_time)))
    lines.extend(backup.notes)
    return lines


def restore_repository(access, snapshot, n, cap):
    """``n`` files of ``snapshot`` restored by the repository's own tool and compared."""
    return access.tool.restore_sample(access.location, access.password_file, snapshot, n, cap,
                                      ssh_options=access.ssh)


def gather_repository(args, tool, read_repo, missing_place, verify, store, now, restore):
    """The repository modes' gathering: the listing (with --sleeping, the last one
    remembered while the host cannot be reached), a restore tried (--restore-sample), and
    with --verify the last check (run now when due); returns the Backup and the callable
    that saves the next state (None: no state)."""
    access = access_of(tool, args)
    keeps_state = args.verify is not None or args.sleeping
    previous, save = None, None
    if keeps_state:
        if store is None:
            from osop_checks import state as state_files

            store = state_files
        path = args.state_file or default_state_file(tool.name, access.location)
        store.ensure_dir(path, create=not args.state_file)
        previous = store.load(path, reset="remove it", discard_corrupt=True) or {}
        save = functools.partial(store.save, path)
    try:
        backup = gather_repo(args, access, read_repo, missing_place)
    except repository.Unreachable as exc:
        if not args.sleeping or exc.kind not in ASLEEP_KINDS:
            raise nagiosplugin.CheckError(str(exc)) from None
        return asleep(args, tool, access.location, exc, previous), save
    if backup.missing is not None:
        return backup, None
    backup.listing = listing_record(backup.listing, now) if args.sleeping and \
        backup.listing is not None else None
    if args.restore_sample and backup.newest is not None:
        backup.restored = restore(access, backup.newest, args.restore_sample,
                                  args.restore_max_size)
    if args.verify is not None:
        gather_verify(args, access, backup, verify, previous, now)
    return backup, save


# ssh failures that mean "the host is off" (not a wrong key, a refused login ...)
ASLEEP_KINDS = ("timeout", "connection refused", "unreachable")


def asleep(args, tool, location, exc, previous):
    """--sleeping and the host cannot be reached: the Backup of the last good listing
    (its snapshots judged as they age), or none when there never was one."""
    remembered = read_listing((previous or {}).get("listing"))
    if remembered is None:
        backup = Backup(tool.name, what="%s in %s" % (repo_words(tool, args), location))
    else:
        backup = listed(args, tool, location, remembered[1])
        backup.listing = previous["listing"]
        backup.notes.append("listing of %s remembered from %s" % (location,
                                                                  _when(remembered[0])))
    backup.asleep = (exc.kind, None if remembered is None else remembered[0])
    backup.verified = read_verification((previous or {}).get("verify"))
    return backup


def build_check(args, scan=tree.scan_tree, snapshots=tree.list_snapshots,
                stamp=tree.read_stamp, read_log=tree.read_log, now=time.time,
                missing_place=tree.missing_place, read_repo=read_repository,
                verify=verify_repository, store=None, restore=restore_repository,
                copies=tree.running_copies):
    mode = check_options(args)
    if mode in REPO_MODES:
        tool = repository_tool(mode)
        check_repo_options(args, tool)
        at = now()
        backup, save = gather_repository(args, tool, read_repo, missing_place, verify, store,
                                         at, restore)
        return judge(backup, limits_of(args), at, save)
    tz = datetime.timezone.utc if args.utc else None
    try:
        backup = gather(args, mode, scan, snapshots, stamp, tz)
    except tree.NotFound as exc:
        if exc.path != args.path:
            raise nagiosplugin.CheckError("%s does not exist" % exc) from None
        backup = Backup(mode, what="--path %s" % args.path,
                        missing=missing_place(args.path))
    at = now()
    if args.path and backup.missing is None and backup.entry is not None and \
            plugin.state_of(at - backup.entry.time, args.warning, args.critical) != Ok:
        # too old: an rsync at work on it now makes it a backup in progress (looked for
        # only then, since listing the processes costs every run a little)
        backup.running = tuple(copies(args.path))
    if args.log:
        try:
            log_text = read_log(args.log)
        except tree.NotFound:
            raise nagiosplugin.CheckError("--log %s does not exist" % args.log) from None
        except OSError as exc:  # unreadable, or a device or FIFO that gives more than 4 MiB
            raise nagiosplugin.CheckError("cannot read the --log %s: %s" % (
                args.log, exc.strerror or exc)) from None
        backup.log = args.log
        backup.verdict = tree.log_verdict(log_text, args.log_ok, args.log_error,
                                          args.log_start)
    return judge(backup, limits_of(args), at)


def main(argv=None):
    runtime.main(NAME, build_parser, build_check, argv)
