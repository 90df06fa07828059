"""check_backup_age: the pure parsers (names, stamps, logs), the tree walk on real trees made
in tmp dirs, and the check's judgement run in-process on those trees."""
import datetime
import os
import re
import subprocess
import sys
import time

import nagiosplugin
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from osop_checks import proc, units
from osop_checks.checks import backup_age
from osop_checks.sources import borg, repository, restic, tree
from lab.peers import run_inprocess, trees
from tests.helpers import fixture

UTC = datetime.timezone.utc
NOW = time.time()
HOUR, DAY = 3600, 86400


@pytest.fixture(autouse=True)
def _now():
    """NOW is taken when each test starts: texts such as "is 2h old" must not drift while
    the rest of the suite runs."""
    global NOW
    NOW = time.time()


def run(*argv):
    return run_inprocess(backup_age, [str(a) for a in argv])


def perfdata(verdict):
    """A Verdict's perfdata as the status line writes it."""
    return sorted(str(p) for p in verdict.perfdata)


def ts(text):
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


# -- snapshot names ------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("2024-05-01", "2024-05-01T00:00:00"),
    ("2024-05-01_0300", "2024-05-01T03:00:00"),
    ("2024-05-01_03:00", "2024-05-01T03:00:00"),
    ("2024-05-01T03:00:09", "2024-05-01T03:00:09"),
    ("host1-2024-05-01-030009", "2024-05-01T03:00:09"),
    ("20240501", "2024-05-01T00:00:00"),
    ("db-20240501T0300.sql.gz", "2024-05-01T03:00:00"),
    ("backup_20240501-030009.tar", "2024-05-01T03:00:09"),
    ("2023-01-01-to-2024-05-01", "2024-05-01T00:00:00"),  # the last date is the snapshot's
])
def test_auto_names_give_their_date(name, expected):
    assert tree.name_time(name, "auto", UTC) == ts(expected)


@pytest.mark.parametrize("name", ["daily.0", "lost+found", "2024-13-01", "v2.0.1",
                                  "12024-05-01", "latest"])
def test_names_without_a_date_give_none(name):
    assert tree.name_time(name, "auto", UTC) is None


def test_rsnapshot_names_match_but_carry_no_time():
    fmt = tree.NameFormat("rsnapshot")
    assert fmt.matches("daily.0") and fmt.matches("hourly.12") and fmt.matches("weekly.3")
    assert not fmt.matches("daily") and not fmt.matches("2024-05-01")
    assert fmt.time("daily.0") is None


def test_custom_name_format():
    fmt = tree.NameFormat("db-%Y%m%d*.sql.gz")
    assert fmt.matches("db-20240501.sql.gz") and fmt.matches("db-20240501-b.sql.gz")
    assert not fmt.matches("db-20240501.sql")
    assert fmt.time("db-20240501.sql.gz", UTC) == ts("2024-05-01T00:00:00")
    assert tree.NameFormat("snap-%s").time("snap-1714532400") == 1714532400
    assert tree.NameFormat("%y%m%d_%H%M%S").time("240501_030009", UTC) == \
        ts("2024-05-01T03:00:09")
    assert tree.NameFormat("100%%-%Y-%m-%d").time("100%-2024-05-01", UTC) == \
        ts("2024-05-01T00:00:00")


@pytest.mark.parametrize("bad", ["%Y-%m", "%Y-%q", "%Y-%m-%d-%", "%Y-%Y-%m-%d"])
def test_bad_name_formats_are_refused(bad):
    with pytest.raises(ValueError):
        tree.NameFormat(bad)


dates = st.datetimes(min_value=datetime.datetime(1990, 1, 1),
                     max_value=datetime.datetime(2099, 12, 31)).map(
    lambda d: d.replace(microsecond=0))


@settings(max_examples=200, deadline=None)
@given(when=dates, fmt=st.sampled_from([
    "%Y-%m-%d", "%Y-%m-%d_%H%M", "%Y%m%d", "%Y%m%dT%H%M%S", "host-%Y-%m-%d_%H%M*",
    "%d.%m.%Y %H.%M.%S", "%y%m%d-%H%M", "backup.%s"]))
def test_name_format_reads_back_what_strftime_wrote(when, fmt):
    name = when.strftime(fmt.replace("*", "-x").replace("%s", "")) if "%s" not in fmt else \
        "backup.%d" % when.replace(tzinfo=UTC).timestamp()
    got = tree.NameFormat(fmt).time(name, UTC)
    kept = [f for f in "YymdHMS" if "%" + f in fmt]
    expected = when.replace(
        hour=when.hour if "H" in kept else 0, minute=when.minute if "M" in kept else 0,
        second=when.second if "S" in kept else 0)
    if "%s" in fmt:
        expected = when
    if "y" in kept and not 2000 <= when.year < 2100:
        return  # %y reads 20yy
    assert got == expected.replace(tzinfo=UTC).timestamp()


@settings(max_examples=200, deadline=None)
@given(when=dates, style=st.sampled_from(["%Y-%m-%d_%H%M", "%Y-%m-%dT%H:%M:%S", "%Y%m%d",
                                          "%Y-%m-%d"]),
       prefix=st.from_regex(r"\A[a-z_.-]{0,8}\Z"), suffix=st.from_regex(r"\A[a-z_.]{0,8}\Z"))
def test_auto_finds_a_date_between_any_words(when, style, prefix, suffix):
    if when.year < 2000 and style == "%Y%m%d":
        when = when.replace(year=2000 + when.year % 100)
    name = prefix + when.strftime(style) + suffix
    got = tree.name_time(name, "auto", UTC)
    full = "%H" in style
    expected = when if "%S" in style else when.replace(second=0)
    if not full:
        expected = expected.replace(hour=0, minute=0)
    assert got == expected.replace(tzinfo=UTC).timestamp()


@settings(max_examples=300, deadline=None)
@given(fmt=st.text(max_size=20), name=st.text(max_size=40))
def test_any_format_and_name_either_work_or_are_refused(fmt, name):
    try:
        parsed = tree.NameFormat(fmt)
    except ValueError:
        return
    assert isinstance(parsed.matches(name), bool)
    assert parsed.time(name, UTC) is None or isinstance(parsed.time(name, UTC), float)
    assert tree.name_time(name, "auto", UTC) is None or tree.name_time(name, "auto", UTC) > 0


# -- stamps --------------------------------------------------------------------------------

@pytest.mark.parametrize("content, expected", [
    ("2024-05-01T03:00:00Z\n", ts("2024-05-01T03:00:00")),
    ("2024-05-01T05:00:00+02:00", ts("2024-05-01T03:00:00")),
    ("2024-05-01 03:00:00.250 -0130", ts("2024-05-01T04:30:00.250")),
    ("\n  finished 2024-05-01 03:00:00 ok\n", ts("2024-05-01T03:00:00")),
    ("2024-05-01\n", ts("2024-05-01T00:00:00")),
    ("1714532400\n", 1714532400.0),
    ("@1714532400.5", 1714532400.0),
])
def test_stamp_contents(content, expected):
    assert tree.parse_stamp(content, UTC) == pytest.approx(expected)


@pytest.mark.parametrize("content", ["", "ok\n", "2024-02-30T00:00:00", "123", "done 99"])
def test_stamp_without_a_timestamp(content):
    assert tree.parse_stamp(content, UTC) is None


offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: datetime.timezone(datetime.timedelta(minutes=m)))


@settings(max_examples=200, deadline=None)
@given(when=dates, zone=offsets, sep=st.sampled_from(["T", " "]))
def test_stamp_reads_back_isoformat_with_any_offset(when, zone, sep):
    aware = when.replace(tzinfo=zone)
    assert tree.parse_stamp(aware.isoformat(sep=sep), UTC) == aware.timestamp()


@settings(max_examples=300, deadline=None)
@given(content=st.text(max_size=80))
def test_any_stamp_text_gives_a_time_or_none(content):
    got = tree.parse_stamp(content, UTC)
    assert got is None or isinstance(got, float)


# -- logs ----------------------------------------------------------------------------------

RSYNC_OK = "sent 1,234 bytes  received 56 bytes  2,580.00 bytes/sec\n" \
           "total size is 9,876,543  speedup is 7,656.24\n"
RSYNC_23 = RSYNC_OK + "rsync error: some files/attrs were not transferred (see previous " \
                      "errors) (code 23) at main.c(1338) [sender=3.2.7]\n"


def test_log_last_decisive_line_decides():
    assert tree.log_verdict(RSYNC_OK).state == "ok"
    failed = tree.log_verdict(RSYNC_OK + RSYNC_23)
    assert failed.state == "error" and "code 23" in failed.line and failed.lineno == 5
    assert tree.log_verdict(RSYNC_23 + "building file list\n" + RSYNC_OK).state == "ok"
    assert tree.log_verdict("nothing here\n").state == "none"


