"""The one time budget of a plugin run, shared by every subprocess and socket.

The runner starts it from ``--timeout``; a step that waits on a peer asks ``remaining()`` for
its own limit, so a child process or socket always gives up before the whole check is killed.
"""
import time

_deadline = None
# Time kept back so that, when a step gives up, the check can still print its own verdict.
MARGIN = 0.5


class Timeout(Exception):
    """The time budget of the run is used up."""


def start(seconds):
    global _deadline
    _deadline = time.monotonic() + seconds if seconds else None


def remaining(limit=None):
    """Seconds a step may still take: ``limit`` capped by the run's budget (minus a margin).

    Raises Timeout when nothing is left, so a step never starts without time to finish.
    """
    if _deadline is None:
        return limit
    left = _deadline - time.monotonic() - MARGIN
    if left <= 0:
        raise Timeout("no time left of the check's --timeout")
    return left if limit is None else min(limit, left)
