"""check_three_copies logic: locations, ssh argv and failures in words, the streaming
merge of manifests, and the judgement on constructed surveys (no I/O)."""
import json
import re
import subprocess
import sys
import tracemalloc

import pytest

from nagiosplugin import Critical, Ok, Warn

from osop_checks import cli, proc, units
from osop_checks.checks import three_copies
from osop_checks.sources import manifest, ssh
from tests import helpers
from lab.peers import run_inprocess

NOW = 1_800_000_000.0
DAY = 86400


# -- locations ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("/data2", manifest.Location("/data2")),
    ("/data2/", manifest.Location("/data2")),
    ("/mnt/a:b", manifest.Location("/mnt/a:b")),
    ("vault:/srv/data1", manifest.Location("/srv/data1", "vault")),
    ("backup@vault.example.org:/srv/x", manifest.Location("/srv/x", "vault.example.org",
                                                          "backup")),
    ("ssh://backup@vault:2222/srv/x", manifest.Location("/srv/x", "vault", "backup", 2222)),
    ("ssh://[::1]:22/srv/x", manifest.Location("/srv/x", "::1", None, 22)),
])
def test_locations(text, expected):
    assert manifest.parse_location(text) == expected


@pytest.mark.parametrize("text", ["data2", "./data2", "vault:srv/x", "vault:", "-oProxy=x:/a",
                                  ""])
def test_bad_locations(text):
    with pytest.raises(manifest.LocationError):
        manifest.parse_location(text)


# -- ssh ----------------------------------------------------------------------------------

def test_ssh_argv_is_batch_mode_key_only_and_quotes_the_remote_command():
    options = ssh.Options(port=2222, identity="/k", known_hosts="/kh", user="backup")
    argv = ssh.argv("vault", ["find", "/srv/my data", "-printf", "%P;$(rm -rf /)\n"], options)
    joined = " ".join(argv)
    for option in ("BatchMode=yes", "PasswordAuthentication=no",
                   "KbdInteractiveAuthentication=no", "StrictHostKeyChecking=yes",
                   "UserKnownHostsFile=/kh", "ConnectTimeout=10", "IdentitiesOnly=yes"):
        assert option in joined
    assert argv[argv.index("-p") + 1] == "2222"
    assert argv[argv.index("-l") + 1] == "backup"
    assert argv[-2:-1] == ["vault"]
    # The remote shell sees one word per argument, nothing expanded.
    import shlex
    assert shlex.split(argv[-1]) == ["find", "/srv/my data", "-printf", "%P;$(rm -rf /)\n"]


def test_ssh_timeouts_are_bounded_by_the_deadline():
    from osop_checks import deadline
    deadline.start(3.5)
    try:
        argv = ssh.argv("vault", ["true"], ssh.Options())
    finally:
        deadline.start(None)
    assert "ConnectTimeout=3" in argv or "ConnectTimeout=2" in argv
    assert "ServerAliveInterval=1" in argv


@pytest.mark.parametrize("fixture, kind", [
    ("host-key-mismatch", "host key mismatch"),
    ("host-key-not-known", "host key not known"),
    ("permission-denied", "permission denied (publickey)"),
    ("connection-refused", "connection refused"),
    ("unknown-host", "unknown host"),
    ("banner-timeout", "timeout"),
])
def test_ssh_failures_in_words(fixture, kind):
    assert ssh.classify(helpers.fixture("ssh", fixture + ".txt")) == kind


# -- manifests ----------------------------------------------------------------------------

def rec(path, kind="f", size=5, mtime=NOW - 10 * DAY):
    return "%s\t%d\t%.10f\t%s\n" % (kind, size, mtime, path.replace("\n", "\0"))


def src(path, kind="f", size=5, mtime=NOW - 10 * DAY, ctime=None):
    return "%.10f\t%s" % (mtime if ctime is None else ctime, rec(path, kind, size, mtime))


def sorted_records(records, key):
    return sorted(records, key=lambda r: key(r).encode("utf-8", "surrogateescape"))


def source_of(*entries):
    return sorted_records([src(*e) if isinstance(e, tuple) else src(e) for e in entries],
                          lambda r: r.rstrip("\n").split("\t", 4)[4])


def copy_of(*entries):
    return sorted_records([rec(*e) if isinstance(e, tuple) else rec(e) for e in entries],
                          lambda r: r.rstrip("\n").split("\t", 3)[3])


def test_identical_copies_are_equal():
    names = ["a", "a.b", "a/x", "t\tab", "n\nl", "\u00e9t\u00e9"]
    source = source_of(("a", "d", 0), *names[1:])
    copy = copy_of(("a", "d", 0), *names[1:])
    [tally] = manifest.compare(source, [copy], now=NOW)
    assert (tally.equal, tally.missing, tally.extra, tally.differing) == (6, 0, 0, 0)
    assert tally.oldest_change is None


def test_missing_extra_differing_and_the_oldest_change():
    source = source_of("keep", ("gone-old", "f", 5, NOW - 5 * DAY),
                       ("gone-new", "f", 5, NOW - 2 * DAY), ("bigger", "f", 9),
                       ("touched", "f", 5, NOW - 3 * DAY), ("kind", "d", 0))
    copy = copy_of("keep", ("bigger", "f", 5), ("touched", "f", 5, NOW - 4 * DAY), "kind",
                   "leftover")
    [tally] = manifest.compare(source, [copy], now=NOW)
    assert tally.missing == 2 and tally.extra == 1 and tally.differing == 3
    assert tally.examples["missing"] == ["gone-new", "gone-old"]
    assert tally.examples["extra"] == ["leftover"]
    assert "bigger (size 5, source 9)" in tally.examples["differing"]
    assert "kind (type f, source d)" in tally.examples["differing"]
    assert tally.oldest_change == NOW - 10 * DAY  # 'bigger' and 'kind', unchanged since


def test_a_newer_directory_in_the_source_ages_the_copy_but_is_not_counted():
    # A file deleted from the source 3 days ago: its directory's mtime tells when.
    source = source_of(("dir", "d", 0, NOW - 3 * DAY), "dir/kept")
    copy = copy_of(("dir", "d", 0, NOW - 9 * DAY), "dir/kept", "dir/deleted")
    [tally] = manifest.compare(source, [copy], now=NOW)
    assert tally.differing == 0 and tally.extra == 1
    assert tally.oldest_change == NOW - 3 * DAY


def test_changes_within_the_settle_window_are_pending_and_still_age_the_copy():
    source = source_of("old", ("fresh", "f", 5, NOW - 60, NOW - 60),
                       ("moved-in", "f", 5, NOW - 9 * DAY, NOW - 120))
    [tally] = manifest.compare(source, [copy_of("old")], now=NOW, settle=3600)
    assert tally.missing == 0 and tally.pending == 2 and tally.oldest_change == NOW - 120
    [tally] = manifest.compare(source, [copy_of("old")], now=NOW, settle=0)
    assert tally.missing == 2 and tally.pending == 0 and tally.oldest_change == NOW - 120