@pytest.mark.parametrize("line, state", [
    ("backup finished, exit code 0", "ok"), ("job exited with 1", "error"),
    ("rc=2", "error"), ("Exit status: 0", "ok"), ("return code 255", "error"),
    ("rsync: connection unexpectedly closed (0 bytes received so far)", "error"),
])
def test_recorded_exit_codes(line, state):
    assert tree.log_verdict("start\n" + line + "\n").state == state


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(st.sampled_from([
    "building file list", "rsync error: x (code 23)", "total size is 5  speedup is 1.00",
    "exit code 0", "exit code 1", "=== start", ""]), max_size=12))
def test_a_start_line_only_narrows_the_verdict(lines):
    """Properties: the verdict names a real line of the text; without runs, the last decisive
    line decides; an error after the last start line always fails the log."""
    text, start = "\n".join(lines), re.compile("^=== start")
    for verdict in (tree.log_verdict(text), tree.log_verdict(text, (), (), start)):
        if verdict.state != "none":
            assert lines[verdict.lineno - 1].strip() == verdict.line
    starts = [i for i, line in enumerate(lines) if line == "=== start"]
    tail = lines[starts[-1]:] if starts else lines
    if any(line.startswith("rsync error") or line == "exit code 1" for line in tail):
        assert tree.log_verdict(text, (), (), start).state == "error"


def test_own_patterns_add_to_the_built_in_ones():
    ok, err = [re.compile(r"BACKUP OK")], [re.compile(r"^ERROR")]
    assert tree.log_verdict("BACKUP OK\n", ok, err).state == "ok"
    assert tree.log_verdict("BACKUP OK\nERROR: disk full\n", ok, err).state == "error"
    assert tree.log_verdict("BACKUP OK\nrsync error: x\n", ok, err).state == "error"


def test_runs_cut_by_a_start_line():
    start = re.compile(r"^=== start")
    log = ("=== start 1\nrsync error: old failure\n"
           "=== start 2\n" + RSYNC_23 + "backup done, exit code 0\n"
           "=== start 3\nbuilding file list\n")
    verdict = tree.log_verdict(log, (), (), start)
    # run 3 is still going: run 2 decides, and its rsync error fails it although it ended
    # with exit code 0
    assert verdict.state == "error" and "code 23" in verdict.line
    assert "no result yet" in verdict.note
    assert tree.log_verdict(log + RSYNC_OK, (), (), start).state == "ok"
    assert tree.log_verdict("=== start\nnothing\n", (), (), start).state == "none"


# -- the walk ------------------------------------------------------------------------------

@pytest.fixture
def wide(tmp_path):
    """300 files in 100 leaf directories, all 1 to 30 days old, and one known newest file."""
    root = str(tmp_path / "wide")
    info = trees.make_wide_tree(root, fanout=(10, 10), files_per_dir=3, now=NOW, seed=7)
    info["root"] = root
    return info


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_walk_finds_the_newest_file_and_counts_all(wide, workers):
    scan = tree.scan_tree(wide["root"], workers=workers)
    assert scan.newest.path == wide["newest"]
    assert scan.newest.time == wide["newest_mtime"]
    assert (scan.files, scan.bytes) == (300, wide["bytes"])
    assert scan.dirs == 111 and scan.error_count == 0
    assert scan.workers == workers


def test_walk_glob_depth_and_dirs(tmp_path):
    root = str(tmp_path)
    trees.make_tree(root, {
        "a.tar.gz": (10, NOW - 5 * HOUR), "a.log": (10, NOW - HOUR),
        "sub/b.tar.gz": (20, NOW - 3 * HOUR), "sub/deeper/c.tar.gz": (30, NOW - 2 * HOUR),
        "empty/.keep": (0, NOW - 9 * DAY)}, dir_mtime=NOW - 4 * DAY)
    trees.set_time(os.path.join(root, "sub", "deeper"), NOW - DAY)
    scan = tree.scan_tree(root, pattern="*.tar.gz", workers=1)
    assert scan.newest.path.endswith("deeper/c.tar.gz") and (scan.files, scan.bytes) == (3, 60)
    scan = tree.scan_tree(root, pattern="*.tar.gz", max_depth=2, workers=1)
    assert scan.newest.path.endswith("sub/b.tar.gz") and scan.files == 2
    scan = tree.scan_tree(root, max_depth=1, workers=1)
    assert scan.newest.path.endswith("a.log") and scan.files == 2
    scan = tree.scan_tree(root, kind="dir", workers=1)
    assert scan.newest.path.endswith("sub/deeper") and scan.newest.is_dir


def test_walk_does_not_follow_symlinks(tmp_path):
    trees.make_tree(str(tmp_path / "real"), {"old": (1, NOW - DAY)})
    trees.make_tree(str(tmp_path / "elsewhere"), {"new": (1, NOW)})
    os.symlink(str(tmp_path / "elsewhere"), str(tmp_path / "real" / "link"))
    scan = tree.scan_tree(str(tmp_path / "real"), workers=1)
    assert scan.newest.path.endswith("old") and scan.files == 1
    os.symlink(str(tmp_path / "real"), str(tmp_path / "root-link"))
    assert tree.scan_tree(str(tmp_path / "root-link"), workers=1).files == 1


def test_walk_mtime_and_ctime(tmp_path):
    trees.make_tree(str(tmp_path), {"x": (5, NOW - 10 * DAY)})
    assert tree.scan_tree(str(tmp_path)).newest.time == pytest.approx(NOW - 10 * DAY, abs=1)
    assert tree.scan_tree(str(tmp_path), time_field="ctime").newest.time >= NOW - 60


def test_walk_missing_root(tmp_path):
    with pytest.raises(tree.NotFound):
        tree.scan_tree(str(tmp_path / "nope"))


# -- the judgement on plain data ------------------------------------------------------------

def limits(warning="26h", critical="50h", **lower):
    return backup_age.Limits(units.parse_range(warning, units.DURATION),
                             units.parse_range(critical, units.DURATION), **lower)


def found(age, files=3, size=30, mode="newest", **more):
    """A Backup whose newest entry is ``age`` seconds old at NOW."""
    path = "/backup/stamp" if mode == "stamp" else "/backup/f"
    return backup_age.Backup(mode, entry=tree.Entry(path, NOW - age, size), what="file under "
                             "/backup", files=files, bytes=size, **more)


@pytest.mark.parametrize("age, state, words", [
    (HOUR, nagiosplugin.Ok, "newest file /backup/f is 1h old (mtime)"),
    (27 * HOUR, nagiosplugin.Warn, "newest file /backup/f is 1d 3h old (mtime), limit 26h"),
    (51 * HOUR, nagiosplugin.Critical, "newest file /backup/f is 2d 3h old (mtime), limit 50h"),
    (-200, nagiosplugin.Ok, "newest file /backup/f is 0s old (mtime)"),
])
def test_judge_the_age_against_the_ladder(age, state, words):
    verdict = backup_age.judge(found(age), limits(), NOW)
    assert verdict.state == state
    assert verdict.findings[0] == (state, words)
    assert verdict.summary == (words if state != nagiosplugin.Ok else words + "; 3 files, 30 B")
    assert perfdata(verdict) == ["age=%ds;93600;180000;0" % max(0, age), "files=3;;;0",
                                 "size=30B;;;0"]


def test_judge_names_a_range_as_written_and_the_future_beyond_the_slack():
    verdict = backup_age.judge(found(30 * 60), limits("@0:1h", "2h"), NOW)
    assert verdict.state == nagiosplugin.Warn
    assert verdict.summary == "newest file /backup/f is 30m old (mtime), range @0:1h"
    ahead = backup_age.judge(found(-2 * HOUR), limits(), NOW)
    assert ahead.state == nagiosplugin.Warn
    assert ahead.summary.startswith("newest file /backup/f is dated 2h in the future (mtime ")
    assert ahead.summary.endswith("; clock skew?)")
    assert "age=0s;93600;180000;0" in perfdata(ahead)


def test_judge_an_empty_or_small_backup_is_critical():
    empty = backup_age.judge(found(HOUR, files=0, size=0), limits(), NOW)
    assert empty.findings == [
        (nagiosplugin.Ok, "newest file /backup/f is 1h old (mtime)"), (nagiosplugin.Ok, "0 B"),
        (nagiosplugin.Critical, "newest file /backup/f is empty (no files)")]
    assert empty.summary == "newest file /backup/f is empty (no files)"
    zeros = backup_age.judge(found(HOUR, files=4, size=0), limits(), NOW)
    assert zeros.summary == "newest file /backup/f is empty (0 bytes in 4 files)"
    dump = backup_age.judge(found(HOUR, files=1, size=0, single_file=True), limits(), NOW)
    assert dump.summary == "newest file /backup/f is empty (0 bytes)"
    small = backup_age.judge(found(HOUR, files=3, size=30),
                             limits(min_size=1024, min_files=5), NOW)
    assert small.state == nagiosplugin.Critical
    assert small.summary == ("newest file /backup/f holds only 30 B (minimum 1.0 KiB); "
                             "newest file /backup/f holds only 3 files (minimum 5)")
    assert perfdata(small) == ["age=3600s;93600;180000;0", "files=3;;5:;0",
                               "size=30B;;1024:;0"]


