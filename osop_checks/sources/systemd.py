"""systemd through systemctl: the units, the timers, the system state and unit properties.

No D-Bus library: every answer comes from running ``systemctl`` (through an optional command
prefix such as ``nsenter -t PID -a systemctl``), as JSON where systemctl writes it (systemd 246
and later: ``--output=json`` on its tables) and as the plain table otherwise. A table whose
header is not the one this module knows fails loudly ("the layout of systemctl output has
changed") instead of being guessed at.

systemctl runs with TZ=UTC, so the timestamps it prints are read without guessing a zone.
The parse functions are pure and return plain records (named tuples; no dataclasses, whose
inspect/ast chain would cost every start more than the parsing); ``gather`` is the only I/O.
"""
from __future__ import annotations

import collections
import json
import re

import nagiosplugin

from osop_checks import proc

UNIT_COLUMNS = ("UNIT", "LOAD", "ACTIVE", "SUB", "DESCRIPTION")
UNIT_COLUMNS_JOB = ("UNIT", "LOAD", "ACTIVE", "SUB", "JOB", "DESCRIPTION")
BULLETS = ("\u25cf", "*", "\u25cb", "\u00d7")
TIMER_COLUMNS = ("NEXT", "LEFT", "LAST", "PASSED", "UNIT", "ACTIVATES")
ACTIVE_STATES = frozenset(("active", "inactive", "failed", "activating", "deactivating",
                           "reloading", "maintenance", "refreshing"))
SYSTEM_STATES = frozenset(("initializing", "starting", "running", "degraded", "maintenance",
                           "stopping", "offline", "unknown"))
PROPERTIES = ("Id", "Description", "LoadState", "ActiveState", "SubState", "Type", "Result",
              "ConditionResult", "ConditionTimestamp", "ActiveEnterTimestamp",
              "ExecMainExitTimestamp", "ExecMainStatus", "UnitFileState")
# What every systemctl run gets: UTC timestamps, no pager, no colours, no ask-password agent.
ENVIRONMENT = {"TZ": "UTC", "SYSTEMD_PAGER": "", "PAGER": "cat", "SYSTEMD_COLORS": "0"}
# A unit name as systemd allows it (templates and escapes included).
UNIT_NAME = re.compile(r"^[A-Za-z0-9:_.\\@-]+$")


def layout_error(what, detail=""):
    """systemctl wrote something this module does not understand."""
    return proc.LayoutError("the layout of systemctl output has changed: %s" % what, detail)


class Unit(collections.namedtuple("Unit", "name load active sub description",
                                  defaults=("",))):
    """One row of ``systemctl list-units --all``."""
    __slots__ = ()

    @property
    def kind(self):
        """The unit type: service, timer, socket, mount ..."""
        return self.name.rsplit(".", 1)[-1] if "." in self.name else ""


class Timer(collections.namedtuple("Timer", "name activates last next",
                                   defaults=(None, None))):
    """One row of ``systemctl list-timers --all``; times are Unix seconds, None for never."""
    __slots__ = ()


class Properties(collections.namedtuple(
        "Properties", "name load_state active_state sub_state type result condition_result "
        "condition_time active_enter exit_time exit_status description unit_file_state",
        defaults=("", "", "", "", "", "", None, None, None, None, "", ""))):
    """What ``systemctl show -p ...`` says about one unit; times are Unix seconds or None."""
    __slots__ = ()

    @property
    def condition_failed(self):
        """The unit was skipped because a start condition was not met (checked, not 'yes')."""
        return self.condition_result == "no" and self.condition_time is not None

    @property
    def exited_successfully(self):
        """A oneshot service that ran and whose main process exited with 0."""
        return (self.type == "oneshot" and self.result == "success"
                and self.exit_time is not None and self.exit_status == 0)


class Snapshot(collections.namedtuple("Snapshot", "state units timers properties failures",
                                      defaults=(None,))):
    """Everything one check run learned from systemctl: the system state, [Unit], [Timer] or
    None (not asked), {unit name: Properties}, and the unit failures of this boot the
    journal holds, [Failure] newest first (None: not asked)."""
    __slots__ = ()


