"""proc.run / proc.stream: argv only, LC_ALL=C, bounded, the whole process group killed."""
import os
import time

import pytest

from osop_checks import deadline, proc


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
