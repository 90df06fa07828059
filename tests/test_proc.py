"""proc.run / proc.stream: argv only, LC_ALL=C, bounded, the whole process group killed."""
import os
import time

import pytest

from osop_checks import deadline, proc, text


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie waiting for its reaper counts as gone
    with open("/proc/%d/stat" % pid) as handle:
        return handle.read().split(") ", 1)[1][0] != "Z"


def test_run_returns_output_in_the_c_locale():
    result = proc.run(["sh", "-c", 'echo "$LC_ALL"; echo err >&2'])
    assert result.stdout == "C\n" and result.stderr == "err\n" and result.returncode == 0


def test_failures_name_the_command():
    with pytest.raises(proc.CommandError, match="command not found: no-such-command-here"):
        proc.run(["no-such-command-here"])
    with pytest.raises(proc.CommandError, match=r"sh failed \(exit 4\): boom"):
        proc.run(["sh", "-c", "echo boom >&2; exit 4"])
    assert proc.run(["sh", "-c", "exit 4"], ok_codes=None).returncode == 4


def test_a_failure_carries_its_reason_and_exit_code_as_fields(tmp_path):
    with pytest.raises(proc.CommandError) as missing:
        proc.run(["no-such-command-here"])
    assert (missing.value.reason, missing.value.command, missing.value.returncode) == \
        (proc.NOT_FOUND, "no-such-command-here", None)
    with pytest.raises(proc.CommandError) as failed:
        proc.run(["sh", "-c", "echo boom >&2; exit 4"])
    assert (failed.value.reason, failed.value.returncode, failed.value.detail) == \
        (proc.FAILED, 4, "boom")
    with pytest.raises(proc.CommandError) as slow:
        proc.run(["sleep", "5"], timeout=0.2)
    assert (slow.value.reason, slow.value.command) == (proc.TIMEOUT, "sleep")
    (tmp_path / "script").write_text("#!/bin/sh\n")
    with pytest.raises(proc.CommandError) as denied:
        proc.run([str(tmp_path / "script")])
    assert denied.value.reason == proc.DENIED


def test_stream_keeps_the_exit_code():
    with pytest.raises(proc.CommandError) as failed:
        with proc.stream(["sh", "-c", "echo out; echo why >&2; exit 7"]) as lines:
            assert list(lines) == ["out\n"]
    assert (failed.value.reason, failed.value.returncode, failed.value.detail) == \
        (proc.FAILED, 7, "why")
    assert str(failed.value) == "sh failed (exit 7): why"


def test_a_missing_command_names_the_debian_package_that_gives_it(tmp_path):
    empty = {"PATH": str(tmp_path)}  # a PATH without ssh: the real exec fails
    with pytest.raises(proc.CommandError) as missing:
        proc.run(["ssh", "-V"], env=empty)
    assert str(missing.value) == "command not found: ssh (install openssh-client)"
    with pytest.raises(proc.CommandError) as missing:
        with proc.stream(["sha256sum"], env=empty):
            pass
    assert str(missing.value) == "command not found: sha256sum (install coreutils)"
    # an explicit path, or a command we know no package for: no guess
    with pytest.raises(proc.CommandError, match=r"^command not found: /nonexistent/ssh$"):
        proc.run(["/nonexistent/ssh"])


WORDS = ["sh", "-c", "a | b || c", "tab\there", "new\nline", "it's", 'say "hi"', "two  spaces",
         " lead", "$HOME `x` \\n", "", "*", "caf\u00e9 \U0001f600 \u3000", "bad\udcff byte",
         "%C@\\t%y\\0"]


def test_a_logged_command_line_pastes_into_bash_as_the_same_argv():
    """What -vv shows after the output's own cleaning (no '|', whitespace folded) is a line
    bash splits back into the very argv that ran; bash itself is the judge."""
    line = text.oneline(text.shell_words(WORDS), limit=4000)
    assert "|" not in line and line == text.shell_words(WORDS)
    import subprocess

    pasted = subprocess.run(["bash", "-c", "printf '%s\\0' " + line], capture_output=True,
                            check=True, env=proc.environment()).stdout
    assert pasted.split(b"\0")[:-1] == [w.encode("utf-8", "surrogateescape") for w in WORDS]
    assert text.shell_words(["ls", "-l", "/srv/a b"]) == "ls -l '/srv/a b'"