class Failure(collections.namedtuple("Failure", "unit time result message")):
    """One "unit failed" entry of the journal: the unit, Unix seconds, its result word
    ('exit-code', 'timeout' ...) and the message."""
    __slots__ = ()


# The journal's MESSAGE_ID of "a unit entered the failed state" (SD_MESSAGE_UNIT_FAILED,
# systemd 246 and later: "UNIT: Failed with result 'exit-code'.").
UNIT_FAILED = "d9b373ed55a64feb8242e02dbe79a49c"
FAILURES_KEPT = 20  # journal entries asked for: the newest failures, bounded


# -- parsing --------------------------------------------------------------------------------

def _json_list(text, command):
    """The JSON array systemctl ``command`` wrote, or a proc.LayoutError saying what it wrote."""
    try:
        rows = json.loads(text)
    except ValueError as exc:
        raise layout_error("%s did not write JSON: %s" % (command, exc), text) from None
    if not isinstance(rows, list):
        raise layout_error("%s JSON is not a list" % command, text)
    return rows


def parse_units_json(text) -> list[Unit]:
    """``list-units --all --output=json``: a list of {unit, load, active, sub, description}."""
    rows = _json_list(text, "list-units")
    units = []
    for row in rows:
        if not isinstance(row, dict) or not all(
                isinstance(row.get(k), str) for k in ("unit", "load", "active", "sub")):
            raise layout_error("a list-units JSON entry lacks unit/load/active/sub", str(row))
        units.append(Unit(row["unit"], row["load"], row["active"], row["sub"],
                          str(row.get("description") or "")))
    return units


def parse_units_table(text) -> list[Unit]:
    """``list-units --all --plain`` (legend included): the header must read
    UNIT LOAD ACTIVE SUB [JOB] DESCRIPTION (JOB appears while jobs are queued, e.g. during
    boot); rows end at the first blank line."""
    lines = text.splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        raise layout_error("list-units wrote nothing")
    if re.match(r"^0 loaded units listed", lines[0].strip()):
        return []
    header = lines[0]
    words = tuple(header.split())
    if words not in (UNIT_COLUMNS, UNIT_COLUMNS_JOB):
        raise layout_error("list-units header is not %s" % " ".join(UNIT_COLUMNS), header)
    job = None
    if words == UNIT_COLUMNS_JOB:
        starts = [m.start() for m in re.finditer(r"\S+", header)]
        job = (starts[4], starts[5])
    units = []
    for line in lines[1:]:
        if not line.strip():
            break
        # fancy (non --plain) output marks failed units with a bullet: tolerate it
        if line[:1] in BULLETS:
            line = " " + line[1:]
        fields = line.split(None, 3)
        if len(fields) < 4 or fields[2] not in ACTIVE_STATES:
            raise layout_error("list-units row not understood", line)
        name, load, active, rest = fields
        if job is not None:
            if line[job[0] - 1:job[0]] not in ("", " ") or \
                    line[job[1] - 1:job[1]] not in ("", " "):
                raise layout_error("list-units row not understood", line)
            sub = line[:job[0]].split()[-1]
            description = line[job[1]:].strip()
        else:
            sub, _, description = rest.partition(" ")
        units.append(Unit(name, load, active, sub.strip(), description.strip()))
    return units


def _usec(value):
    if value in (None, 0, "", "0"):
        return None
    try:
        return int(value) / 1e6
    except (TypeError, ValueError):
        raise layout_error("a timestamp in list-timers JSON is not a number", str(value)) \
            from None


def parse_timers_json(text) -> list[Timer]:
    """``list-timers --all --output=json``: next/last in microseconds, 0 or null for never."""
    rows = _json_list(text, "list-timers")
    timers = []
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("unit"), str) \
                or "last" not in row or "next" not in row:
            raise layout_error("a list-timers JSON entry lacks unit/last/next", str(row))
        timers.append(Timer(row["unit"], str(row.get("activates") or ""),
                            _usec(row.get("last")), _usec(row.get("next"))))
    return timers