def test_with_a_stamp_what_changed_after_it_is_pending_and_what_before_is_missing():
    source = source_of("old", ("before", "f", 5, NOW - 5 * 3600, NOW - 5 * 3600),
                       ("after", "f", 5, NOW - 2 * 3600, NOW - 2 * 3600),
                       ("edited", "f", 9, NOW - 3600, NOW - 3600))
    copy = copy_of("old", "edited")
    stamp = NOW - 3 * 3600
    [tally] = manifest.compare(source, [copy], now=NOW, since=[stamp])
    assert (tally.missing, tally.differing, tally.pending) == (1, 0, 2)
    assert tally.examples["missing"] == ["before"]
    assert tally.oldest_change == NOW - 5 * 3600


def test_the_trees_are_counted_with_their_top_level_names_and_the_churn():
    source = source_of(("docs", "d", 0), ("docs/a", "f", 10), ("docs/b", "f", 20, NOW - 60),
                       ("docs.txt", "f", 3), ("mail", "d", 0), ("mail/x", "f", 7, NOW - 60))
    copy = copy_of(("docs", "d", 0), ("docs/a", "f", 10), ("docs.txt", "f", 3),
                   ("old", "f", 100))
    tree = manifest.Tree(since=NOW - 3600)
    [tally] = manifest.compare(source, [copy], now=NOW, source_tree=tree)
    assert (tree.entries, tree.files, tree.bytes, tree.changed) == (6, 4, 40, 2)
    assert tree.top == {"docs/": [3, 30], "docs.txt": [1, 3], "mail/": [2, 7]}
    copied = tally.tree
    assert (copied.entries, copied.files, copied.bytes) == (4, 3, 113)
    assert copied.top == {"docs/": [2, 10], "docs.txt": [1, 3], "old": [1, 100]}


def test_the_top_level_names_are_bounded():
    tree = manifest.Tree()
    for i in range(manifest.Tree.TOP_NAMES + 50):
        tree.add("f", "1", "0", "n%04d\n" % i)
    assert len(tree.top) == manifest.Tree.TOP_NAMES and tree.other == [50, 50]


def test_mtimes_are_compared_in_whole_seconds_and_dirs_by_mtime_only():
    source = source_of(("f", "f", 5, NOW - DAY + 0.25), ("d", "d", 0, NOW - DAY))
    copy = copy_of(("f", "f", 5, NOW - DAY + 0.75), ("d", "d", 0, NOW - DAY))
    [tally] = manifest.compare(source, [copy], now=NOW)
    assert tally.equal == 2 and tally.differing == 0


def test_the_stamp_file_is_ignored_on_both_sides():
    source = source_of("a", ".last-sync")
    copy = copy_of("a", (".last-sync", "f", 20, NOW - 60))
    [tally] = manifest.compare(source, [copy], now=NOW, ignore=[".last-sync"])
    assert (tally.missing, tally.extra, tally.differing) == (0, 0, 0)


def test_several_copies_in_one_pass():
    source = source_of("a", "b", "c")
    tallies = manifest.compare(source, [copy_of("a", "b", "c"), copy_of("b"), copy_of()],
                               now=NOW)
    assert [t.missing for t in tallies] == [0, 2, 3]


def test_the_sample_skips_files_a_copy_does_not_have_alike():
    source = source_of(*["f%02d" % i for i in range(20)])
    copy = copy_of(*["f%02d" % i for i in range(20) if i != 7])
    sample = manifest.Sample(100)
    [tally] = manifest.compare(source, [copy], now=NOW, sample=sample)
    assert len(sample.paths) == 20 and tally.sampled_bad == {"f07"}


def test_the_sample_is_bounded_and_uniform_enough():
    import random
    sample = manifest.Sample(10, random.Random(1))
    for i in range(10000):
        sample.offer(i)
    assert len(sample.paths) == 10 and max(sample.paths) > 1000


