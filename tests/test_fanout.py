"""osop_checks/fanout.py: independent calls in threads."""
import threading

from osop_checks import fanout


def test_run_all_keeps_order_and_hands_exceptions_back():
    def boom():
        raise ValueError("no")

    answers = fanout.run_all([lambda: 1, boom, lambda: 3])
    assert [a[0] for a in answers] == [1, None, 3]
    assert isinstance(answers[1][1], ValueError)


def test_run_all_with_a_limit_does_not_wait_for_a_stuck_call():
    stuck = threading.Event()
    answers = fanout.run_all([lambda: "quick", stuck.wait], limit=0.2)
    stuck.set()
    assert answers == [("quick", None), (None, None)]