def test_judge_nothing_found_is_critical_without_perfdata():
    nothing = backup_age.Backup("newest", what="file matching *.tar.gz under /backup")
    verdict = backup_age.judge(nothing, limits(), NOW)
    assert (verdict.state, verdict.summary, verdict.perfdata, verdict.long) == (
        nagiosplugin.Critical, "no backup found: no file matching *.tar.gz under /backup", [],
        [])
    stamp = backup_age.Backup("stamp", what="stamp file /backup/stamp")
    assert backup_age.judge(stamp, limits(), NOW).summary == \
        "no backup found: stamp file /backup/stamp does not exist"


def test_judge_problems_worst_first_and_the_log():
    silent = tree.Verdict("none", note="no run started")
    verdict = backup_age.judge(found(27 * HOUR, files=0, size=0, log="/var/log/b.log",
                                     verdict=silent), limits(), NOW)
    assert verdict.state == nagiosplugin.Critical
    assert verdict.summary == ("newest file /backup/f is empty (no files); newest file "
                               "/backup/f is 1d 3h old (mtime), limit 26h; log /var/log/b.log "
                               "tells neither success nor failure")
    assert verdict.long[1:] == ["backup holds 0 regular files, 0 B (0 bytes)",
                                "log /var/log/b.log: no run started"]
    fine = tree.Verdict("ok", "total size is 9  speedup is 1.00", 7)
    good = backup_age.judge(found(HOUR, log="/var/log/b.log", verdict=fine), limits(), NOW)
    assert good.state == nagiosplugin.Ok
    assert good.summary == "newest file /backup/f is 1h old (mtime); 3 files, 30 B; log ok"
    assert good.findings[-1] == (nagiosplugin.Ok, "log /var/log/b.log ok at line 7: total "
                                                  "size is 9 speedup is 1.00")  # one line
    failed = tree.Verdict("error", "rsync error: " + "x" * 300, 9)
    bad = backup_age.judge(found(HOUR, log="/var/log/b.log", verdict=failed), limits(), NOW)
    assert bad.state == nagiosplugin.Critical and bad.summary.startswith(
        "log /var/log/b.log line 9: rsync error: x")
    assert bad.long[-1] == "log /var/log/b.log: error at line 9: rsync error: " + "x" * 300


def test_judge_the_snapshots_kept():
    oldest = tree.Entry("/backup/daily.2", NOW - 2 * DAY - 20 * HOUR, 0, True)
    snapshots = backup_age.Backup("snapshot", entry=tree.Entry("/backup/daily.0", NOW - 20 * HOUR,
                                                               0, True),
                                  files=3, bytes=30, snapshots=3, oldest=oldest)
    fine = backup_age.judge(snapshots, limits(), NOW)
    assert fine.summary == ("newest snapshot /backup/daily.0 is 20h old (mtime); 3 files, 30 B; "
                            "3 snapshots, the oldest 2d 20h old")
    short = backup_age.judge(snapshots, limits(min_snapshots=7, oldest_snapshot=6 * DAY), NOW)
    assert short.findings[-2:] == [
        (nagiosplugin.Critical, "only 3 snapshots under /backup, at least 7 wanted"),
        (nagiosplugin.Critical, "oldest snapshot /backup/daily.2 is only 2d 20h old (mtime), "
                                "at least 6d wanted")]
    assert perfdata(short)[2:] == ["oldest_age=%ds;;518400:;0" % (2 * DAY + 20 * HOUR),
                                   "size=30B;;;0", "snapshots=3;;7:;0"]


# -- the check on real trees -----------------------------------------------------------------

def test_fresh_tree_is_ok_with_perfdata(tmp_path):
    trees.make_tree(str(tmp_path), {"a/b/backup.tar": (1000, NOW - 2 * HOUR),
                                    "a/old.tar": (24, NOW - 9 * DAY)})
    out = run("-p", tmp_path, "-w", "26h", "-c", "50h")
    assert out.exitcode == 0, out.output
    assert out.status_line.startswith("BACKUP_AGE OK - newest file %s/a/b/backup.tar is 2h "
                                      "old (mtime); 2 files, 1.0 KiB" % tmp_path)
    assert re.search(r"\| age=72\d\ds;93600;180000;0 ", out.status_line)
    assert "size=1024B;;;0" in out.status_line and "files=2;;;0" in out.status_line


@pytest.mark.parametrize("age, code, state", [(25 * HOUR, 0, "OK"), (27 * HOUR, 1, "WARNING"),
                                              (51 * HOUR, 2, "CRITICAL")])
def test_age_thresholds(tmp_path, age, code, state):
    trees.make_tree(str(tmp_path), {"f": (10, NOW - age)})
    out = run("-p", tmp_path, "-w", "26h", "-c", "50h")
    assert out.exitcode == code and out.status_line.startswith("BACKUP_AGE " + state)
    if code == 2:
        assert "is 2d 3h old (mtime), limit 50h" in out.status_line


@pytest.mark.parametrize("argv, code, words", [
    (["-w", "@0:1h", "-c", "2h"], 1, "is 30m old (mtime), range @0:1h"),
    (["-w", "2h:", "-c", "5h"], 1, "is 30m old (mtime), range 2h:"),
    (["-w", "~:10m", "-c", "2h"], 1, "is 30m old (mtime), range ~:10m"),
    (["-w", "10m", "-c", "~:20m"], 2, "is 30m old (mtime), range ~:20m"),
    (["-w", "10m", "-c", "1h:2h"], 2, "is 30m old (mtime), range 1h:2h"),
    (["-w", "0.25h", "-c", "2h"], 1, "is 30m old (mtime), limit 0.25h"),
])
def test_breached_ranges_are_named_as_written(tmp_path, argv, code, words):
    """Every range form in the status line as the user wrote it (was a TypeError)."""
    trees.make_tree(str(tmp_path), {"f": (10, time.time() - 1800)})
    out = run("-p", tmp_path, *argv)
    assert out.exitcode == code, out.output
    # the file is 30m old give or take the seconds a loaded machine takes to get here
    said = re.sub(r"is 30m \d+s old", "is 30m old", out.status_line)
    assert words in said, out.output


def test_rsync_copy_is_old_by_mtime_and_fresh_by_ctime(tmp_path):
    """The reason for --time ctime: rsync -a keeps the source's mtimes in the copy."""
    source, copy = str(tmp_path / "source"), str(tmp_path / "copy")
    trees.make_tree(source, {"docs/a.odt": (300, NOW - 40 * DAY),
                             "docs/b.odt": (200, NOW - 30 * DAY)})
    trees.rsync_copy(source, copy)
    by_mtime = run("-p", copy, "-c", "50h")
    assert by_mtime.exitcode == 2 and "is 4w 2d old (mtime)" in by_mtime.status_line
    by_ctime = run("-p", copy, "--time", "ctime", "-c", "50h")
    assert by_ctime.exitcode == 0, by_ctime.output
    assert "(ctime); 2 files, 500 B" in by_ctime.status_line


def test_empty_tree_and_zero_byte_backups(tmp_path):
    os.makedirs(str(tmp_path / "empty"))
    out = run("-p", tmp_path / "empty")
    assert out.exitcode == 2
    assert out.status_line == "BACKUP_AGE CRITICAL - no backup found: no file under %s" % (
        tmp_path / "empty")
    trees.make_tree(str(tmp_path / "zeros"), {"a": (0, NOW), "b": (0, NOW)})
    out = run("-p", tmp_path / "zeros")
    assert out.exitcode == 2 and "is empty (0 bytes in 2 files)" in out.status_line
    trees.write_file(str(tmp_path / "dump.sql"), size=0)
    out = run("-p", tmp_path / "dump.sql")
    assert out.exitcode == 2 and "newest file %s is empty (0 bytes)" % (
        tmp_path / "dump.sql") in out.status_line


def test_min_size_and_min_files(tmp_path):
    trees.make_tree(str(tmp_path), {"a": (600, NOW), "b": (600, NOW)})
    assert run("-p", tmp_path, "--min-size", "1KiB", "--min-files", "2").exitcode == 0
    out = run("-p", tmp_path, "--min-size", "2KiB", "--min-files", "3")
    assert out.exitcode == 2
    assert "holds only 1.2 KiB (minimum 2.0 KiB)" in out.status_line
    assert "holds only 2 files (minimum 3)" in out.status_line
    assert "size=1200B;;2048:;0" in out.status_line and "files=2;;3:;0" in out.status_line