def parse_timers_table(text) -> list[Timer]:
    """``list-timers --all``: columns are cut at the header's word positions (the dates hold
    spaces); the header must read NEXT LEFT LAST PASSED UNIT ACTIVATES."""
    lines = text.splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        raise layout_error("list-timers wrote nothing")
    if re.match(r"^0 timers listed", lines[0].strip()):
        return []
    header = lines[0]
    if tuple(header.split()) != TIMER_COLUMNS:
        raise layout_error("list-timers header is not %s" % " ".join(TIMER_COLUMNS), header)
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    timers = []
    for line in lines[1:]:
        if not line.strip():
            break
        cells = [line[a:b].strip() for a, b in zip(starts, starts[1:] + [None])]
        # a cell must not have been cut in the middle of a word
        if any(0 < a < len(line) and line[a - 1] != " " for a in starts[1:]) \
                or not UNIT_NAME.match(cells[4]):
            raise layout_error("list-timers row not understood", line)
        timers.append(Timer(cells[4], cells[5], parse_timestamp(cells[2]),
                            parse_timestamp(cells[0])))
    return timers


_STAMP = re.compile(r"^(?:[A-Z][a-z]{2} )?(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.\d+)?"
                    r"(?: (\S+))?$")


def utc_seconds(year, month, day, hour=0, minute=0, second=0):
    """calendar.timegm without importing calendar/_strptime (start-up cost): days from the
    civil date by H. Hinnant's algorithm, proleptic Gregorian."""
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60
            and second < 61):
        raise ValueError("not a date: %d-%02d-%02d %02d:%02d:%02d" % (
            year, month, day, hour, minute, second))
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    return days * 86400 + hour * 3600 + minute * 60 + second


def parse_timestamp(text) -> float | None:
    """A systemd timestamp ('Thu 2026-11-26 10:57:27 UTC', '@1700000000') as Unix seconds;
    None for '', '-' and 'n/a' (never). Only UTC is read: systemctl runs with TZ=UTC."""
    text = str(text).strip()
    if text in ("", "-", "n/a", "0"):
        return None
    if text.startswith("@"):
        try:
            return float(text[1:])
        except ValueError:
            raise layout_error("timestamp not understood", text) from None
    match = _STAMP.match(text)
    if not match:
        raise layout_error("timestamp not understood", text)
    *fields, zone = match.groups()
    if zone not in (None, "UTC", "GMT", "UTC0", "Z"):
        raise nagiosplugin.CheckError(
            "systemctl wrote a timestamp in the time zone %s, not UTC (%s): run systemctl "
            "with TZ=UTC (a remote prefix such as ssh does not pass it on)" % (zone, text))
    try:
        return float(utc_seconds(*(int(f) for f in fields)))
    except ValueError:
        raise layout_error("timestamp not understood", text) from None