def test_timeout_kills_the_whole_process_group(tmp_path):
    pidfile = tmp_path / "grandchild"
    start = time.monotonic()
    with pytest.raises(proc.CommandError, match="did not finish within 1 s"):
        proc.run(["sh", "-c", "sleep 60 & echo $! > %s; wait" % pidfile], timeout=1)
    assert time.monotonic() - start < 3
    grandchild = int(pidfile.read_text())
    time.sleep(0.2)
    assert not alive(grandchild)


def test_stream_yields_lines_and_is_bounded(tmp_path):
    with proc.stream(["seq", "1", "5"]) as lines:
        assert [line.strip() for line in lines] == ["1", "2", "3", "4", "5"]
    start = time.monotonic()
    with pytest.raises(proc.CommandError, match="did not finish"):
        with proc.stream(["sh", "-c", "echo one; sleep 60"], timeout=1) as lines:
            list(lines)
    assert time.monotonic() - start < 3


def test_the_run_budget_caps_every_command():
    deadline.start(1.2)
    try:
        start = time.monotonic()
        with pytest.raises(proc.CommandError):
            proc.run(["sleep", "30"], timeout=30)
        assert time.monotonic() - start < 1.5
    finally:
        deadline.start(None)


def test_one_layout_error_for_every_source_that_parses_a_command():
    """apt, dnf and systemctl output a parser does not know: one exception, an UNKNOWN in
    words, the text met shown in one short line."""
    import nagiosplugin

    from osop_checks.sources import apt, dnf, systemd

    plain = proc.LayoutError("apt-get printed no summary line")
    assert isinstance(plain, nagiosplugin.CheckError)
    assert str(plain) == "apt-get printed no summary line" and plain.detail == ""
    long_row = "x  y\n" * 40
    shown = proc.LayoutError("list-units row not understood", long_row)
    assert str(shown) == "list-units row not understood (%s...)" % ("x y " * 20)[:77]
    assert shown.detail == long_row
    for parse, output in ((apt.parse_simulation, "Inst\n"), (dnf.parse_check_update, "a b c d\n"),
                          (systemd.parse_units_table, "NOT THE HEADER\n"),
                          (systemd.parse_state, "dancing\n")):
        with pytest.raises(proc.LayoutError):
            parse(output)
    with pytest.raises(proc.LayoutError, match="^the layout of systemctl output has changed: "
                                               "list-units header is not UNIT LOAD"):
        systemd.parse_units_table("NOT THE HEADER\n")


def test_a_pipeline_judges_every_command_as_pipefail_would():
    """A command that fails early in a pipeline is told, although the last one ends well
    (a plain shell pipeline would report only the last's exit code)."""
    with pytest.raises(proc.CommandError) as failed:
        with proc.stream_pipeline([["sh", "-c", "echo a; echo b; echo why >&2; exit 3"],
                                   ["sort", "-r"]]) as lines:
            assert list(lines) == ["b\n", "a\n"]
    assert (failed.value.command, failed.value.returncode, failed.value.detail) == \
        ("sh", 3, "why")
    with proc.stream_pipeline([["printf", "b\\na\\n"], ["sort"], ["tr", "ab", "xy"]]) as lines:
        assert list(lines) == ["x\n", "y\n"]


def test_a_pipeline_out_of_time_is_killed_whole():
    start = time.monotonic()
    with pytest.raises(proc.CommandError, match="did not finish within 1 s"):
        with proc.stream_pipeline([["sh", "-c", "echo one; sleep 60"], ["cat"]],
                                  timeout=1) as lines:
            list(lines)
    assert time.monotonic() - start < 3