def test_memory_stays_bounded_on_a_large_listing():
    count = 60_000

    def source():
        for i in range(count):
            yield src("d%03d/f%07d" % (i // 1000, i))

    def copy(skip):
        for i in range(count):
            if i % skip:
                yield rec("d%03d/f%07d" % (i // 1000, i))

    tracemalloc.start()
    tallies = manifest.compare(source(), [copy(10 ** 9), copy(3), copy(2)], now=NOW,
                               sample=manifest.Sample(50))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [t.missing for t in tallies] == [1, len(range(0, count, 3)), count // 2]
    assert peak < 4 * 1024 * 1024


def test_probe_answers():
    assert manifest.parse_probe("ok 2049 1790000000") == manifest.Probe("ok", 2049,
                                                                        1790000000.0)
    assert manifest.parse_probe("ok 2049 -") == manifest.Probe("ok", 2049, None)
    assert manifest.parse_probe("missing").state == "missing"
    with pytest.raises(proc.CommandError):
        manifest.parse_probe("Welcome to vault!")


def scripted_listing(location, source):
    """The lines the script run over ssh writes for ``location``, run here, decoded as the
    check decodes a listing."""
    return subprocess.run(manifest.listing_argv(location, source), check=True,
                          capture_output=True, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"}
                          ).stdout.decode("utf-8", "surrogateescape")


def test_a_local_tree_is_listed_as_the_remote_script_lists_it(tmp_path):
    """The local listing and the script run over ssh write the very same records (the merge
    compares a local source with remote copies record by record): names with a tab, a
    newline, a non-UTF-8 byte, a symbolic link, an empty directory, a fifo, times before
    1970 and to the nanosecond, the tree named through a symbolic link (find -H). Both ways
    of listing a local tree: walked in the check's process (within the budget) and piped
    through find, sort and tr (past it)."""
    import os

    root = tmp_path / "tree"
    for name in (b"a/x", b"a", b"a.b", b"tab\there", b"new\nline", b"caf\xe9", b"z/deep/er",
                 b"a-", b"a/x\xff", b"\xc3\xa9t\xc3\xa9"):
        path = os.path.join(os.fsencode(root), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.isdir(path):
            with open(path, "wb") as handle:
                handle.write(name * 3)
    os.mkdir(root / "empty")
    os.symlink("a.b", root / "link")
    os.symlink("z", root / "dirlink")
    os.mkfifo(root / "fifo")
    os.utime(os.path.join(os.fsencode(root), b"a.b"), ns=(10**18, 1_600_000_000_123_456_789))
    os.utime(root / "a-", ns=(0, -1_500_000_001))
    os.symlink(root, tmp_path / "named")
    for where in (root, tmp_path / "named"):
        location = manifest.Location(str(where))
        for source in (False, True):
            scripted = scripted_listing(location, source)
            assert len(scripted.split("\n")) == 17  # 16 records
            for budget, walked in ((manifest.WALK_BUDGET, True), (16, True), (15, False)):
                assert (manifest._walk(str(where), source, budget) is not None) == walked
                with manifest.listing(location, source, budget=budget) as lines:
                    listed = "".join(lines)
                assert listed == scripted, (budget, source)


def test_a_walk_obeys_the_timeout(tmp_path):
    """The walk asks the run's time budget as a command does, and gives up when its own
    time is out: deadline.Timeout (the runner's UNKNOWN "no result within the --timeout")."""
    from osop_checks import deadline

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x")
    location = manifest.Location(str(tmp_path))
    deadline.start(deadline.MARGIN)  # nothing left beyond the margin kept for the verdict
    try:
        with pytest.raises(deadline.Timeout):
            manifest.listing(location, True)
    finally:
        deadline.start(None)
    with pytest.raises(deadline.Timeout):
        manifest._walk(str(tmp_path), True, 100, timeout=-1)  # out of time at the first look
    assert len(manifest._walk(str(tmp_path), True, 100, timeout=10)) == 2


def test_a_walk_leaves_what_it_cannot_list_to_find(tmp_path):
    """A tree the walk cannot list plainly (here a path longer than the kernel takes in one
    call: find goes down directory by directory) is listed by find, sort and tr, and what
    they say stands: the same records, or their error."""
    import os

    root = tmp_path / "tree"
    deep = os.fsencode(root)
    os.makedirs(deep)
    fd = os.open(deep, os.O_RDONLY)
    for _level in range(25):  # 25 x 200 bytes: past PATH_MAX (4096)
        os.mkdir(b"d" * 200, dir_fd=fd)
        child = os.open(b"d" * 200, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(os.open(b"f", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
    os.close(fd)
    location = manifest.Location(str(root))
    assert manifest._walk(str(root), True, 1000) is None
    scripted = scripted_listing(location, True)
    with manifest.listing(location, True) as lines:
        assert "".join(lines) == scripted
    assert len(scripted.splitlines()) == 26


def test_sha256sum_output():
    digest = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    out = "%s  a\0%s  n\nl\0%s *b\0" % (digest, digest, digest)
    assert manifest.parse_hashes(out) == {"a": digest, "n\nl": digest, "b": digest}


# -- the check on constructed surveys -------------------------------------------------------

def survey_of(*copies, source_device=1, now=NOW, sampled=0, tree=None, canaries=None):
    """A fake survey: copies are (name, location, probe or unreachable, tally)."""
    def survey(source, copy_args, options, stamp=None, settle=3600, sample_size=0,
               since_run=None, canaries_=(), **kw):
        survey.asked = dict(stamp=stamp, settle=settle, since_run=since_run)
        states = []
        for (name, location), spec in zip(copy_args, copies):
            state = three_copies.CopyState(name, location)
            if isinstance(spec, str):
                state.unreachable = spec
            else:
                state.probe, state.tally = spec
            states.append(state)
        return three_copies.Survey(source, manifest.Probe("ok", source_device), states, now,
                                   sampled, tree, canaries or {})
    return survey


class Store:
    """The state module's interface on a dict, so the judgement runs without files."""

    def __init__(self, data=None):
        self.data = data
        self.saved = []

    def ensure_dir(self, path, create=False):
        return path

    def load(self, path, reset="", discard_corrupt=False):
        return None if self.data is None else json.loads(json.dumps(self.data))

    def save(self, path, data):
        self.data = json.loads(json.dumps(data))
        self.saved.append(self.data)


def tally(missing=0, differing=0, extra=0, oldest=None, examples=()):
    t = manifest.Tally(equal=100, missing=missing, differing=differing, extra=extra,
                       oldest_change=oldest)
    for what, path in examples:
        t.examples[what].append(path)
    return t


def fine(device, stamp_age=None, **kw):
    stamp = None if stamp_age is None else NOW - stamp_age
    return (manifest.Probe("ok", device, stamp), tally(**kw))


def run(survey, *extra, store=None):
    args = ["--source", "/data1", "--copy", "data2=/data2",
            "--copy", "office=backup@office:/srv/copy",
            "--copy", "offsite=backup@vault:/srv/data1", "--offsite", "offsite"] + list(extra)
    original = three_copies.build_check
    store = Store() if store is None else store

    def build(parsed):
        return original(parsed, survey=survey, store=store)

    three_copies.build_check, saved = build, three_copies.build_check
    try:
        return run_inprocess(three_copies, args)
    finally:
        three_copies.build_check = saved


def test_all_fresh_is_ok():
    out = run(survey_of(fine(2), fine(3), fine(4, oldest=NOW - 3600)))
    assert out.exitcode == 0, out.output
    assert out.status_line.startswith("THREE_COPIES OK - 3 of 3 copies ok, oldest offsite 1h")
    assert "copies_ok=3;;3:;0;3" in out.status_line
    assert "offsite_age=3600s;93600;180000;0" in out.status_line
    assert "office_missing=0;;;0" in out.status_line
    assert "office_verified_age=0s;93600;180000;0" in out.status_line


def test_a_stale_offsite_copy_is_critical_with_the_limit_as_written():
    out = run(survey_of(fine(2, stamp_age=3600), fine(3, stamp_age=7200),
                        fine(4, stamp_age=3 * DAY + 4 * 3600)), "--stamp", ".last-sync")
    assert out.exitcode == 2, out.output
    assert out.status_line.startswith(
        "THREE_COPIES CRITICAL - 2 of 3 copies ok (at least 3 needed): offsite is 3d 4h old "
        "(limit 50h), no off-site copy ok |")
    assert "offsite: CRITICAL, age 3d 4h (stamp)" in out.output


def test_a_copy_past_the_warning_age_is_a_warning_and_still_counts():
    out = run(survey_of(fine(2, oldest=NOW - 27 * 3600), fine(3), fine(4)))
    assert out.exitcode == 1, out.output
    assert "3 of 3 copies ok: data2 lacks a change from 1d 3h ago (warning 26h)" in out.status_line


def test_a_breached_range_is_named_as_written():
    out = run(survey_of(fine(2, oldest=NOW - 3600), fine(3), fine(4)), "-w", "@30m:2h",
              "-c", "~:50h")
    assert out.exitcode == 1, out.output
    assert "data2 lacks a change from 1h ago (warning @30m:2h)" in out.status_line


def test_missing_and_differing_files_make_a_copy_not_ok():
    out = run(survey_of(fine(2), fine(3, missing=2, differing=1,
                                      examples=[("missing", "a/b"), ("differing", "c")]),
                        fine(4)), "--settle", "1h")
    assert out.exitcode == 2
    assert "office lacks 2 entries (e.g. a/b)" in out.status_line
    assert "office differs in 1 entry (e.g. c)" in out.status_line
    assert "office missing: a/b (and 1 more)" in out.output


def test_thresholds_on_counts():
    survey = survey_of(fine(2), fine(3, missing=2, extra=7), fine(4))
    out = run(survey, "--missing-critical", "5", "--missing-warning", "1",
              "--extra-warning", "5")
    assert out.exitcode == 1, out.output
    assert "office lacks 2 entries" in out.status_line
    assert "office has extra 7 entries" in out.status_line


def test_unreachable_offsite_is_critical():
    out = run(survey_of(fine(2), fine(3), "connection refused"))
    assert out.exitcode == 2
    assert "2 of 3 copies ok (at least 3 needed): offsite is unreachable: connection " \
           "refused, no off-site copy ok" in out.status_line
    assert "offsite_age" not in out.status_line


def test_more_copies_than_needed_one_bad_is_a_warning():
    out = run(survey_of(fine(2), "timeout", fine(4), fine(5)),
              "--copy", "nas=nas:/backup/data1")
    assert out.exitcode == 1, out.output
    assert "3 of 4 copies ok: office is unreachable: timeout" in out.status_line


def test_copies_on_one_filesystem_or_host_count_once():
    out = run(survey_of(fine(2), fine(3), fine(4), fine(2)), "--copy", "data2b=/data2b")
    assert out.exitcode == 0, out.output
    assert "3 of 3 copies ok" in out.status_line
    assert "data2 and data2b are on the same filesystem, counted once" in out.output
    out = run(survey_of(fine(2), fine(3), fine(4), fine(9)), "--copy", "usb=/mnt/usb",
              "--min-copies", "4")
    assert out.exitcode == 2
    assert "3 of 3 copies ok (at least 4 needed): data2 and usb are on the same host " \
           "(this host), counted once" in out.status_line


def test_a_copy_is_not_counted_once_with_itself():
    out = run(survey_of(fine(2), fine(3), fine(4), fine(9), fine(10)), "--copy", "usb=/mnt/usb",
              "--copy", "usb2=/mnt/usb2")
    assert "data2, usb and usb2 are on the same host (this host), counted once" in out.output
    assert "data2: OK, in sync, missing 0, differing 0, extra 0, equal 100, /data2, counted " \
           "once with usb and usb2" in out.output
    assert "usb: OK, in sync, missing 0, differing 0, extra 0, equal 100, /mnt/usb, counted " \
           "once with data2 and usb2" in out.output
    assert "office: OK, in sync, missing 0, differing 0, extra 0, equal 100, " \
           "backup@office:/srv/copy\n" in out.output


def test_a_copy_on_the_source_filesystem_is_no_copy():
    out = run(survey_of(fine(1), fine(3), fine(4)))
    assert out.exitcode == 2
    assert "data2 is on the same filesystem as the source" in out.status_line


def test_missing_directory_and_stamp():
    out = run(survey_of((manifest.Probe("missing"), None), fine(3), fine(4, stamp_age=60)),
              "--stamp", ".last-sync")
    assert out.exitcode == 2
    assert "data2 does not exist" in out.status_line
    assert "office has no stamp file .last-sync" in out.status_line


@pytest.mark.parametrize("argv, words", [
    (["--source", "/d", "--copy", "data2"], "is not NAME=LOCATION"),
    (["--source", "/d", "--copy", "a=data2"], "is not an absolute path"),
    (["--source", "data1", "--copy", "a=/x"], "is not an absolute path"),
    (["--source", "/d", "--copy", "a=host:rel"], "must be absolute"),
    (["--source", "/d", "--copy", "a=/x", "--copy", "a=/y", "--min-copies", "1"],
     "copy name a given twice"),
    (["--source", "/d", "--copy", "a=/x", "--offsite", "b", "--min-copies", "1"],
     "--offsite b names no --copy"),
    (["--source", "/d", "--copy", "a=/x"], "--min-copies 3 but only 1 --copy given"),
    (["--source", "/d", "--copy", "a=/x", "--min-copies", "1", "--stamp", "../x"],
     "must be a path inside the copy"),
    (["--source", "/d", "--copy", "a=/x", "-w", "soon"], "is not a duration"),
])
def test_bad_input_is_one_line_and_exit_3(argv, words):
    out = run_inprocess(three_copies, argv)
    assert out.exitcode == 3
    lines = out.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("THREE_COPIES UNKNOWN - ")
    assert words in lines[0]


def test_importing_the_check_loads_no_heavy_module():
    code = ("import sys; import osop_checks.checks.three_copies; "
            "print(sorted(m for m in ('psutil', 'cryptography', 'requests', 'pysnmp', 'dns') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


# -- the practice's day: pending is not missing ------------------------------------------------

HOUR = 3600
MIDNIGHT = 1_800_000_000.0 - 1_800_000_000.0 % DAY  # a UTC midnight; only differences count


class Practice:
    """/data1 and its three copies, made by a nightly sync that copies the source as it is
    (names, sizes, mtimes); ``survey`` lists both sides as the real listings would and
    merges them with the real manifest.compare."""

    def __init__(self, files=40):
        self.files = {"docs/f%02d" % i: (100, MIDNIGHT - 30 * DAY) for i in range(files)}
        self.copies = {name: dict(self.files) for name in ("data2", "office", "offsite")}
        self.stamps = {name: MIDNIGHT - 30 * DAY for name in self.copies}
        self.asleep = set()
        self.now = MIDNIGHT

    def edit(self, path, when, size=None):
        old = self.files.get(path, (0, 0))[0]
        self.files[path] = (old + 1 if size is None else size, when)

    def delete(self, prefix):
        for path in [p for p in self.files if p.startswith(prefix)]:
            del self.files[path]

    def sync(self, when, names=("data2", "office", "offsite")):
        for name in names:
            self.copies[name] = dict(self.files)
            self.stamps[name] = when

    def records(self, files, source):
        out = [("docs", "d", 0, MIDNIGHT - 30 * DAY, MIDNIGHT - 30 * DAY)]
        out += [(p, "f", size, when, when) for p, (size, when) in files.items()]
        return source_of(*out) if source else copy_of(*[r[:4] for r in out])

    def survey(self, source, copy_args, options, stamp=None, settle=3600, sample_size=0,
               since_run=None, canaries=(), **kw):
        now = self.now
        states = [three_copies.CopyState(name, where) for name, where in copy_args]
        reached = [s for s in states if s.name not in self.asleep]
        for s in states:
            if s.name in self.asleep:
                s.unreachable = "timeout"
            else:
                s.probe = manifest.Probe("ok", 2 + states.index(s),
                                         self.stamps[s.name] if stamp else None)
        since = [min(self.stamps[s.name], now - settle) if stamp else None for s in reached]
        tree = manifest.Tree(since_run)
        tallies = manifest.compare(self.records(self.files, True),
                                   [self.records(self.copies[s.name], False) for s in reached],
                                   now=now, settle=settle, since=since, source_tree=tree)
        for s, t in zip(reached, tallies):
            s.tally = t
        return three_copies.Survey(source, manifest.Probe("ok", 1), states, now, tree=tree)

    def check(self, when, *extra, store):
        self.now = when
        return run(self.survey, *extra, store=store)


def expected_by_age(age):
    return 0 if age <= 26 * HOUR else 1 if age <= 50 * HOUR else 2


@pytest.mark.parametrize("stamp", [False, True])
def test_a_nightly_mirror_is_ok_all_day_and_a_stopped_sync_warns_then_is_critical(stamp):
    day, store = Practice(), Store()
    extra = ["--stamp", ".last-sync"] if stamp else []
    day.sync(MIDNIGHT + 2 * HOUR)
    for d in (0, 1):  # two working days, each followed by the night's sync
        for hour in (8, 12, 17):
            day.edit("docs/f%02d" % (hour + d), MIDNIGHT + d * DAY + hour * HOUR)
        for hour in range(3, 26):
            out = day.check(MIDNIGHT + d * DAY + hour * HOUR + 1800, *extra, store=store)
            assert out.exitcode == 0, (d, hour, out.output)
        day.sync(MIDNIGHT + (d + 1) * DAY + 2 * HOUR)
    # Day 2's edits, then the sync stops: nothing more reaches the copies.
    for hour in (8, 12, 17):
        day.edit("docs/f%02d" % (hour + 2), MIDNIGHT + 2 * DAY + hour * HOUR)
    oldest = MIDNIGHT + 2 * DAY + 8 * HOUR  # the oldest change the copies lack
    last = MIDNIGHT + 2 * DAY + 2 * HOUR  # the last sync (its stamp)
    start = oldest if not stamp else last
    for hour in range(9, 80):
        now = MIDNIGHT + 2 * DAY + hour * HOUR + 1800
        out = day.check(now, *extra, store=store)
        assert out.exitcode == expected_by_age(now - start), (hour, out.output)
        if hour == 20:
            assert "3 of 3 copies ok, oldest" in out.status_line, out.status_line
            assert "(3 changes pending)" in out.status_line, out.status_line
            assert "data2: OK" in out.output and "3 pending" in out.output
        if out.exitcode:
            words = "offsite %s %s (%s)" % (
                "is" if stamp else "lacks a change from", units.format_duration(now - start)
                + (" old" if stamp else " ago"),
                "limit 50h" if out.exitcode == 2 else "warning 26h")
            assert words in out.status_line, out.status_line
            # the age speaks, not a count of entries lacked
            assert not re.search(r"lacks \d+ entr", out.status_line), out.status_line
    if not stamp:
        assert "age 2d 23h (oldest change it lacks: " in out.output, out.output


def test_with_a_stamp_a_change_older_than_the_stamp_that_a_copy_lacks_is_a_defect_at_once():
    day, store = Practice(), Store()
    day.sync(MIDNIGHT + 2 * HOUR)
    day.edit("docs/f01", MIDNIGHT + HOUR)  # changed before the sync finished ...
    day.copies["office"]["docs/f01"] = day.files["docs/f01"]
    day.copies["offsite"]["docs/f01"] = day.files["docs/f01"]
    out = day.check(MIDNIGHT + 3 * HOUR, "--stamp", ".last-sync", store=store)
    assert out.exitcode == 2, out.output  # ... but data2 does not have it
    assert "data2 differs in 1 entry (e.g. docs/f01 (size 100, source 101))" in \
        out.status_line, out.status_line


def test_an_explicit_settle_makes_older_lacking_entries_missing():
    day, store = Practice(), Store()
    day.sync(MIDNIGHT + 2 * HOUR)
    day.edit("docs/new", MIDNIGHT + 8 * HOUR)
    out = day.check(MIDNIGHT + 10 * HOUR, store=store)
    assert out.exitcode == 0, out.output
    out = day.check(MIDNIGHT + 10 * HOUR, "--settle", "1h", store=store)
    assert out.exitcode == 2, out.output
    assert "data2 lacks 1 entry (e.g. docs/new)" in out.status_line


# -- sleeping copies -------------------------------------------------------------------------

def test_a_sleeping_copy_is_judged_by_its_last_verification():
    day, store = Practice(), Store()
    sleeping = ["--sleeping", "offsite"]
    out = day.check(MIDNIGHT + 3 * HOUR, *sleeping, store=store)  # awake: verified
    assert out.exitcode == 0, out.output
    assert store.data["copies"]["offsite"]["verified"] == {
        "time": MIDNIGHT + 3 * HOUR, "state": 0, "verdict": "in sync"}
    day.asleep.add("offsite")
    out = day.check(MIDNIGHT + 17 * HOUR, *sleeping, store=store)
    assert out.exitcode == 0, out.output
    assert out.status_line.startswith(
        "THREE_COPIES OK - 3 of 3 copies ok, all in sync, offsite asleep, last verified in "
        "sync 14h ago |"), out.status_line
    assert "offsite_verified_age=50400s;93600;180000;0" in out.status_line
    assert "data2_verified_age=0s" in out.status_line
    out = day.check(MIDNIGHT + 3 * HOUR + 26 * HOUR + 60, *sleeping, store=store)
    assert out.exitcode == 1, out.output
    assert "offsite not verified for 1d 2h: did the box wake up?" in out.status_line
    assert "3 of 3 copies ok" in out.status_line  # a WARNING copy still counts
    out = day.check(MIDNIGHT + 3 * HOUR + 51 * HOUR, *sleeping, store=store)
    assert out.exitcode == 2, out.output
    assert "2 of 3 copies ok (at least 3 needed): offsite not verified for 2d 3h: did the " \
           "box wake up?, no off-site copy ok" in out.status_line, out.status_line
    # It wakes up: verified again, OK.
    day.asleep.clear()
    day.sync(MIDNIGHT + 3 * DAY)
    out = day.check(MIDNIGHT + 3 * DAY + 60, *sleeping, store=store)
    assert out.exitcode == 0, out.output
    assert "offsite_verified_age=0s" in out.status_line


def test_a_sleeping_copy_never_verified_is_critical():
    day = Practice()
    day.asleep.add("offsite")
    out = day.check(MIDNIGHT, "--sleeping", "offsite", store=Store())
    assert out.exitcode == 2, out.output
    assert "offsite asleep and never verified yet (unreachable: timeout)" in out.status_line


def test_a_sleeping_copy_keeps_the_verdict_it_had():
    day, store = Practice(), Store()
    day.sync(MIDNIGHT - HOUR)
    del day.copies["offsite"]["docs/f03"]
    out = day.check(MIDNIGHT, "--sleeping", "offsite", "--stamp", ".s", store=store)
    assert out.exitcode == 2, out.output
    day.asleep.add("offsite")
    out = day.check(MIDNIGHT + 2 * HOUR, "--sleeping", "offsite", "--stamp", ".s",
                    store=store)
    assert out.exitcode == 2, out.output
    assert "offsite asleep, last verified CRITICAL 2h ago: offsite lacks 1 entry " \
           "(e.g. docs/f03)" in out.status_line, out.status_line


def test_a_copy_not_marked_sleeping_is_unreachable_as_before():
    day, store = Practice(), Store()
    day.check(MIDNIGHT, store=store)
    day.asleep.add("offsite")
    out = day.check(MIDNIGHT + HOUR, store=store)
    assert out.exitcode == 2, out.output
    assert "offsite is unreachable: timeout, no off-site copy ok" in out.status_line
    assert "offsite_verified_age=3600s" in out.status_line


# -- a loss that spreads ---------------------------------------------------------------------

def grown(files=30):
    """A practice with docs/ and mail/ (20 and 10 files) and a first run recorded."""
    day, store = Practice(files=0), Store()
    for i in range(files):
        day.files["%s/f%02d" % ("docs" if i < 20 else "mail", i)] = (100, MIDNIGHT - 9 * DAY)
    day.sync(MIDNIGHT)
    out = day.check(MIDNIGHT + 3 * HOUR + 600, store=store)
    assert out.exitcode == 0, out.output
    assert "first run: baseline recorded" in out.output
    return day, store


def test_a_deleted_directory_is_critical_in_the_source_and_then_in_the_copies():
    day, store = grown()
    when = three_copies.clock(MIDNIGHT + 3 * HOUR + 600, MIDNIGHT + 15 * HOUR)
    day.delete("docs/f0")  # 10 of 31 entries, 1000 of 3000 bytes
    out = day.check(MIDNIGHT + 15 * HOUR, store=store)
    assert out.exitcode == 2, out.output
    assert out.status_line.startswith(
        "THREE_COPIES CRITICAL - 3 of 3 copies ok: source lost 33%% of its bytes since %s "
        "(most in docs/)" % when), out.status_line
    # The next night's rsync --delete spreads it: the source is held, the copies follow.
    day.sync(MIDNIGHT + DAY + 2 * HOUR)
    out = day.check(MIDNIGHT + DAY + 2 * HOUR + 300, store=store)
    assert out.exitcode == 2, out.output
    assert "source lost 33%% of its bytes since %s (most in docs/) (alarm held since %s)" % (
        when, three_copies.clock(MIDNIGHT + 15 * HOUR, MIDNIGHT + DAY + 2 * HOUR)) \
        in out.status_line, out.status_line
    for name in ("data2", "office", "offsite"):
        assert "%s lost 33%% of its bytes since" % name in out.status_line
    # Held for 24h after it was last seen, then it clears.
    out = day.check(MIDNIGHT + 2 * DAY + 2 * HOUR + 299, store=store)
    assert out.exitcode == 2 and "data2 lost" in out.status_line
    assert "source lost" not in out.status_line, out.status_line
    out = day.check(MIDNIGHT + 2 * DAY + 2 * HOUR + 301, store=store)
    assert out.exitcode == 0, out.output


def test_a_small_deletion_is_a_warning_and_a_growth_nothing():
    day, store = grown(40)
    for i in range(35, 40):  # 5 of 41 entries, 500 of 4000 bytes
        day.delete("mail/f%02d" % i)
    out = day.check(MIDNIGHT + 5 * HOUR, store=store)
    assert out.exitcode == 1, out.output
    assert "source lost 12% of its bytes since" in out.status_line, out.status_line
    assert "(most in mail/)" in out.status_line
    day, store = grown(40)
    for i in range(40):
        day.edit("new/g%02d" % i, MIDNIGHT - 5 * DAY)
    day.sync(MIDNIGHT + 4 * HOUR)
    assert day.check(MIDNIGHT + 5 * HOUR, store=store).exitcode == 0


def test_accept_changes_takes_the_new_tree_and_clears_the_hold():
    day, store = grown()
    day.delete("docs/")
    out = day.check(MIDNIGHT + 5 * HOUR, store=store)
    assert out.exitcode == 2 and "source lost 66% of its bytes" in out.status_line
    out = day.check(MIDNIGHT + 5 * HOUR + 60, "--accept-changes", store=store)
    assert out.exitcode == 0, out.output
    assert "changes accepted" in out.output
    assert store.data["alarms"] == []
    day.sync(MIDNIGHT + 6 * HOUR)  # the copies follow: that was accepted too? no: their own
    out = day.check(MIDNIGHT + 6 * HOUR + 60, store=store)
    assert out.exitcode == 2 and "data2 lost 66% of its bytes" in out.status_line
    out = day.check(MIDNIGHT + 6 * HOUR + 120, "--accept-changes", store=store)
    assert out.exitcode == 0, out.output


def test_a_wave_of_rewritten_files_is_churn():
    day, store = grown(30)
    for i in range(10):  # a third rewritten
        day.edit("docs/f%02d" % i, MIDNIGHT + 4 * HOUR)
    out = day.check(MIDNIGHT + 5 * HOUR, store=store)
    assert out.exitcode == 1, out.output
    assert "33%% of the source's files changed since %s (10 of 30): a wave of rewritten " \
           "files?" % three_copies.clock(MIDNIGHT + 3 * HOUR + 600, MIDNIGHT + 5 * HOUR) \
           in out.status_line, out.status_line
    assert "churn=33.3%;30;60;0;100" in out.status_line
    day, store = grown(30)
    for i in range(20):
        day.edit("docs/f%02d" % i, MIDNIGHT + 4 * HOUR)
    out = day.check(MIDNIGHT + 5 * HOUR, "--churn-critical", "50%", store=store)
    assert out.exitcode == 2, out.output


def canaried(survey_canaries):
    """A survey function whose canaries answer as given."""
    day, store = grown()
    inner = day.survey

    def survey(*args, **kw):
        found = inner(*args, **kw)
        found.canaries = survey_canaries()
        return found
    return day, store, survey


def test_canaries():
    good = {"docs/.canary": {"source": "a" * 64, "data2": "a" * 64, "office": "a" * 64,
                             "offsite": "a" * 64}}
    answer = [good]
    day, store, survey = canaried(lambda: json.loads(json.dumps(answer[0])))
    day.now = MIDNIGHT + 4 * HOUR
    out = run(survey, "--canary", "docs/.canary", store=store)
    assert out.exitcode == 0, out.output
    assert store.data["canaries"] == {"docs/.canary": "a" * 64}
    answer[0] = dict(good, **{"docs/.canary": dict(good["docs/.canary"], office=None)})
    out = run(survey, "--canary", "docs/.canary", store=store)
    assert out.exitcode == 2, out.output
    assert "canary docs/.canary is missing in office" in out.status_line
    answer[0] = {"docs/.canary": {k: "b" * 64 for k in good["docs/.canary"]}}
    day.now = MIDNIGHT + 5 * HOUR
    out = run(survey, "--canary", "docs/.canary", store=store)
    assert out.exitcode == 2, out.output
    assert "canary docs/.canary changed since" in out.status_line
    answer[0] = {"docs/.canary": {"source": None}}
    out = run(survey, "--canary", "docs/.canary", store=store)
    assert "canary docs/.canary is missing in the source" in out.status_line


# -- the state file through the check --------------------------------------------------------

def test_the_state_file_default_name_is_per_source_and_copies():
    copies = [("a", manifest.Location("/a"))]
    one = three_copies.default_state_file("/data1", copies, {"XDG_STATE_HOME": "/s"}, 0)
    two = three_copies.default_state_file("/data9", copies, {"XDG_STATE_HOME": "/s"}, 0)
    assert one != two and one.startswith("/s/osop-checks/three_copies_") and \
        one.endswith(".json")


@pytest.mark.parametrize("data, words", [
    ({"version": 7}, "version 7"),
    ({"version": 1, "source": {"tree": {"time": "x"}}, "copies": {}, "canaries": {},
      "alarms": []}, "source: no counts"),
    ({"version": 1, "source": {}, "copies": {"a": {"verified": {"time": 1}}},
      "canaries": {}, "alarms": []}, "copy a: verification"),
])
def test_a_state_of_the_wrong_shape_is_not_trusted(data, words):
    out = run(survey_of(fine(2), fine(3), fine(4)), store=Store(data))
    assert out.exitcode == 3, out.output
    assert "is not a state of check_three_copies (%s" % words in out.status_line
    assert "--accept-changes" in out.status_line
    out = run(survey_of(fine(2), fine(3), fine(4)), "--accept-changes", store=Store(data))
    assert out.exitcode == 0, out.output


@pytest.mark.parametrize("argv, words", [
    (["--sleeping", "nas"], "--sleeping nas names no --copy (copies: data2, office, offsite)"),
    (["--canary", "/etc/passwd"], "must be a file inside the source"),
    (["--canary", "docs/../../x"], "must be a file inside the source"),
    (["--shrink-warning", "lots"], "is not a percentage"),
    (["--churn-critical", "5GiB"], "is not a percentage"),
    (["--shrink-critical", "120%"], "above the maximum"),
    (["--shrink-warning", "30%"], "--shrink-warning 30% is above --shrink-critical 25%"),
    (["--state-file", "state.json"], "is not an absolute path"),
])
def test_bad_new_options_are_one_line_and_exit_3(argv, words):
    out = run(survey_of(fine(2), fine(3), fine(4)), *argv)
    assert out.exitcode == 3, out.output
    assert out.output.count("\n") == 1 and words in out.status_line, out.output


def test_a_sampled_sha256_mismatch_is_critical_without_stamp_or_settle():
    bad = tally(differing=1, examples=[("differing", "a (content differs (sha256))")])
    bad.content = 1
    out = run(survey_of(fine(2), (manifest.Probe("ok", 3), bad), fine(4)))
    assert out.exitcode == 2, out.output
    assert "office differs in 1 entry (e.g. a (content differs (sha256)))" in out.status_line


def test_no_state_is_written_when_the_source_cannot_be_surveyed():
    import nagiosplugin

    def survey(*args, **kw):
        raise nagiosplugin.CheckError("the source /data1 does not exist")
    store = Store()
    out = run(survey, store=store)
    assert out.exitcode == 3 and store.saved == []
    out = run(survey_of(fine(2), fine(3), fine(4)), store=store)
    assert out.exitcode == 0 and len(store.saved) == 1


def test_a_smaller_loss_on_top_does_not_soften_a_held_alarm():
    day, store = grown(40)
    day.delete("docs/")  # 20 of 41 entries: CRITICAL
    assert day.check(MIDNIGHT + 5 * HOUR, store=store).exitcode == 2
    for i in range(37, 40):  # 3 of the 21 left: WARNING on its own
        day.delete("mail/f%02d" % i)
    out = day.check(MIDNIGHT + 6 * HOUR, store=store)
    assert out.exitcode == 2, out.output
    assert "source lost 50% of its bytes" in out.status_line, out.status_line
    assert [a["seen"] for a in store.data["alarms"] if a["key"] == "shrink source"] == [
        MIDNIGHT + 6 * HOUR]


def test_churn_counts_a_window_not_only_since_the_last_run():
    """A wave spread over hourly runs adds up over --churn-window, but never reaches back
    before the baseline (the first run or the last --accept-changes)."""
    now = 1_000_000.0
    previous = {"baseline": now - 10 * HOUR, "source": {"tree": {"time": now - HOUR}}}
    assert three_copies.churn_start(previous, DAY, now) == now - 10 * HOUR
    previous["baseline"] = now - 3 * DAY
    assert three_copies.churn_start(previous, DAY, now) == now - DAY
    previous["source"]["tree"]["time"] = now - 2 * DAY  # the last run is longer ago
    assert three_copies.churn_start(previous, DAY, now) == now - 2 * DAY
    assert three_copies.churn_start(None, DAY, now) is None  # a first run judges no churn
    del previous["baseline"]  # a state written before baselines were kept
    assert three_copies.churn_start(previous, DAY, now) == now - 2 * DAY


def test_one_clock_for_the_churn_window_and_the_survey(monkeypatch):
    """build_check reads the time once: the survey is taken at the same ``now`` that the
    churn window was counted back from (a clock read twice could place the window's start
    after changes the survey counts)."""
    ticks = iter(range(0, 1000, 100))
    monkeypatch.setattr(three_copies.time, "time", lambda: NOW + next(ticks))
    previous = {"version": 1, "run": NOW - 2 * DAY, "baseline": NOW - 9 * DAY,
                "source": {"tree": {"time": NOW - 2 * DAY, "entries": 1, "files": 1,
                                    "bytes": 1, "top": {}, "other": [0, 0]}},
                "copies": {}, "canaries": {}, "alarms": []}
    asked = {}

    def survey(*args, **kw):
        asked.update(kw)
        return survey_of(fine(2), fine(3), fine(4))(*args, **kw)

    out = run(survey, "--churn-window", "1h", store=Store(previous))
    assert out.exitcode == 0, out.output
    assert asked["now"] is not None
    assert asked["since_run"] == three_copies.churn_start(previous, HOUR, asked["now"])


# -- judge_copy and judge_survey on plain data (no parser, no runtime, no files) ------------

def judged_survey(*copies, tree=None, canaries=None):
    """A Survey of copies given as (name, location text, probe, tally or unreachable)."""
    states = []
    for name, where, probe, found in copies:
        state = three_copies.CopyState(name, manifest.parse_location(where), probe)
        if isinstance(found, str):
            state.unreachable = found
        else:
            state.tally = found
        states.append(state)
    return three_copies.Survey(manifest.Location("/data1"), manifest.Probe("ok", 1), states,
                               NOW, tree=tree, canaries=canaries or {})


def age_limits(**kw):
    duration = cli.range_type(units.DURATION)
    return three_copies.Limits((duration("26h"), duration("50h")), **kw)


def test_judge_copy_a_fresh_copy_is_ok_and_a_stale_stamp_critical_with_the_limit():
    survey = judged_survey(("usb", "/mnt/usb", manifest.Probe("ok", 2, NOW - 3600), tally()),
                           ("nas", "nas:/srv", manifest.Probe("ok", 3, NOW - 3 * DAY),
                            tally()))
    limits = age_limits(stamp=".last-sync")
    usb, nas = (three_copies.judge_copy(c, survey, limits) for c in survey.copies)
    assert (usb.state, usb.reasons, usb.age, usb.age_from, usb.verified_age) == (
        Ok, [], 3600, "stamp", 0.0)
    assert usb.words == "ok, 1h behind"
    assert (nas.state, nas.reasons) == (Critical, ["nas is 3d old (limit 50h)"])
    assert nas.words == "CRITICAL: nas is 3d old (limit 50h)"


def test_judge_copy_a_sleeping_copy_by_its_last_verification_without_touching_it():
    import copy as copying
    survey = judged_survey(("box", "vault:/srv", None, "timeout"))
    box = survey.copies[0]
    limits = age_limits(sleeping=frozenset({"box"}))
    record = {"time": NOW - 5 * HOUR, "state": 0, "verdict": "in sync"}
    kept = (copying.deepcopy(box), copying.deepcopy(record))
    fine_ = three_copies.judge_copy(box, survey, limits, record)
    assert (fine_.state, fine_.reasons, fine_.verified_age) == (Ok, [], 5 * HOUR)
    assert fine_.asleep == "box asleep, last verified in sync 5h ago"
    assert (box, record) == kept  # pure: what it is given stays as it was
    late = three_copies.judge_copy(box, survey, limits, dict(record, time=NOW - 27 * HOUR))
    assert late.state == Warn
    assert late.reasons == ["box not verified for 1d 3h: did the box wake up?"]
    bad = three_copies.judge_copy(box, survey, limits, {
        "time": NOW - 2 * HOUR, "state": 2, "verdict": "CRITICAL: box lacks 3 entries"})
    assert bad.state == Critical
    assert bad.reasons == ["box asleep, last verified CRITICAL 2h ago: box lacks 3 entries"]
    never = three_copies.judge_copy(box, survey, limits, None)
    assert (never.state, never.reasons) == (
        Critical, ["box asleep and never verified yet (unreachable: timeout)"])
    awake = three_copies.judge_copy(box, survey, age_limits(), record)  # not --sleeping
    assert (awake.state, awake.reasons, awake.asleep, awake.verified_age) == (
        Critical, ["box is unreachable: timeout"], "", 5 * HOUR)


def test_judge_copy_on_the_source_filesystem_is_not_ok():
    survey = judged_survey(("same", "/data1/../copy", manifest.Probe("ok", 1), tally()))
    same = three_copies.judge_copy(survey.copies[0], survey, age_limits())
    assert (same.state, same.on_source) == (Critical, True)
    assert same.reasons == ["same is on the same filesystem as the source"]


def test_judge_survey_the_rules_the_findings_and_the_perfdata():
    survey = judged_survey(("data2", "/data2", manifest.Probe("ok", 2), tally()),
                           ("office", "office:/srv", manifest.Probe("ok", 3),
                            tally(missing=2, examples=[("missing", "a/b")])),
                           ("offsite", "vault:/srv", None, "timeout"))
    zero = cli.range_type(units.COUNT)("0")
    limits = age_limits(missing=(None, zero), offsite=frozenset({"offsite"}), min_copies=2)
    verdict = three_copies.judge_survey(survey, limits)
    assert verdict.state == Critical
    assert verdict.findings == [
        (Critical, "at least 2 copies needed"), (Critical, "no off-site copy ok"),
        (Warn, "office lacks 2 entries (e.g. a/b)"),
        (Warn, "offsite is unreachable: timeout")]
    assert verdict.summary == (
        "1 of 3 copies ok (at least 2 needed): office lacks 2 entries (e.g. a/b), offsite is "
        "unreachable: timeout, no off-site copy ok")
    assert sorted(str(p) for p in verdict.perfdata) == [
        "copies_ok=1;;2:;0;3", "data2_age=0s;93600;180000;0", "data2_differing=0;;;0",
        "data2_missing=0;;0;0", "data2_verified_age=0s;93600;180000;0",
        "office_age=0s;93600;180000;0", "office_differing=0;;;0", "office_missing=2;;0;0",
        "office_verified_age=0s;93600;180000;0"]
    assert verdict.long[1] == "office: CRITICAL, in sync, missing 2, differing 0, extra 0, " \
                              "equal 100, office:/srv"
    assert verdict.save is None  # nothing to write without a save


def test_judge_survey_one_bad_copy_beyond_the_rules_is_a_warning():
    survey = judged_survey(("a", "/a", manifest.Probe("ok", 2), tally()),
                           ("b", "b:/srv", manifest.Probe("ok", 3), tally()),
                           ("c", "c:/srv", None, "connection refused"))
    verdict = three_copies.judge_survey(survey, age_limits(min_copies=2))
    assert (verdict.state, verdict.findings) == (
        Warn, [(Warn, "c is unreachable: connection refused")])
    assert verdict.summary == "2 of 3 copies ok: c is unreachable: connection refused"


def test_judge_survey_saves_the_state_it_computed_and_leaves_the_last_one_alone():
    import copy as copying
    survey = judged_survey(("a", "/a", manifest.Probe("ok", 2), tally()),
                           ("b", "b:/srv", None, "timeout"))
    previous = {"version": 1, "run": NOW - HOUR, "baseline": NOW - DAY,
                "source": {"location": "/data1", "tree": None},
                "copies": {"b": {"verified": {"time": NOW - HOUR, "state": 0,
                                              "verdict": "in sync"}}},
                "canaries": {}, "alarms": [{"key": "churn", "state": 1, "text": "a wave",
                                            "since": NOW - 2 * HOUR,
                                            "seen": NOW - 2 * HOUR}]}
    kept = copying.deepcopy(previous)
    saved = []
    verdict = three_copies.judge_survey(survey, age_limits(
        min_copies=1, sleeping=frozenset({"b"})), previous, saved.append)
    assert previous == kept and saved == []  # written only when runtime calls save
    assert verdict.state == Warn  # the churn alarm is still held
    assert (Warn, "a wave (alarm held since %s)" % three_copies.clock(NOW - 2 * HOUR, NOW)) \
        in verdict.findings
    verdict.save()
    state, = saved
    assert state["baseline"] == NOW - DAY and state["run"] == NOW
    assert state["copies"]["a"]["verified"] == {"time": NOW, "state": 0, "verdict": "in sync"}
    assert state["copies"]["b"]["verified"] == previous["copies"]["b"]["verified"]
    assert state["alarms"] == previous["alarms"]
    again = three_copies.judge_survey(survey, age_limits(
        min_copies=1, sleeping=frozenset({"b"})), previous)
    assert (again.state, again.summary, again.long) == (
        verdict.state, verdict.summary, verdict.long)  # the same data, the same judgement
