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

from osop_checks import bounded, deadline, text, units

log = logging.getLogger("nagiosplugin")


# Why a command failed: CommandError.reason is one of these.
NOT_FOUND = "not found"      # no such program (on $PATH, or at the path given)
DENIED = "permission denied"  # the program exists but may not be run
CANNOT_RUN = "cannot run"    # any other reason exec failed
TIMEOUT = "timeout"          # it ran out of time and was killed
FAILED = "failed"            # it ran and exited with a code outside ok_codes
INVALID = "invalid output"   # it ran, but what it wrote is not what its parser expects

# The Debian package that gives a command a check may run: named in "command not found".
# Only for commands looked up on $PATH (an explicit path is the admin's own choice).
PROVIDERS = {
    "ssh": "openssh-client",
    "rsync": "rsync",
    "find": "findutils",
    "sort": "coreutils",
    "tr": "coreutils",
    "stat": "coreutils",
    "sha256sum": "coreutils",
    "systemctl": "systemd",
    "apt-get": "apt",
    "btrfs": "btrfs-progs",
}


# Bytes kept of a command's stderr, at its start and at its end (the last error line).
STDERR_KEPT = 64 * 1024


class CommandError(nagiosplugin.CheckError):
    """A command could not run, ran out of time or failed; the message names it.

    The fields tell the caller what happened without reading the message: ``command`` (the
    program as the message names it), ``reason`` (NOT_FOUND, DENIED, CANNOT_RUN, TIMEOUT, FAILED,
    INVALID), ``returncode`` (the exit code for FAILED, else None) and ``detail`` (the
    command's last line of stderr for FAILED, the OS's words for CANNOT_RUN)."""

    def __init__(self, message, command=None, reason=INVALID, returncode=None, detail=""):
        super().__init__(message)
        self.command = command
        self.reason = reason
        self.returncode = returncode
        self.detail = detail


class LayoutError(nagiosplugin.CheckError):
    """A command wrote what its parser does not understand (a header, a row, a summary line
    other than expected): said in words, never guessed around. ``detail`` is the text met,
    shown after the message in one line of at most 80 characters."""

    def __init__(self, message, detail=""):
        super().__init__(message + (" (%s)" % snippet(detail) if detail else ""))
        self.detail = detail