def test_future_times_within_and_beyond_the_slack(tmp_path):
    trees.make_tree(str(tmp_path), {"f": (10, NOW + 120)})
    out = run("-p", tmp_path)
    assert out.exitcode == 0 and "is 0s old" in out.status_line and "age=0s" in out.output
    out = run("-p", tmp_path, "--future-slack", "1m")
    assert out.exitcode == 1 and "in the future" in out.status_line


def test_glob_and_max_depth_select(tmp_path):
    trees.make_tree(str(tmp_path), {"x.tar.gz": (5, NOW - 3 * DAY),
                                    "d/y.tar.gz": (5, NOW - HOUR), "z.log": (5, NOW)})
    out = run("-p", tmp_path, "--glob", "*.tar.gz", "--max-depth", "1")
    assert out.exitcode == 2 and "x.tar.gz is 3d old" in out.status_line
    out = run("-p", tmp_path, "--glob", "*.tar.gz")
    assert out.exitcode == 0 and "d/y.tar.gz is 1h old" in out.status_line
    out = run("-p", tmp_path, "--glob", "*.zip")
    assert out.exitcode == 2 and "no backup found: no file matching *.zip" in out.status_line


def test_newest_directory_is_the_backup(tmp_path):
    trees.make_snapshots(str(tmp_path), ["run-a", "run-b"], files_per_snapshot=4, size=50,
                         mtime={"run-a": NOW - 3 * DAY, "run-b": NOW - 5 * HOUR})
    out = run("-p", tmp_path, "--type", "dir", "--max-depth", "1")
    assert out.exitcode == 0, out.output
    assert "newest directory %s/run-b is 5h old (mtime); 4 files, 200 B" % tmp_path \
        in out.status_line


def test_dated_snapshots(tmp_path):
    today = datetime.datetime.now()
    # named for this hour two and three days ago: 48 to 49 hours old at any time of day
    names = [(today - datetime.timedelta(days=n)).strftime("%Y-%m-%d_%H00") for n in (3, 2)]
    trees.make_snapshots(str(tmp_path), names + ["latest"], files_per_snapshot=2, size=10)
    os.makedirs(str(tmp_path / ".partial"))
    out = run("-p", tmp_path, "--mode", "snapshot", "-w", "47h", "-c", "70h")
    assert out.exitcode == 1, out.output
    assert "newest snapshot %s/%s is 2d" % (tmp_path, names[1]) in out.status_line
    assert "(name), limit 47h" in out.status_line and "files=2;;;0 oldest_age=" in out.output
    assert "size=20B;;;0 snapshots=2;;;0" in out.output
    assert "2 snapshots found" in out.output  # 'latest' and '.partial' are no snapshots
    fmt = run("-p", tmp_path, "--mode", "snapshot", "--name-format", "%Y-%m-%d_%H%M",
              "-c", "30h")
    assert fmt.exitcode == 2 and "limit 30h" in fmt.status_line
    none = run("-p", tmp_path, "--mode", "snapshot", "--name-format", "db-%Y%m%d")
    assert none.exitcode == 2
    assert "no backup found: no directory snapshot named db-%Y%m%d under" in none.status_line


def test_rsnapshot_snapshots_by_mtime(tmp_path):
    trees.make_snapshots(str(tmp_path), ["daily.0", "daily.1", "weekly.0"], files_per_snapshot=3,
                         size=7, mtime={"daily.0": NOW - 20 * HOUR, "daily.1": NOW - 44 * HOUR,
                                        "weekly.0": NOW - 5 * DAY})
    out = run("-p", tmp_path, "--mode", "snapshot", "--name-format", "rsnapshot",
              "--min-files", "3")
    assert out.exitcode == 0, out.output
    assert "newest snapshot %s/daily.0 is 20h old (mtime); 3 files, 21 B" % tmp_path \
        in out.status_line


def _snapshot_check(argv, entries):
    """The check's judgement on a listing handed in: no tree, no clock."""
    args = backup_age.build_parser().parse_args(["-p", "/backup", "--mode", "snapshot"] + argv)
    newest = max(entries, key=lambda e: e.time)

    def snapshots(root, *rest):
        return list(entries), len(entries)

    def scan(root, **kwargs):
        assert root == newest.path  # only the newest snapshot is walked
        return tree.Scan(newest=tree.Entry(root + "/f", newest.time, 10), files=3, bytes=30)
    return backup_age.build_check(args, scan=scan, snapshots=snapshots, now=lambda: NOW)


def _rsnapshot(n, hours=20):
    """rsnapshot's daily.0 ... daily.<n-1>, one night apart, the newest ``hours`` old."""
    return [tree.Entry("/backup/daily.%d" % i, NOW - hours * HOUR - i * DAY, 0, True)
            for i in range(n)]


def test_min_snapshots_and_oldest_snapshot_on_a_listing():
    ok = _snapshot_check(["--min-snapshots", "7", "--oldest-snapshot", "6d"], _rsnapshot(7))
    assert ok.state == nagiosplugin.Ok, ok.summary
    assert ok.summary == ("newest snapshot /backup/daily.0 is 20h old (mtime); 3 files, "
                              "30 B; 7 snapshots, the oldest 6d 20h old")
    assert "snapshots=7;;7:;0" in perfdata(ok)
    assert "oldest_age=%ds;;518400:;0" % (6 * DAY + 20 * HOUR) in perfdata(ok)
    few = _snapshot_check(["--min-snapshots", "7"], _rsnapshot(2))
    assert few.state == nagiosplugin.Critical
    assert few.summary == "only 2 snapshots under /backup, at least 7 wanted"
    short = _snapshot_check(["--oldest-snapshot", "6d"], _rsnapshot(3))
    assert short.state == nagiosplugin.Critical
    assert short.summary == ("oldest snapshot /backup/daily.2 is only 2d 20h old (mtime), "
                                 "at least 6d wanted")
    both = _snapshot_check(["--min-snapshots", "7", "--oldest-snapshot", "6d", "-c", "10h"],
                           _rsnapshot(1))
    assert both.state == nagiosplugin.Critical
    assert both.summary.count(";") == 2 and "only 1 snapshot under" in both.summary
    assert "oldest snapshot /backup/daily.0 is only 20h old" in both.summary


def test_snapshot_count_and_reach_are_perfdata_without_limits():
    check = _snapshot_check([], _rsnapshot(3))
    assert check.state == nagiosplugin.Ok
    assert "snapshots=3;;;0" in perfdata(check)
    assert "oldest_age=%ds;;;0" % (2 * DAY + 20 * HOUR) in perfdata(check)
    future = [tree.Entry("/backup/2099-01-01", NOW + 60, 0, True, "name")]
    assert "oldest_age=0s;;;0" in perfdata(_snapshot_check([], future))


def test_rsnapshot_rotation_too_short(tmp_path):
    """retain daily 7, but the rotation broke after three nights: the newest is fresh, yet a
    loss noticed on day four has nothing left to restore from."""
    names = ["daily.0", "daily.1", "daily.2", "weekly.0"]
    trees.make_snapshots(str(tmp_path), names, files_per_snapshot=2, size=5, mtime={
        "daily.0": NOW - 20 * HOUR, "daily.1": NOW - 44 * HOUR, "daily.2": NOW - 68 * HOUR,
        "weekly.0": NOW - 9 * DAY})
    argv = ["-p", tmp_path, "--mode", "snapshot", "--name-format", "rsnapshot"]
    out = run(*argv, "--min-snapshots", "4", "--oldest-snapshot", "1w")
    assert out.exitcode == 0, out.output
    assert "; 4 snapshots, the oldest 1w 2d old |" in out.status_line
    assert "snapshots=4;;4:;0" in out.status_line and "oldest_age=7776" in out.status_line
    trees.remove(str(tmp_path / "weekly.0"))
    out = run(*argv, "--min-snapshots", "4", "--oldest-snapshot", "1w")
    assert out.exitcode == 2, out.output
    assert out.status_line.startswith(
        "BACKUP_AGE CRITICAL - only 3 snapshots under %s, at least 4 wanted; oldest snapshot "
        "%s/daily.2 is only 2d 20h old (mtime), at least 1w wanted |" % (tmp_path, tmp_path))
    assert "3 snapshots found, the oldest %s/daily.2: mtime" % tmp_path in out.output


