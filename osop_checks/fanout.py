"""Independent calls at once: each in a thread, while its subprocess or socket waits.

A core module (the sources and the address resolver use it as the checks do), so it imports
nothing of the package.
"""


def run_all(calls, limit=None):
    """Run the callables in threads (their subprocesses and sockets wait meanwhile) and return
    a list of (result, exception) in the order of ``calls``. With ``limit`` (seconds), wait at
    most that long for all of them: a call still running then gives (None, None)."""
    import threading
    import time

    results: "list[tuple[object, BaseException | None]]" = [(None, None)] * len(calls)

    def run(index, call):
        try:
            results[index] = (call(), None)
        except BaseException as exc:  # handed to the caller
            results[index] = (None, exc)

    threads = [threading.Thread(target=run, args=(i, c), daemon=True)
               for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    end = None if limit is None else time.monotonic() + limit
    for thread in threads:
        thread.join(None if end is None else max(0.0, end - time.monotonic()))
    return list(results)