def snippet(text, limit=80):
    """``text`` in one line (blanks folded), cut to ``limit`` characters with '...'."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def not_found(command):
    """The CommandError for a program that is not installed, naming its package if known."""
    package = PROVIDERS.get(command) if "/" not in command else None
    return CommandError("command not found: %s%s" % (
        command, " (install %s)" % package if package else ""), command, NOT_FOUND)


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


def _kill_all(processes):
    for process in processes:
        _kill_group(process)


def _spawn(argv, stdin, env, cwd=None, stderr=None):
    """Start ``argv`` in a session of its own; ``stderr``: a file descriptor it writes its
    errors to (a pipe shared by a pipeline), else a pipe of its own."""
    import subprocess

    argv = [str(a) for a in argv]
    if log.isEnabledFor(logging.INFO):  # quoted only when shown (-v): shlex is not free
        log.info("running: %s", text.shell_words(argv))
    try:
        return subprocess.Popen(
            argv, stdin=stdin, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if stderr is None else stderr,
            env=environment(env), start_new_session=True, cwd=cwd)
    except FileNotFoundError:
        raise not_found(argv[0]) from None
    except PermissionError:
        # A bare name searched along PATH: execvp says EACCES when a directory on the way
        # was closed to this user, although no directory it may look into has the command.
        path = environment(env).get("PATH") or os.defpath
        if "/" not in argv[0] and not any(os.path.exists(os.path.join(d, argv[0]))
                                          for d in path.split(os.pathsep)):
            raise not_found(argv[0]) from None
        raise CommandError("permission denied running %s" % argv[0], argv[0], DENIED) from None
    except OSError as exc:
        detail = exc.strerror or str(exc)
        raise CommandError("cannot run %s: %s" % (argv[0], detail), argv[0], CANNOT_RUN,
                           detail=detail) from None


def _timed_out(name, limit):
    return CommandError("%s did not finish within %s" % (name, units.format_seconds(limit)),
                        name, TIMEOUT)


def _failed(name, returncode, detail):
    detail = detail[:1000]
    return CommandError("%s failed (exit %d): %s" % (name, returncode, detail), name, FAILED,
                        returncode, detail)


def _last_line(text):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _collect(process, limit, out, err):
    """Read stdout and stderr into the Captures ``out`` and ``err`` until both pipes end;
    False when ``limit`` seconds (None: no limit) ran out first."""
    import selectors
    import time

    end = None if limit is None else time.monotonic() + limit
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ, out)
        selector.register(process.stderr, selectors.EVENT_READ, err)
        while selector.get_map():
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                return False
            for key, _ in selector.select(left):
                chunk = os.read(key.fd, 65536)
                if chunk:
                    key.data.add(chunk)
                else:
                    selector.unregister(key.fileobj)
    return True


def _finish(process, limit):
    """Wait for the process once its pipes ended; False when it outlived ``limit``."""
    import subprocess

    try:
        process.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        return False
    return True


def _unread(name, detail):
    """The CommandError for output too large to read; ``detail`` says how large."""
    return CommandError("%s wrote %s; it is not read" % (name, detail), name, INVALID,
                        detail=detail)


def _too_large(name, capture):
    return _unread(name, "more than %s of output (%s)" % (
        bounded.size_words(capture.limit), bounded.size_words(capture.size)))


def run(argv, timeout=None, env=None, ok_codes=(0,), limit=bounded.LIMIT, cwd=None):
    """Run ``argv`` and return a Completed; raise CommandError on failure or timeout.

    ``timeout`` is capped by what is left of the check's ``--timeout``. An exit code outside
    ``ok_codes`` (None: any code) raises CommandError with the command's last stderr line.
    At most ``limit`` bytes of stdout are kept: more is drained, counted and refused
    (CommandError INVALID); of stderr the start and the end are kept. ``cwd``: the directory
    it runs in (borg extract writes there).
    """
    # subprocess is imported by the first command, not with this module: a run answered from
    # a cache (check_os_upgrades' repeat run) starts no command and skips its import.
    import subprocess
    import time

    limit_s = deadline.remaining(timeout)
    started = time.monotonic()
    process = _spawn(argv, subprocess.DEVNULL, env, cwd)
    name = os.path.basename(str(argv[0]))
    out, err = bounded.Capture(limit), bounded.Capture(STDERR_KEPT, STDERR_KEPT)
    try:
        done = _collect(process, limit_s, out, err) and _finish(
            process, None if limit_s is None else max(0.1, limit_s - (
                time.monotonic() - started)))
    except BaseException:
        # The check's own alarm or an interrupt: take the whole group down with us.
        _kill_group(process)
        _close(process)
        raise
    if not done:
        _kill_group(process)
        _close(process)
        raise _timed_out(name, limit_s)
    _close(process)
    if out.overflow:
        raise _too_large(name, out)
    result = Completed(argv, process.returncode, out.data().decode("utf-8", "replace"),
                       _stderr_text(err))
    log.debug("%s exited %d, %d bytes of output", name, result.returncode, out.size)
    if ok_codes is not None and result.returncode not in ok_codes:
        raise _failed(name, result.returncode,
                      _last_line(result.stderr) or _last_line(result.stdout[-4096:]))
    return result


def _close(process):
    for pipe in (process.stdout, process.stderr):
        if pipe:
            pipe.close()
    try:
        process.wait(timeout=1)
    except Exception:  # a child stuck in the kernel is left behind, not waited for
        pass


def _stderr_text(capture):
    """A captured stderr as text: all of it, or its start and its end (where the last error
    line is) when it was longer than was kept."""
    data = capture.data() + (b"\n" + capture.end() if capture.overflow else b"")
    return data.decode("utf-8", "replace")


def _lines(pipe, name, limit):
    """The lines of ``pipe`` as text; a line longer than ``limit`` bytes raises
    CommandError (INVALID) instead of being held whole."""
    while True:
        line = pipe.readline(limit + 1)
        if not line:
            return
        if len(line) > limit and not line.endswith(b"\n"):
            raise _unread(name, "a line longer than %s" % bounded.size_words(limit))
        yield line.decode("utf-8", "surrogateescape")


@contextlib.contextmanager
def stream(argv, timeout=None, env=None, ok_codes=(0,), line_limit=bounded.LIMIT):
    """Run ``argv`` and yield its stdout as an iterator of text lines, for outputs too large
    to hold (a million-file listing). The process group is killed when the block is left
    early; on a normal end the exit code is checked as in ``run``. The time limit is enforced
    by killing the group from a timer, since reading a pipe line by line cannot time out.
    A line longer than ``line_limit`` bytes raises CommandError (INVALID); of stderr the start
    and the end are kept."""
    with stream_pipeline([argv], timeout, env, ok_codes, line_limit) as lines:
        yield lines


@contextlib.contextmanager
def stream_pipeline(commands, timeout=None, env=None, ok_codes=(0,), line_limit=bounded.LIMIT):
    """``stream`` of a pipeline without a shell: each argv of ``commands`` reads what the one
    before it writes, and the lines of the last are yielded. Every command is judged on its
    own exit code (``ok_codes``, in the order given: the first failure is the one told), as a
    shell only does with pipefail; they share one stderr, and one time limit kills them all."""
    import subprocess
    import threading

    limit = deadline.remaining(timeout)
    reader, writer = os.pipe()  # the stderr of every command
    processes = []
    try:
        stdin = subprocess.DEVNULL
        for argv in commands:
            processes.append(_spawn(argv, stdin, env, stderr=writer))
            if stdin is not subprocess.DEVNULL:
                stdin.close()  # the next command holds it now; a reader gone ends the writer
            stdin = processes[-1].stdout
    except BaseException:
        _kill_all(processes)
        os.close(reader)
        raise
    finally:
        os.close(writer)
    last = processes[-1]
    name = os.path.basename(str(commands[-1][0]))
    expired = threading.Event()

    def expire():
        expired.set()
        _kill_all(processes)

    timer = threading.Timer(limit, expire) if limit else None
    if timer:
        timer.daemon = True
        timer.start()
    err = bounded.Capture(STDERR_KEPT, STDERR_KEPT)

    def drain():  # in the background, so a chatty command cannot block on a full pipe
        for chunk in iter(lambda: os.read(reader, 65536), b""):
            err.add(chunk)

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    try:
        yield _lines(last.stdout, name, line_limit)
        for process in processes:
            process.wait()
    except BaseException:
        _kill_all(processes)
        for process in processes:
            process.wait()
        raise
    finally:
        if timer:
            timer.cancel()
        drainer.join(1)
        if not drainer.is_alive():
            os.close(reader)
        last.stdout.close()
    if expired.is_set():
        raise _timed_out(name, limit)
    for argv, process in zip(commands, processes):
        if ok_codes is not None and process.returncode not in ok_codes:
            raise _failed(os.path.basename(str(argv[0])), process.returncode,
                          _last_line(_stderr_text(err)))
