"""The one way a check runs a command: an argv list, never a shell, always bounded in time.

Every command runs with LC_ALL=C (parsers read English, C-sorted output) in a session of its
own, so that when it runs out of time the whole process group is killed: an ssh or apt-get
child never outlives the check.
"""
import contextlib
import logging
import os
import signal

import nagiosplugin

from osop_checks import deadline

log = logging.getLogger("nagiosplugin")


class CommandError(nagiosplugin.CheckError):
    """A command could not run, ran out of time or failed; the message names it."""


class Completed:
    """What a finished command left: its argv, exit code, stdout and stderr as text."""

    def __init__(self, argv, returncode, stdout, stderr):
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


def environment(extra=None):
    env = dict(os.environ)
    env.update({"LC_ALL": "C", "LANG": "C", "LANGUAGE": ""})
    if extra:
        env.update(extra)
    return env


def _kill_group(process):
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _spawn(argv, stdin, env):
    import subprocess

    argv = [str(a) for a in argv]
    log.info("running: %s", " ".join(argv))
    try:
        return subprocess.Popen(
            argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=environment(env), start_new_session=True)
    except FileNotFoundError:
        raise CommandError("command not found: %s" % argv[0]) from None
    except PermissionError:
        raise CommandError("permission denied running %s" % argv[0]) from None
    except OSError as exc:
        raise CommandError("cannot run %s: %s" % (argv[0], exc.strerror or exc)) from None


def _seconds(limit):
    """'10 s', '2.5 s', or '0.4 s' when less than a second was left of the check's budget."""
    if limit >= 10:
        return "%.0f s" % limit
    return "%s s" % ("%.1f" % max(limit, 0.1)).replace(".0", "")


def _last_line(text):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def run(argv, timeout=None, input=None, env=None, ok_codes=(0,)):
    """Run ``argv`` and return a Completed; raise CommandError on failure or timeout.

    ``timeout`` is capped by what is left of the check's ``--timeout``. An exit code outside
    ``ok_codes`` (None: any code) raises CommandError with the command's last stderr line.
    """
    # subprocess is imported by the first command, not with this module: a run answered from
    # a cache (check_os_upgrades' repeat run) starts no command and skips its import.
    import subprocess

    limit = deadline.remaining(timeout)
    process = _spawn(argv, subprocess.PIPE if input is not None else subprocess.DEVNULL, env)
    name = os.path.basename(str(argv[0]))
    try:
        stdout, stderr = process.communicate(
            input.encode() if isinstance(input, str) else input, timeout=limit)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        process.communicate()
        raise CommandError("%s did not finish within %s" % (name, _seconds(limit))) from None
    except BaseException:
        # The check's own alarm or an interrupt: take the whole group down with us.
        _kill_group(process)
        process.communicate()
        raise
    result = Completed(argv, process.returncode,
                       stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace"))
    log.debug("%s exited %d, %d bytes of output", name, result.returncode, len(stdout))
    if ok_codes is not None and result.returncode not in ok_codes:
        raise CommandError("%s failed (exit %d): %s" % (
            name, result.returncode, _last_line(result.stderr) or _last_line(result.stdout)))
    return result


@contextlib.contextmanager
def stream(argv, timeout=None, env=None, ok_codes=(0,)):
    """Run ``argv`` and yield its stdout as an iterator of text lines, for outputs too large
    to hold (a million-file listing). The process group is killed when the block is left
    early; on a normal end the exit code is checked as in ``run``. The time limit is enforced
    by killing the group from a timer, since reading a pipe line by line cannot time out."""
    import subprocess
    import threading

    limit = deadline.remaining(timeout)
    process = _spawn(argv, subprocess.DEVNULL, env)
    name = os.path.basename(str(argv[0]))
    expired = threading.Event()

    def expire():
        expired.set()
        _kill_group(process)

    timer = threading.Timer(limit, expire) if limit else None
    if timer:
        timer.daemon = True
        timer.start()
    stderr_chunks = []
    # stderr is drained in the background so a chatty command cannot block on a full pipe.
    drain = threading.Thread(target=lambda: stderr_chunks.append(process.stderr.read()),
                             daemon=True)
    drain.start()
    try:
        yield (line.decode("utf-8", "surrogateescape") for line in process.stdout)
        process.wait()
    except BaseException:
        _kill_group(process)
        process.wait()
        raise
    finally:
        if timer:
            timer.cancel()
        drain.join(1)
        process.stdout.close()
    if expired.is_set():
        raise CommandError("%s did not finish within %s" % (name, _seconds(limit)))
    if ok_codes is not None and process.returncode not in ok_codes:
        stderr = b"".join(stderr_chunks).decode("utf-8", "replace")
        raise CommandError("%s failed (exit %d): %s" % (name, process.returncode,
                                                       _last_line(stderr)))
