"""check_three_copies logic: locations, ssh argv and failures in words, the streaming
merge of manifests, and the judgement on constructed surveys (no I/O)."""
import os
import subprocess
import sys
import tracemalloc

import pytest

from osop_checks.checks import three_copies
from osop_checks.sources import manifest, ssh
from tests.peers import ROOT, run_inprocess

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "ssh")
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
    with open(os.path.join(FIXTURES, fixture + ".txt")) as handle:
        assert ssh.classify(handle.read()) == kind


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


def test_changes_within_the_settle_window_do_not_count():
    source = source_of("old", ("fresh", "f", 5, NOW - 60, NOW - 60),
                       ("moved-in", "f", 5, NOW - 9 * DAY, NOW - 120))
    [tally] = manifest.compare(source, [copy_of("old")], now=NOW, settle=3600)
    assert tally.missing == 0 and tally.settling == 2 and tally.oldest_change is None
    [tally] = manifest.compare(source, [copy_of("old")], now=NOW, settle=0)
    assert tally.missing == 2 and tally.oldest_change == NOW - 120


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
    with pytest.raises(Exception):
        manifest.parse_probe("Welcome to vault!")


def test_sha256sum_output():
    digest = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    out = "%s  a\0%s  n\nl\0%s *b\0" % (digest, digest, digest)
    assert manifest.parse_hashes(out) == {"a": digest, "n\nl": digest, "b": digest}


# -- the check on constructed surveys -------------------------------------------------------

def survey_of(*copies, source_device=1, now=NOW, sampled=0):
    """A fake survey: copies are (name, location, probe or unreachable, tally)."""
    def survey(source, copy_args, options, stamp=None, settle=3600, sample_size=0):
        states = []
        for (name, location), spec in zip(copy_args, copies):
            state = three_copies.CopyState(name, location)
            if isinstance(spec, str):
                state.unreachable = spec
            else:
                state.probe, state.tally = spec
            states.append(state)
        return three_copies.Survey(source, manifest.Probe("ok", source_device), states, now,
                                   sampled)
    return survey


def tally(missing=0, differing=0, extra=0, oldest=None, examples=()):
    t = manifest.Tally(equal=100, missing=missing, differing=differing, extra=extra,
                       oldest_change=oldest)
    for what, path in examples:
        t.examples[what].append(path)
    return t


def fine(device, stamp_age=None, **kw):
    stamp = None if stamp_age is None else NOW - stamp_age
    return (manifest.Probe("ok", device, stamp), tally(**kw))


def run(survey, *extra):
    args = ["--source", "/data1", "--copy", "data2=/data2",
            "--copy", "office=backup@office:/srv/copy",
            "--copy", "offsite=backup@vault:/srv/data1", "--offsite", "offsite"] + list(extra)
    original = three_copies.build_check

    def build(parsed):
        return original(parsed, survey=survey)

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
    assert "office_missing=0;;0;0" in out.status_line


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
    assert "3 of 3 copies ok: data2 is 1d 3h old (warning 26h)" in out.status_line


def test_missing_and_differing_files_make_a_copy_not_ok():
    out = run(survey_of(fine(2), fine(3, missing=2, differing=1,
                                      examples=[("missing", "a/b"), ("differing", "c")]),
                        fine(4)))
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
