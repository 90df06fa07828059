"""lab.peers.faked_clock, the one way the tests and `make demo` shift a check's clock."""
import contextlib
import os
import subprocess
import time

from lab.peers import faked_clock, need


def test_a_command_runs_under_the_faked_clock_beside_what_killed_ones_left_in_dev_shm():
    """A faketime run names a semaphore and a shared-memory segment in /dev/shm by its pid and
    leaves both behind when it is killed (a --timeout, a peer's stop). Once pids wrapped around
    within a run of the suite, the faketime wrapper given such a pid failed at once ("sem_open:
    File exists") and the check it should have run never ran; libfaketime preloaded goes on."""
    need("faketime")
    probe = subprocess.Popen(["true"])
    probe.wait()
    left = []  # what killed runs would have left, for the next 200 pids
    try:
        for pid in range(probe.pid + 1, probe.pid + 201):
            for name in ("sem.faketime_sem_%d" % pid, "faketime_shm_%d" % pid):
                with contextlib.suppress(FileExistsError):
                    with open(os.path.join("/dev/shm", name), "x"):
                        left.append(os.path.join("/dev/shm", name))
        ran = subprocess.run(faked_clock("+2h") + ["date", "+%s"], capture_output=True,
                             text=True)
    finally:
        for path in left:
            os.unlink(path)
    assert ran.returncode == 0, ran.stderr
    assert abs(int(ran.stdout) - (time.time() + 7200)) <= 5, ran.stdout


def test_the_faked_clock_starts_at_a_moment_or_an_offset_and_runs_on():
    need("faketime")
    moment = 1796094000  # 2026-12-01 03:00:00 UTC
    shown = subprocess.run(faked_clock(moment) + ["sh", "-c", "date +%s; sh -c 'date +%s'"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert [abs(int(seconds) - moment) <= 5 for seconds in shown] == [True, True], shown
    later = subprocess.run(faked_clock("+2h") + ["date", "+%s"], capture_output=True, text=True,
                           check=True).stdout
    assert abs(int(later) - (time.time() + 7200)) <= 5, later