def test_dated_snapshots_reach_back_by_their_names(tmp_path):
    """Dated directories are timed by their names, whatever their mtimes say."""
    today = datetime.datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    names = [(today - datetime.timedelta(days=n)).strftime("%Y-%m-%d_%H%M") for n in range(5)]
    trees.make_snapshots(str(tmp_path), names, files_per_snapshot=1, size=5)
    out = run("-p", tmp_path, "--mode", "snapshot", "--utc", "--min-snapshots", "5",
              "--oldest-snapshot", "4d")
    assert out.exitcode == 0, out.output
    assert "5 snapshots, the oldest 4d" in out.status_line
    out = run("-p", tmp_path, "--mode", "snapshot", "--utc", "--min-snapshots", "6",
              "--oldest-snapshot", "5d")
    assert out.exitcode == 2
    assert "only 5 snapshots under %s, at least 6 wanted" % tmp_path in out.status_line
    assert "oldest snapshot %s/%s is only 4d" % (tmp_path, names[-1]) in out.status_line
    assert "(name), at least 5d wanted" in out.status_line


def test_dump_files_as_snapshots(tmp_path):
    trees.make_tree(str(tmp_path), {"db-20200101.sql.gz": (5000, NOW - 2 * HOUR),
                                    "db-20200102.sql.gz": (0, NOW - HOUR)})
    out = run("-p", tmp_path, "--mode", "snapshot", "--type", "file", "--glob", "db-*.sql.gz",
              "-w", "100000d", "-c", "100000d")
    assert out.exitcode == 2
    assert "newest snapshot %s/db-20200102.sql.gz is empty (0 bytes)" % tmp_path \
        in out.status_line


def test_stamp_file(tmp_path):
    stamp = str(tmp_path / "last-success")
    fresh = datetime.datetime.now(UTC) - datetime.timedelta(hours=3)
    trees.write_file(stamp, content=fresh.isoformat() + "\n", mtime=NOW - 9 * DAY)
    out = run("--stamp", stamp)
    assert out.exitcode == 0 and "stamp %s is 3h old (content)" % stamp in out.status_line
    out = run("--stamp", stamp, "--stamp-time", "mtime")
    assert out.exitcode == 2 and "is 1w 2d old (mtime)" in out.status_line
    trees.write_file(stamp, content="done\n", mtime=NOW - HOUR)
    assert "1h old (mtime)" in run("--stamp", stamp).status_line
    out = run("--stamp", stamp, "--stamp-time", "content")
    assert out.exitcode == 3 and "holds no timestamp" in out.status_line
    out = run("--stamp", tmp_path / "missing")
    assert out.exitcode == 2
    assert out.status_line == ("BACKUP_AGE CRITICAL - no backup found: stamp file %s does "
                               "not exist" % (tmp_path / "missing"))
    out = run("--stamp", tmp_path / "no-dir" / "stamp")
    assert out.exitcode == 3 and "directory of --stamp" in out.status_line


def test_stamp_with_the_backup_tree(tmp_path):
    trees.make_tree(str(tmp_path / "data"), {"a": (0, NOW), "b": (0, NOW)})
    trees.write_file(str(tmp_path / "stamp"), content="ok")
    out = run("--stamp", tmp_path / "stamp", "-p", tmp_path / "data")
    assert out.exitcode == 2 and "is empty (0 bytes in 2 files)" in out.status_line


def test_stamp_with_a_missing_tree(tmp_path):
    trees.write_file(str(tmp_path / "stamp"), content="ok")
    out = run("--stamp", tmp_path / "stamp", "-p", tmp_path / "gone")
    assert out.exitcode == 2
    assert out.status_line.startswith(
        "BACKUP_AGE CRITICAL - --path %s does not exist (nearest existing parent %s" % (
            tmp_path / "gone", tmp_path))


def test_log_verdicts(tmp_path):
    trees.make_tree(str(tmp_path / "data"), {"a": (10, NOW)})
    log = str(tmp_path / "backup.log")
    trees.write_file(log, content=RSYNC_OK)
    out = run("-p", tmp_path / "data", "--log", log)
    assert out.exitcode == 0 and "; log ok" in out.status_line
    trees.write_file(log, content=RSYNC_OK + RSYNC_23)
    out = run("-p", tmp_path / "data", "--log", log)
    assert out.exitcode == 2
    assert "log %s line 5: rsync error: some files/attrs" % log in out.status_line
    trees.write_file(log, content="starting\n")
    out = run("-p", tmp_path / "data", "--log", log)
    assert out.exitcode == 1 and "tells neither success nor failure" in out.status_line
    out = run("-p", tmp_path / "data", "--log", log, "--log-ok", "^start")
    assert out.exitcode == 0
    out = run("-p", tmp_path / "data", "--log", tmp_path / "nope.log")
    assert out.exitcode == 3 and "--log %s does not exist" % (tmp_path / "nope.log") \
        in out.status_line


def test_log_tail_only(tmp_path):
    log = str(tmp_path / "big.log")
    with open(log, "w") as handle:
        handle.write("rsync error: ancient\n" * 10 + "x" * 100 + "\n" + RSYNC_OK)
    assert "ancient" not in tree.read_log(log, limit=200)
    assert tree.log_verdict(tree.read_log(log, limit=200)).state == "ok"


@pytest.mark.parametrize("argv, message", [
    (["-p", "backup"], "'backup' is not an absolute path"),
    (["-p", "/x", "--mode", "stamp"], "--mode stamp needs --stamp FILE"),
    (["--stamp", "/x/s", "--mode", "snapshot", "-p", "/x"], "--stamp goes with --mode stamp"),
    ([], "--path is required"),
    (["-p", "/x", "--name-format", "%Y"], "--name-format is for --mode snapshot"),
    (["-p", "/x", "--mode", "snapshot", "--name-format", "%Y-%m"], "needs a whole date"),
    (["-p", "/x", "--mode", "snapshot", "--max-depth", "2"], "--max-depth is for"),
    (["-p", "/x", "--log-ok", "ok"], "need --log FILE"),
    (["-p", "/x", "--min-snapshots", "7"], "--min-snapshots and --oldest-snapshot are for "
                                           "--mode snapshot"),
    (["-p", "/x", "--oldest-snapshot", "1w"], "are for --mode snapshot"),
    (["-p", "/x", "--mode", "snapshot", "--min-snapshots", "0"], "'0' is outside 1.."),
    (["-p", "/x", "--mode", "snapshot", "--oldest-snapshot", "a week"], "not a duration"),
    (["--stamp", "/x/s", "--type", "dir"], "--type is for --mode newest and snapshot"),
    (["--stamp", "/x/s", "--glob", "*.gz"], "--glob and --max-depth need --path"),
    (["-p", "/x", "-w", "26x"], "not a duration"),
    (["-p", "/x", "--min-size", "lots"], "not a size"),
    (["-p", "/x", "--log", "/l", "--log-error", "(("], "not a valid regular expression"),
])
def test_usage_errors_are_one_line_exit_3(argv, message):
    out = run(*argv)
    assert out.exitcode == 3
    assert out.output.startswith("BACKUP_AGE UNKNOWN - ") and message in out.output
    assert out.output.count("\n") == 1


def test_missing_path_is_critical_naming_where_it_would_be(tmp_path):
    """A backup that is gone is lost, not unknown: the nearest existing parent and the
    filesystem it is on are named; --ignore-missing makes absence fine."""
    gone = tmp_path / "nope" / "mirror"
    out = run("-p", gone)
    assert (out.exitcode, out.status_line) == (2, (
        "BACKUP_AGE CRITICAL - --path %s does not exist (nearest existing parent %s, on the "
        "filesystem mounted at %s)" % (gone, tmp_path, tree.missing_place(str(gone)).mount)))
    out = run("-p", gone, "--mode", "snapshot")
    assert out.exitcode == 2 and "--path %s does not exist" % gone in out.status_line
    out = run("-p", gone, "--ignore-missing")
    assert (out.exitcode, out.status_line) == (
        0, "BACKUP_AGE OK - --path %s does not exist (--ignore-missing)" % gone)


def test_missing_path_under_an_unmounted_fstab_entry(tmp_path):
    (tmp_path / "data2").mkdir()
    fstab = tmp_path / "fstab"
    fstab.write_text("# <file system> <mount point>\nUUID=1 / ext4 defaults 0 1\n"
                     "LABEL=data2 %s ext4 defaults,nofail 0 2\n" % (tmp_path / "data2"))
    missing = tree.missing_place(str(tmp_path / "data2" / "backup"), fstab=str(fstab))
    assert missing.parent == str(tmp_path / "data2")
    assert missing.unmounted == str(tmp_path / "data2")
    assert backup_age.judge_missing(missing, False) == (
        nagiosplugin.Critical, "--path %s does not exist (%s is in /etc/fstab but not "
        "mounted)" % (tmp_path / "data2" / "backup", tmp_path / "data2"))


