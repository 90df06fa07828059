"""`make demo` for the veterinary practice: a day (a week, in fact) of its check_three_copies,
phase by phase, on the practice's server, office PC and off-site box as network namespaces
with real sshds, the copies made by the practice's sync job, the clock shifted by libfaketime.
The phases are tests/integration/test_practice_day.py's, which asserts what each one says."""
import functools
import os
import shutil
import tempfile


def scenarios(stack):
    from lab.practice import PHASES, Day
    from lab.peers.copies import tmpfs
    from lab.peers.netns import Practice

    if os.geteuid() != 0:
        raise RuntimeError("needs root (network namespaces, sshd, tmpfs)")
    if not shutil.which("faketime"):
        raise RuntimeError("needs faketime (.ci/install-system-packages installs it)")
    practice = stack.enter_context(Practice())
    data2 = stack.enter_context(tmpfs())
    base = tempfile.mkdtemp(prefix="osop-prac-demo-")
    stack.callback(shutil.rmtree, base, True)
    day = Day(practice, base, data2)

    def happen(step):
        try:
            step(day)
        except Exception as exc:  # the demo goes on; the test says what went wrong
            print("(that phase did not happen as planned: %s)" % exc)

    return [("the practice, %s: %s" % (day.clock(hours), title),
             ["check_three_copies"] + day.argv(*extra),
             functools.partial(happen, step), day.wrap(hours))
            for title, step, hours, extra, _code, _phrases in PHASES]
