"""A day (a week, in fact) in the veterinary practice, with the real check_three_copies: the
phases of lab/practice.py in order, a sleeping box as the check sees it, a slow wave of
rewritten files."""
import re
import time

import pytest

from lab.peers import need, run_plugin
from lab.peers.copies import tmpfs
from lab.practice import CANARY, PHASES, Day, _write

pytestmark = pytest.mark.peer


def test_a_day_in_the_practice(practice, tmp_path):
    """The whole day in order through the real executable: OK all day while the box sleeps,
    WARNING and CRITICAL when it never wakes, CRITICAL on a loss that spreads, on a wave of
    rewritten files, on a changed or missing canary."""
    need("faketime")
    with tmpfs() as data2:
        day = Day(practice, str(tmp_path), data2)
        for title, happen, hours, extra, code, phrases in PHASES:
            happen(day)
            outcome = day.check(hours, *extra)
            said = "%s: %s\n%s (exit %d)" % (day.clock(hours), title, outcome.output,
                                              outcome.exitcode)
            assert outcome.exitcode == code, said
            for phrase in phrases:
                assert re.search(phrase, outcome.output), said


def test_a_sleeping_box_as_the_check_sees_it(practice, tmp_path):
    """The box with its link down, as the check sees it over the real network: where the
    packets vanish (a router that keeps the box's address) ssh times out, and the check still
    ends within its --timeout; where the neighbour lookup fails it is "No route to host".
    Never verified yet, the sleeping box is CRITICAL saying so; once verified awake, asleep
    it is OK with the age of that verification."""
    need("faketime")
    with tmpfs() as data2:
        day = Day(practice, str(tmp_path), data2)
        assert day.sync(0) == {"data2": None, "office": None, "offsite": None}
        box = day.hosts["offsite"]
        box.sleep(silent=True)
        started = time.monotonic()
        outcome = run_plugin("check_three_copies", day.argv("-t", "4"), wrap=day.wrap(0.1))
        elapsed = time.monotonic() - started
        assert outcome.exitcode == 2, outcome.output
        assert re.search(r"offsite.*(never|not yet) verified", outcome.output), outcome.output
        assert "timeout" in outcome.output, outcome.output
        assert elapsed < 4 + 5, elapsed  # -t 4 (not ssh's own 10 s), and a loaded machine
        box.wake()
        outcome = day.check(0.2)
        assert outcome.exitcode == 0, outcome.output
        box.sleep()
        outcome = day.check(2.3)
        assert outcome.exitcode == 0, outcome.output
        assert re.search(r"offsite asleep, last verified in sync 2h", outcome.output), \
            outcome.output
        assert "unreachable" in outcome.output, outcome.output


def test_a_slow_wave_of_rewritten_files(practice, tmp_path):
    """Ransomware that rewrites a third of the files over four hours, between hourly runs of
    the check, each run seeing under 10% changed: the check should still notice the wave."""
    need("faketime")
    with tmpfs() as data2:
        day = Day(practice, str(tmp_path), data2)
        assert day.sync(0) == {"data2": None, "office": None, "offsite": None}
        assert day.check(0.1).exitcode == 0
        done = set()
        states = []
        for step in range(4):
            victims = [f for f in day.files() if not f.endswith(CANARY) and f not in done]
            for path in victims[:5]:  # 5 of 60 files an hour: 8% a run, 33% in four hours
                with open(path, "rb") as handle:
                    data = handle.read()
                _write(path, bytes(b ^ 0x5A for b in data), day.at(1 + step))
                done.add(path)
            day.sync(1.1 + step)
            states.append(day.check(1.2 + step).exitcode)
        assert len(done) >= 20
        assert max(states) == 2, states