def test_unreadable_subdirectory_via_injected_scan(tmp_path):
    def scan(root, **kwargs):
        return tree.Scan(newest=tree.Entry(root + "/f", NOW, 5), files=1, bytes=5, dirs=3,
                         error_count=2, errors=[root + "/secret: Permission denied"])
    args = backup_age.build_parser().parse_args(["-p", str(tmp_path)])
    with pytest.raises(nagiosplugin.CheckError, match="cannot read 2 directories under"):
        backup_age.build_check(args, scan=scan)
    args = backup_age.build_parser().parse_args(["-p", str(tmp_path), "--skip-unreadable"])
    verdict = backup_age.build_check(args, scan=scan)
    assert verdict.state == nagiosplugin.Ok
    assert any("skipped: cannot read 2 directories" in line for line in verdict.long)


def test_timeout_is_one_unknown_line(tmp_path):
    def slow(root, **kwargs):
        time.sleep(5)
    args = ["-p", str(tmp_path), "-t", "1"]
    started = time.monotonic()
    from osop_checks import runtime
    outcome = runtime.execute(
        backup_age.NAME, backup_age.build_parser,
        lambda a: backup_age.build_check(a, scan=slow), args)
    assert time.monotonic() - started < 2.5
    assert outcome.exitcode == 3 and "no result within the --timeout of 1 s" in outcome.output