def parse_show(text) -> list[Properties]:
    """``show -p ...`` for several units: blocks of Key=value separated by blank lines, in
    the order the units were named."""
    blocks, current = [], {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.match(r"^[A-Za-z]+$", key):
            raise layout_error("show wrote a line that is not Key=value", line)
        current[key] = value
    if current:
        blocks.append(current)
    result = []
    for block in blocks:
        if "Id" not in block:
            raise layout_error("show wrote a block without Id", " ".join(block))
        status = block.get("ExecMainStatus", "")
        result.append(Properties(
            name=block["Id"], load_state=block.get("LoadState", ""),
            active_state=block.get("ActiveState", ""), sub_state=block.get("SubState", ""),
            type=block.get("Type", ""), result=block.get("Result", ""),
            condition_result=block.get("ConditionResult", ""),
            condition_time=parse_timestamp(block.get("ConditionTimestamp", "")),
            active_enter=parse_timestamp(block.get("ActiveEnterTimestamp", "")),
            exit_time=parse_timestamp(block.get("ExecMainExitTimestamp", "")),
            exit_status=int(status) if status.lstrip("-").isdigit() else None,
            description=block.get("Description", ""),
            unit_file_state=block.get("UnitFileState", "")))
    return result


def parse_failures(text) -> list[Failure]:
    """``journalctl -o json`` lines of UNIT_FAILED entries, newest first as ``-r`` writes
    them; an entry without a unit or a time is skipped, a line that is not JSON is a
    LayoutError."""
    failures = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            raise proc.LayoutError("journalctl -o json wrote a line that is not JSON",
                                   line[:200]) from None
        if not isinstance(entry, dict):
            continue
        unit = entry.get("UNIT") or entry.get("USER_UNIT")
        stamp = entry.get("__REALTIME_TIMESTAMP")
        if not isinstance(unit, str) or not isinstance(stamp, str) or not stamp.isdigit():
            continue
        message = entry.get("MESSAGE")
        failures.append(Failure(unit, int(stamp) / 1e6, str(entry.get("UNIT_RESULT") or ""),
                                message if isinstance(message, str) else ""))
    return failures


def parse_state(text) -> str:
    """``is-system-running``: one word."""
    word = text.strip().split("\n", 1)[0].strip()
    if word not in SYSTEM_STATES:
        raise layout_error("is-system-running said something unknown", text)
    return word


def is_json(text):
    return text.lstrip().startswith("[")


# -- running systemctl ----------------------------------------------------------------------

def split_command(command) -> list[str]:
    """The --systemctl value as an argv prefix (shell-like quoting, never a shell)."""
    if not isinstance(command, str):
        return [str(c) for c in command]
    import shlex  # only for a command given as text

    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ValueError("cannot split %r: %s" % (command, exc)) from None
    if not argv:
        raise ValueError("the systemctl command is empty")
    return argv


class Systemctl:
    """Runs ``prefix + [subcommand ...]`` through proc.run and explains failures in words."""

    def __init__(self, command="systemctl", run=proc.run, scope=()):
        """``scope``: options that choose the manager, e.g. ('--user', '-M', 'vet@')."""
        self.prefix = split_command(command)
        self.scope = list(scope)
        self._run = run

    def __call__(self, *args, ok_codes=(0,)):
        return self.completed(*args, ok_codes=ok_codes).stdout

    def completed(self, *args, ok_codes=(0,)):
        argv = self.prefix + ["--no-pager"] + self.scope + list(args)
        done = self._run(argv, env=ENVIRONMENT, ok_codes=None)
        if ok_codes is not None and done.returncode not in ok_codes:
            raise nagiosplugin.CheckError(explain(argv, done))
        done.argv = argv
        return done


def explain(argv, done):
    """One sentence for a failed systemctl run."""
    words = " ".join(a for a in argv if a != "--no-pager")
    if len(words) > 120:
        words = words[:117] + "..."
    lines = [ln.strip() for ln in (done.stderr or "").splitlines() if ln.strip()]
    if any("has not been booted with systemd" in ln for ln in lines):
        return "systemd is not running here (%s: System has not been booted with systemd " \
               "as init system)" % words
    detail = lines[0] if lines else (done.stdout.strip().splitlines() or [""])[-1]
    return "%s failed (exit %d)%s" % (words, done.returncode,
                                      (": " + detail) if detail else "")


def list_units(systemctl, layout="auto"):
    """(units, layout used): JSON when asked or when systemctl writes it, the table else."""
    if layout in ("auto", "json"):
        out = systemctl("list-units", "--all", "--output=json")
        if is_json(out):
            return parse_units_json(out), "json"
        if layout == "json":
            raise layout_error("list-units --output=json did not write JSON (systemd older "
                              "than 246? use --format table)", out)
    return parse_units_table(systemctl("list-units", "--all", "--plain")), "table"


def list_timers(systemctl, layout):
    if layout == "json":
        out = systemctl("list-timers", "--all", "--output=json")
        if is_json(out):
            return parse_timers_json(out)
        raise layout_error("list-timers --output=json did not write JSON", out)
    return parse_timers_table(systemctl("list-timers", "--all"))


def system_state(systemctl):
    # is-system-running exits non-zero for every state but "running": an answer is a word on
    # stdout; no word means the command itself failed
    done = systemctl.completed("is-system-running", ok_codes=None)
    if not done.stdout.strip():
        raise nagiosplugin.CheckError(explain(done.argv, done))
    return parse_state(done.stdout)


def show(systemctl, names: list[str]) -> dict[str, Properties]:
    """Properties of ``names``, keyed by the names as given (systemctl may add .service)."""
    names = list(dict.fromkeys(names))
    if not names:
        return {}
    blocks = parse_show(systemctl("show", "-p", ",".join(PROPERTIES), "--", *names))
    if len(blocks) != len(names):
        raise layout_error("show answered for %d units, asked for %d" % (
            len(blocks), len(names)))
    return dict(zip(names, blocks))


def user_scope(user):
    """The systemctl options that ask the user manager of ``user`` (a lingering user's:
    ``systemctl --user -M USER@``)."""
    return ("--user", "-M", "%s@" % user) if user else ()


def journal_command(command):
    """The journalctl beside the --systemctl ``command`` (its last word 'systemctl' read as
    'journalctl', same directory and prefix); None for a command not ending in systemctl."""
    argv = split_command(command)
    head, _, name = argv[-1].rpartition("/")
    if name != "systemctl":
        return None
    return argv[:-1] + [(head + "/" if head else "") + "journalctl"]


def failures_of_this_boot(command, run=proc.run, manager="_PID=1") -> list[Failure]:
    """The newest unit failures in the current boot's journal that the manager ``manager``
    (a journal match: '_PID=1', the system's; '_SYSTEMD_UNIT=user@1000.service', a user's)
    logged; at most FAILURES_KEPT, newest first. ``command``: the journalctl argv prefix."""
    done = run(command + ["--no-pager", "-b", "-o", "json", "-r", "-n", str(FAILURES_KEPT),
                          "MESSAGE_ID=" + UNIT_FAILED, manager], env=ENVIRONMENT)
    return parse_failures(done.stdout)


def user_manager_match(systemctl) -> str:
    """The journal match of the user manager ``systemctl`` (in user scope) asks: its own
    unit, from its ControlGroup (/user.slice/user-1000.slice/user@1000.service)."""
    out = systemctl("show", "-p", "ControlGroup")
    unit = out.strip().rpartition("/")[2]
    if not out.startswith("ControlGroup=") or not re.match(r"^user@\d+\.service$", unit):
        raise layout_error("the user manager's ControlGroup is not .../user@UID.service", out)
    return "_SYSTEMD_UNIT=" + unit


def gather(command="systemctl", layout="auto", wanted=lambda units, timers: (),
           run=proc.run, timers=True, user=None, journal=lambda units: False) -> Snapshot:
    """Ask systemctl everything a check needs. ``wanted(units, timers)`` names the units whose
    properties are needed (known only once the lists are in); ``timers=False`` skips
    list-timers (Snapshot.timers is then None); ``user``: the user manager of that user
    instead of the system's; ``journal(units)`` True: the journal is asked for this boot's
    unit failures too (through the journalctl beside ``command``; a journal that cannot be
    read leaves Snapshot.failures None, said at -v)."""
    systemctl = Systemctl(command, run, user_scope(user))
    units, layout = list_units(systemctl, layout)
    timer_list = list_timers(systemctl, layout) if timers else None
    state = system_state(systemctl)
    properties = show(systemctl, wanted(units, timer_list or []))
    failures = None
    if journal(units):
        journalctl = journal_command(command)
        try:
            if journalctl is None:
                raise nagiosplugin.CheckError("no journalctl beside --systemctl %s" % command)
            manager = user_manager_match(systemctl) if user else "_PID=1"
            failures = failures_of_this_boot(journalctl, run, manager)
        except nagiosplugin.CheckError as exc:
            import logging

            logging.getLogger("nagiosplugin").warning(
                "the journal's unit failures of this boot are not known: %s", exc)
    return Snapshot(state, units, timer_list, properties, failures)