def test_module_import_stays_light():
    code = ("import sys, osop_checks.checks.backup_age; "
            "print(sorted(m for m in ('psutil', 'requests', 'cryptography', 'pysnmp', 'dns', "
            "'concurrent.futures', 'multiprocessing') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_timeout_during_a_forked_walk_leaves_no_process(tmp_path, monkeypatch):
    """The walkers are forked processes: when --timeout strikes, they are killed and reaped."""
    import psutil

    trees.make_wide_tree(str(tmp_path), fanout=(8, 8), files_per_dir=1)

    def stuck(self, start):
        time.sleep(30)
    monkeypatch.setattr(tree._Walker, "walk", stuck)
    before = {p.pid for p in psutil.Process().children()}  # peers other tests started
    started = time.monotonic()
    out = run("-p", tmp_path, "-t", "1", "--workers", "3")
    assert time.monotonic() - started < 3
    assert out.exitcode == 3 and "no result within the --timeout of 1 s" in out.output
    assert {p.pid for p in psutil.Process().children()} - before == set()


# -- repositories: restic and Borg, on their recorded JSON ----------------------------------


WEB2_FRESH = ts("2026-12-06 11:00:00")  # the fixture's web2 snapshot is 30m old then
PW = ["--password-file", "/etc/osop-checks/restic.pw"]  # handed to restic, never read here


def _repo_check(argv, listing, now=WEB2_FRESH, mode="restic"):
    """The check's judgement on a repository listing handed in: no tool, no clock."""
    args = backup_age.build_parser().parse_args(
        ["--mode", mode, "--repo", "sftp:backup@box:/srv/restic"] + PW + argv)
    seen = []

    def read_repo(access):
        seen.append((access.mode, access.location, access.password_file))
        return listing
    verdict = backup_age.build_check(args, read_repo=read_repo, now=lambda: now)
    assert seen == [(mode, "sftp:backup@box:/srv/restic", args.password_file)]
    return verdict


def test_restic_snapshots_parse_from_the_real_json():
    found = restic.parse_snapshots(fixture("restic", "snapshots-0.14-web1-old-web2-fresh.json"))
    assert [(s.name, s.host, s.time, s.tags, s.files) for s in found] == [
        ("d3c672ff", "web1", ts("2026-12-04 05:00:00"), ("nightly",), None),
        (found[1].name, "web1", ts("2026-12-05 05:00:00"), ("nightly",), None),
        (found[2].name, "web2", ts("2026-12-06 10:30:00"), ("nightly",), None)]
    assert restic.parse_time("2026-12-06T11:09:55.532656222+01:00") == \
        ts("2026-12-06 10:09:55.532656")


@pytest.mark.parametrize("raw", ["", "{}", "[{\"time\": \"yesterday\"}]", "[1]", "null"])
def test_restic_json_of_another_layout_is_said(raw):
    with pytest.raises(proc.LayoutError, match="restic snapshots gave JSON of an unknown"):
        restic.parse_snapshots(raw)


def test_restic_host_filter_another_hosts_fresh_snapshot_does_not_hide_an_old_one():
    listing = repository.Listing(restic.parse_snapshots(
        fixture("restic", "snapshots-0.14-web1-old-web2-fresh.json")))
    old = _repo_check(["--host", "web1", "-w", "26h"], listing)
    assert old.state == nagiosplugin.Warn
    assert old.summary.startswith("newest restic snapshot ")
    assert old.summary.endswith(" (web1:/tmp/rx/src) is 1d 6h old, limit 26h")
    assert "snapshots=2;;;0" in perfdata(old)
    every = _repo_check(["-w", "26h"], listing)
    assert every.state == nagiosplugin.Ok and "(web2:/tmp/rx/src) is 30m old" in every.summary
    none = _repo_check(["--host", "web3"], listing)
    assert none.state == nagiosplugin.Critical
    assert none.summary == ("no backup found: no restic snapshots of host web3 in "
                            "sftp:backup@box:/srv/restic (3 in all)")


def test_restic_tag_and_path_filters_are_restics():
    snap = repository.Snapshot("1", "1", 0, "web1", ("/srv", "/etc"), ("nightly", "db"))
    assert restic.matches(snap, tags=["nightly,db"]) and restic.matches(snap, tags=["x", "db"])
    assert not restic.matches(snap, tags=["nightly,x"])
    assert restic.matches(snap, paths=["/srv", "/etc"]) and not restic.matches(
        snap, paths=["/srv", "/home"])
    assert restic.matches(snap, hosts=["web2", "web1"]) and not restic.matches(snap, ["web2"])


def test_restic_summary_gives_size_and_files_when_recorded():
    raw = ('[{"time": "2026-12-06T10:30:00Z", "hostname": "web1", "paths": ["/srv"], '
           '"id": "ab", "short_id": "ab", "summary": {"total_files_processed": 12, '
           '"total_bytes_processed": 4096}}]')  # constructed: the layout of restic 0.17+
    listing = repository.Listing(restic.parse_snapshots(raw))
    check = _repo_check(["--min-snapshots", "2"], listing)
    assert check.state == nagiosplugin.Critical
    assert "files=12;;;0" in perfdata(check) and "size=4096B;;;0" in perfdata(check)
    assert check.summary == ("only 1 snapshot in sftp:backup@box:/srv/restic, at least 2 "
                             "wanted")


def test_borg_checkpoint_newer_than_the_last_full_archive_is_not_the_backup():
    archives = borg.parse_list(fixture("borg", "list-1.2-checkpoint.json"))
    assert [a.name for a in archives] == ["web1-2026-12-04", "web1-now", "web1-running",
                                          "web1-cut.checkpoint"]
    cut = archives[-1].time
    listing = repository.Listing(archives[:1] + archives[-1:])  # a full one, then cut off
    check = _repo_check(["-w", "26h"], listing, now=cut + 60, mode="borg")
    assert check.state == nagiosplugin.Critical
    assert check.summary.startswith("newest borg archive web1-2026-12-04 is 2d 6h old, "
                                    "limit 50h")
    assert "snapshots=1;;;0" in perfdata(check)
    assert borg.is_checkpoint("a.checkpoint.3") and not borg.is_checkpoint("checkpoint-a")


def test_borg_prefix_and_glob_select_by_name():
    listing = repository.Listing(borg.parse_list(fixture("borg", "list-1.2-checkpoint.json")))
    check = _repo_check(["--prefix", "web1-2026", "--glob-archives", "*-12-04"], listing,
                        mode="borg")
    assert "newest borg archive web1-2026-12-04 " in check.summary


def test_borg_roster_of_a_cut_off_backup():
    locks = borg.parse_roster(fixture("borg", "lock.roster-1.2-stale"), 1000.0)
    assert locks == [repository.Lock("vm@3281355014145.30256-0", 1000.0, "vm@3281355014145",
                                     30256, True)]
    (gone,) = repository.holders(locks, "borg", hostname="vm")
    assert gone.status in (repository.GONE, repository.RUNNING)  # pid 30256 here, now: any
    (far,) = repository.holders(locks, "borg", hostname="other")
    assert far.status == repository.ELSEWHERE


def test_restic_lock_from_the_real_json():
    lock = restic.parse_lock("daafbad9", fixture("restic", "cat-lock-0.14-backup-running.json"))
    assert (lock.host, lock.pid, lock.exclusive) == ("vm", 12922, False)


def _running(status, since, lock_time=None, refreshed=True):
    return repository.Running("web1", 4711, status, since,
                              since if lock_time is None else lock_time, refreshed)


def _old_listing(running):
    snap = repository.Snapshot("ab", "ab", WEB2_FRESH - 60 * HOUR, "web1", ("/srv",))
    return repository.Listing([snap], running)


def test_a_running_backup_downgrades_an_old_snapshot_to_warning():
    since = WEB2_FRESH - 2 * HOUR
    check = _repo_check([], _old_listing([_running(repository.RUNNING, since)]))
    assert check.state == nagiosplugin.Warn
    assert check.summary == ("newest restic snapshot ab (web1:/srv) is 2d 12h old, limit 50h; "
                             "backup running since %s (pid 4711 on this host)"
                             % units.format_time(since, "%H:%M"))
    long = _repo_check(["--max-run", "1h"], _old_listing([_running(repository.RUNNING, since)]))
    assert long.state == nagiosplugin.Critical
    assert "(2h, pid 4711 on this host), longer than --max-run 1h" in long.summary


def test_a_stale_lock_does_not_downgrade():
    since = WEB2_FRESH - 2 * HOUR
    gone = _repo_check([], _old_listing([_running(repository.GONE, since)]))
    assert gone.state == nagiosplugin.Critical
    assert gone.summary.endswith("; the repository is locked since %s by pid 4711 on this "
                                 "host, but its process is gone: a stale lock"
                                 % units.format_time(since, "%H:%M"))
    quiet = _repo_check([], _old_listing([_running(repository.ELSEWHERE, since)]))
    assert quiet.state == nagiosplugin.Critical and "not refreshed for 2h" in quiet.summary
    fresh = _repo_check([], _old_listing([_running(repository.ELSEWHERE, since,
                                                   WEB2_FRESH - 300)]))
    assert fresh.state == nagiosplugin.Warn and "pid 4711 on web1" in fresh.summary
    young = repository.Listing([repository.Snapshot("ab", "ab", WEB2_FRESH - HOUR)],
                               [_running(repository.GONE, since)])
    ok = _repo_check([], young)
    assert ok.state == nagiosplugin.Ok  # a stale lock beside a fresh backup: long output
    assert any("(gone)" in line for line in ok.long)


@pytest.mark.parametrize("argv, message", [
    (["--mode", "restic"], "--mode restic needs --repo (or RESTIC_REPOSITORY)"),
    (["--mode", "restic", "--repo", "/r"], "--mode restic needs --password-file (or "
                                           "RESTIC_PASSWORD_FILE, RESTIC_PASSWORD_COMMAND"),
    (["--mode", "borg", "--repo", "/r", "--host", "a"], "--host is for --mode restic"),
    (["--mode", "restic", "--repo", "/r", "--prefix", "a"], "--prefix and --glob-archives"),
    (["--mode", "restic", "--repo", "/r", "--glob", "*"], "--glob is not for --mode restic"),
    (["-p", "/x", "--repo", "/r"], "--repo is for --mode restic and borg"),
    (["-p", "/x", "-p", "/y"], "--path is given once in --mode newest"),
])
def test_repository_usage_errors(argv, message, monkeypatch):
    for name in ("RESTIC_REPOSITORY", "RESTIC_PASSWORD_FILE", "RESTIC_PASSWORD_COMMAND",
                 "RESTIC_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    out = run(*argv)
    assert out.exitcode == 3 and message in out.output, out.output


@pytest.mark.parametrize("tool, remote", [(restic.TOOL, "sftp:box:/r"),
                                          (borg.TOOL, "ssh://box/r")], ids=["restic", "borg"])
def test_each_repository_tool_is_one_record_chosen_once_by_mode(tool, remote, monkeypatch):
    """--mode chooses the tool's repository.Tool, and the check reaches the tool through it
    alone: its filters are the keywords of its own matches, every filter option of the check
    is one tool's, and the other tool's filter is refused naming whose it is."""
    import inspect

    assert backup_age.repository_tool(tool.name) is tool
    assert tuple(inspect.signature(tool.matches).parameters)[1:] == tool.filters
    args = backup_age.build_parser().parse_args(["--mode", tool.name])
    backup_age.check_options(args)
    keywords = [keyword for flag, keyword, value in backup_age.repo_filters(args)]
    assert sorted(keywords) == sorted(restic.TOOL.filters + borg.TOOL.filters)
    other = borg.TOOL if tool is restic.TOOL else restic.TOOL
    flag = [f for f, keyword, value in backup_age.repo_filters(args)
            if keyword == other.filters[-1]][0]
    monkeypatch.setenv("RESTIC_PASSWORD_FILE", "/etc/osop-checks/restic.pw")
    out = run("--mode", tool.name, "--repo", "/r", flag, "/x")
    assert out.status_line.startswith("BACKUP_AGE UNKNOWN - %s is for --mode %s (%s: " % (
        flag, other.name, other.name)), out.output
    seen = []

    def read_repo(access):
        seen.append(access.tool)
        return repository.Listing([])
    args = backup_age.build_parser().parse_args(["--mode", tool.name, "--repo", remote])
    verdict = backup_age.build_check(args, read_repo=read_repo)
    assert seen == [tool]
    assert verdict.summary.startswith("no backup found: no %s %ss in %s" % (
        tool.name, tool.snapshot, remote))


def test_borg_verify_says_the_share_it_takes():
    """The share borg's check can read, from its Tool, as the admin writes it."""
    out = run("--mode", "borg", "--repo", "/r", "--verify", "10%")
    assert out.status_line == "BACKUP_AGE UNKNOWN - borg check reads all of the data or " \
        "none: --verify 100% or 0 (see --help)"


def test_a_missing_local_repository_is_critical(tmp_path):
    out = run("--mode", "borg", "--repo", tmp_path / "gone")
    assert out.exitcode == 2
    assert out.status_line.startswith("BACKUP_AGE CRITICAL - --repo %s does not exist (nearest "
                                      "existing parent %s" % (tmp_path / "gone", tmp_path))


def _verify_check(argv, tmp_path, now, result, listing=None):
    """The check with --verify on a listing handed in; ``result`` (ok, fixture) is what the
    tool's check says when it runs. Returns (verdict, whether the check ran)."""
    args = backup_age.build_parser().parse_args(
        PW + ["--mode", "restic", "--repo", "sftp:box:/srv/restic", "--state-file",
         str(tmp_path / "state.json")] + argv)
    ran = []

    def verify(access, share):
        ran.append(share)
        ok, words = repository.check_result(result[0], fixture("restic", result[1]))
        return repository.Verification(now, ok, words, share, ran=True)
    listing = listing or repository.Listing([repository.Snapshot("ab", "ab", now - HOUR)])
    verdict = backup_age.build_check(args, read_repo=lambda *a: listing, verify=verify,
                                     now=lambda: now)
    if verdict.save:
        verdict.save()
    return verdict, ran


BAD = (1, "check-0.14-damaged-pack.txt")
GOOD = (0, "check-0.14-ok.txt")


def test_verify_a_damaged_pack_is_critical_on_every_run_until_a_check_passes(tmp_path):
    first, ran = _verify_check(["--verify", "5%"], tmp_path, NOW, BAD)
    assert ran == ["5%"] and first.state == nagiosplugin.Critical
    assert first.summary.startswith("restic check of %s (0s ago) failed: error for tree "
                                    "1e2547cb: decrypting blob" % units.format_time(
                                        NOW, "%Y-%m-%d %H:%M"))
    assert first.long[0].endswith("(2 more lines, the last: Fatal: repository contains errors)")
    later, ran = _verify_check(["--verify", "5%"], tmp_path, NOW + 6 * HOUR, GOOD)
    assert ran == [] and later.state == nagiosplugin.Critical  # not due: remembered
    assert "(6h ago) failed" in later.summary
    passed, ran = _verify_check(["--verify", "5%"], tmp_path, NOW + 25 * HOUR, GOOD)
    assert ran == ["5%"] and passed.state == nagiosplugin.Ok
    assert passed.summary.endswith("; last check passed")
    assert passed.long[0] == "integrity: restic check of %s (0s ago) passed" % (
        units.format_time(NOW + 25 * HOUR, "%Y-%m-%d %H:%M"))
    again, ran = _verify_check(["--verify", "5%", "--verify-every", "1h"], tmp_path,
                               NOW + 27 * HOUR, BAD)
    assert ran == ["5%"] and again.state == nagiosplugin.Critical


def test_verify_waits_for_a_running_backup(tmp_path):
    running = repository.Running("web1", 1, repository.RUNNING, NOW - 60, NOW - 60)
    listing = repository.Listing([repository.Snapshot("ab", "ab", NOW - HOUR)], [running])
    verdict, ran = _verify_check(["--verify", "1/10"], tmp_path, NOW, BAD, listing)
    assert ran == [] and verdict.state == nagiosplugin.Ok
    assert "integrity: not checked yet (check due, not run: a backup holds the lock)" in \
        verdict.long


def test_a_check_that_found_the_lock_taken_is_not_a_finding():
    with pytest.raises(repository.Locked):
        repository.check_result(1, "Fatal: unable to create lock in backend: repository is "
                                   "already locked by PID 55 on vm by root")  # constructed


@pytest.mark.parametrize("share, ok", [("5%", True), ("1/10", True), ("0", True),
                                       ("0%", False), ("11/10", False), ("half", False)])
def test_verify_shares(share, ok):
    out = run("--mode", "restic", "--repo", "/nonexistent/r", "--verify", share, *PW)
    assert (out.exitcode != 3) == ok, out.output


def _sampled(path, outcome, size=10, restored=10):
    return repository.Sampled(repository.FileNode(path.lstrip("/"), size, NOW - DAY, path),
                              restored, outcome)


def test_restore_sample_names_each_file_that_is_not_what_was_backed_up():
    restored = repository.RestoreSample([
        _sampled("/srv/a", repository.SAME), _sampled("/srv/b", repository.DIFFERS),
        _sampled("/srv/c", repository.AS_RECORDED),
        _sampled("/srv/d", repository.WRONG_SIZE, restored=3),
        _sampled("/srv/e", repository.NOT_RESTORED, restored=None)], files_seen=40)
    listing = repository.Listing([repository.Snapshot("ab", "ab", WEB2_FRESH - HOUR)])
    args = backup_age.build_parser().parse_args(
        PW + ["--mode", "restic", "--repo", "sftp:box:/r", "--restore-sample", "5"])
    asked = []

    def restore(access, snapshot, n, cap):
        asked.append((snapshot.id, n, cap))
        return restored
    verdict = backup_age.build_check(args, read_repo=lambda *a: listing, restore=restore,
                                     now=lambda: WEB2_FRESH)
    assert asked == [("ab", 5, 64 * 1024 * 1024)]
    assert verdict.state == nagiosplugin.Critical
    assert verdict.summary == (
        "restored /srv/b differs from the live file, which is unchanged since the snapshot; "
        "restored /srv/d of another size than recorded; restored /srv/e not restored")
    assert "restore sample /srv/d (10 bytes recorded, 3 bytes restored): of another size " \
        "than recorded" in verdict.long
    fine = backup_age.judge_restore(repository.RestoreSample(restored.samples[:1] +
                                                             restored.samples[2:3]))
    assert fine == [(nagiosplugin.Ok, "2 of 2 files restored fine (1 compared with the live "
                                      "file)")]
    failed = backup_age.judge_restore(repository.RestoreSample([], 3, "restic failed (exit 1)"))
    assert failed[0] == (nagiosplugin.Critical, "restore failed: restic failed (exit 1)")


def test_reservoir_draws_alike_within_the_cap():
    pool = repository.Reservoir(3, 100)
    for i in range(50):
        pool.offer(repository.FileNode("/f%d" % i, 40 if i % 2 else 200, 0))
    pool.offer(repository.FileNode("/a*b", 1, 0))  # a name restic would read as a pattern
    drawn = pool.drawn()
    assert pool.seen == 25 and len(drawn) == 2 and all(n.size == 40 for n in drawn)


def _sleeping_check(tmp_path, now, listing=None, kind="connection refused", extra=()):
    """--sleeping on sftp:box: ``listing`` when the box is awake, else ssh fails as ``kind``."""
    args = backup_age.build_parser().parse_args(
        PW + ["--mode", "restic", "--repo", "sftp:backup@box:/srv/restic", "--sleeping",
         "--state-file", str(tmp_path / "state.json")] + list(extra))

    def read_repo(access):
        if listing is None:
            raise repository.Unreachable(kind, "restic could not reach the repository's host: "
                                               "%s (Fatal: unable to open repository)" % kind)
        return listing
    verdict = backup_age.build_check(args, read_repo=read_repo, now=lambda: now)
    if verdict.save:
        verdict.save()
    return verdict


def test_a_sleeping_repository_is_judged_by_its_last_good_listing(tmp_path):
    never = _sleeping_check(tmp_path, NOW)
    assert never.state == nagiosplugin.Critical
    assert never.summary == ("restic snapshots in sftp:backup@box:/srv/restic asleep "
                             "(connection refused) and never listed: nothing to judge")
    listing = repository.Listing([repository.Snapshot("ab", "ab", NOW - HOUR, "web1",
                                                      ("/srv",), ("nightly",))])
    awake = _sleeping_check(tmp_path, NOW, listing)
    assert awake.state == nagiosplugin.Ok and "is 1h old" in awake.summary
    asleep = _sleeping_check(tmp_path, NOW + 14 * HOUR)
    assert asleep.state == nagiosplugin.Ok
    assert asleep.summary.startswith("newest restic snapshot ab (web1:/srv) is 15h old; "
                                     "repository host asleep (connection refused), last "
                                     "listed 14h ago; 1 snapshot")
    late = _sleeping_check(tmp_path, NOW + 30 * HOUR, extra=["--tag", "nightly"])
    assert late.state == nagiosplugin.Warn
    assert late.summary == ("newest restic snapshot ab (web1:/srv) is 1d 7h old, limit 26h; "
                            "repository host asleep (connection refused), last listed 1d 6h "
                            "ago: did the box wake up?")
    gone = _sleeping_check(tmp_path, NOW + 55 * HOUR, kind="timeout")
    assert gone.state == nagiosplugin.Critical and "limit 50h; repository host asleep " \
        "(timeout)" in gone.summary


def test_a_refused_login_is_not_sleep(tmp_path):
    with pytest.raises(nagiosplugin.CheckError, match=r"host: permission denied \(publickey"):
        _sleeping_check(tmp_path, NOW, kind="permission denied (publickey)")


def test_restic_018_summary_gives_the_newest_snapshots_size_and_files():
    listing = repository.Listing(restic.parse_snapshots(
        fixture("restic", "snapshots-0.18-web1-old-web2-fresh.json")))
    old = _repo_check(["--host", "web1", "-w", "26h"], listing)
    assert old.state == nagiosplugin.Warn
    assert old.summary == "newest restic snapshot bd74e984 (web1:/tmp/r18/src) is 1d 6h old, " \
                          "limit 26h"
    assert "files=2;;;0" in perfdata(old) and "size=13B;;;0" in perfdata(old)
    lock = restic.parse_lock("1", fixture("restic", "cat-lock-0.18-backup-running.json"))
    assert (lock.host, lock.exclusive) == ("vm", False)
    ok, words = repository.check_result(1, fixture("restic", "check-0.18-damaged-pack.txt"))
    assert not ok and words.startswith("error for tree ac08ce34: decrypting blob <tree/ac08ce34>"
                                       " from 12ea2a03 failed: ciphertext verification failed")


def test_borg_14_listing_and_its_checkpoint():
    archives = borg.parse_list(fixture("borg", "list-1.4-named-checkpoint.json"))
    assert [a.name for a in archives if borg.matches(a)] == ["web1-2026-12-04",
                                                             "web1-2026-12-05"]
    check = _repo_check([], repository.Listing(archives), now=archives[-1].time, mode="borg")
    assert check.summary.startswith("newest borg archive web1-2026-12-05 is ")


def test_borg_check_of_a_damaged_segment():
    ok, words = repository.check_result(1, fixture("borg", "check-1.2-damaged-segment.txt"))
    assert not ok
    assert words.startswith("Data integrity error: Segment entry checksum mismatch [segment 2, "
                            "offset 98] ... (")


def test_an_rsync_at_work_on_an_old_mirror_makes_it_a_backup_in_progress(tmp_path):
    trees.make_tree(str(tmp_path / "mirror"), {"a": (10, NOW - 30 * HOUR)})
    args = backup_age.build_parser().parse_args(["-p", str(tmp_path / "mirror"), "-c", "26h"])
    asked = []

    def copies(path):
        asked.append(path)
        return [repository.Running("vm", 4711, repository.RUNNING, NOW - HOUR, NOW - HOUR,
                                   command="rsync -a /data1/")]
    verdict = backup_age.build_check(args, copies=copies, now=lambda: NOW)
    assert asked == [str(tmp_path / "mirror")] and verdict.state == nagiosplugin.Warn
    assert verdict.summary.endswith("limit 26h; backup running since %s (pid 4711 on this "
                                    "host)" % units.format_time(NOW - HOUR, "%H:%M"))
    fresh = backup_age.build_check(backup_age.build_parser().parse_args(
        ["-p", str(tmp_path / "mirror"), "-w", "2d", "-c", "3d"]), copies=copies,
        now=lambda: NOW)
    assert fresh.state == nagiosplugin.Ok and len(asked) == 1  # not looked for: not too old

