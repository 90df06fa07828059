"""Pre-forked workers: each runs one check at a time, forked from the loaded daemon.

The parent forks every worker ahead of need (the modules are loaded once, shared copy-on-write),
so a request costs no fork. A worker reads one job per line on its socket (JSON: the check's
command and argv), runs it through runtime.execute exactly as the console script would, and
writes back one line (exit code and output). Between jobs it puts back what a check may have
changed: signal handlers, logging, the environment, the working directory, umask and the
lru caches of osop_checks. A worker that is left with extra threads (a hung NFS statvfs, a
black-holed peer), that grew past its memory limit or that has served ``max_jobs`` exits, and
the parent forks a fresh one. A check that overruns its --timeout is killed by the parent,
with its process group and every descendant, and its worker replaced.
"""
import contextlib
import io
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback

from osop_checks import runtime

GRACE = 2.0  # seconds past --timeout before the parent kills a check (runtime answers first)
OUTPUT_LIMIT = 256 * 1024
RSS_LIMIT = 60 * 1024 * 1024


def rss(pid="self"):
    """Resident memory of a process in bytes (0 when it is gone)."""
    try:
        with open("/proc/%s/statm" % pid) as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class Worker:
    """The parent's view of one worker process."""

    def __init__(self, pid, channel):
        self.pid = pid
        self.channel = channel
        self.buffer = b""
        self.job = None        # what it runs now (the daemon's Connection), None when idle
        self.leaving = False   # said its last answer: gets no more jobs, exits
        self.deadline = None   # monotonic time after which the job is killed
        self.started = None
        self.jobs = 0

    def send(self, check, argv, job):
        self.job = job
        self.started = time.monotonic()
        self.deadline = self.started + check.timeout(argv) + GRACE
        line = json.dumps({"command": check.command, "argv": argv}) + "\n"
        self.channel.setblocking(True)  # one short line into an idle worker's empty socket
        self.channel.sendall(line.encode())
        self.channel.setblocking(False)
        self.jobs += 1

    def receive(self):
        """The worker's reply once a whole line is in, None while it is incomplete; raises
        EOFError when the worker is gone."""
        try:
            data = self.channel.recv(65536)
        except BlockingIOError:
            return None
        except OSError:
            data = b""
        if not data:
            raise EOFError
        self.buffer += data
        if b"\n" not in self.buffer:
            return None
        line, self.buffer = self.buffer.split(b"\n", 1)
        self.job = None
        self.deadline = None
        reply = json.loads(line.decode())
        self.leaving = bool(reply.get("last"))
        return reply

    def kill(self):
        """SIGKILL the worker, its process group and every descendant (a check's commands run
        in sessions of their own), then reap it."""
        victims = []
        try:
            import psutil

            victims = psutil.Process(self.pid).children(recursive=True)
        except Exception:  # gone already, or psutil missing: the process group still goes
            pass
        for kill, target in [(os.killpg, self.pid), (os.kill, self.pid)] + [
                (os.kill, child.pid) for child in victims]:
            try:
                kill(target, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.reap()

    def reap(self):
        self.channel.close()
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass


def spawn(checks, inherited, max_jobs):
    """Fork one worker; ``inherited`` are the parent's sockets and selector, closed in the
    child. Returns the parent's Worker."""
    parent_end, child_end = socket.socketpair()
    pid = os.fork()
    if pid:
        child_end.close()
        parent_end.setblocking(False)
        return Worker(pid, parent_end)
    try:  # the child: never returns
        signal.set_wakeup_fd(-1)  # the parent's, closed below: no check's signal writes there
        parent_end.close()
        for thing in inherited():
            with contextlib.suppress(Exception):
                thing.close()
        os.setpgid(0, 0)
        serve(child_end, checks, max_jobs)
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(0)


class Snapshot:
    """What a check may change in its worker's process, put back after each job."""

    SIGNALS = [s for s in signal.Signals if s not in (signal.SIGKILL, signal.SIGSTOP)]

    def __init__(self):
        self.handlers = {s: signal.getsignal(s) for s in self.SIGNALS}
        self.environ = dict(os.environ)
        self.cwd = os.getcwd()
        self.umask = os.umask(0o022)
        os.umask(self.umask)
        self.loggers = {name: (logger.handlers[:], logger.level, logger.propagate)
                        for name, logger in self._loggers()}

    @staticmethod
    def _loggers():
        yield "", logging.getLogger()
        for name, logger in list(logging.Logger.manager.loggerDict.items()):
            if isinstance(logger, logging.Logger):
                yield name, logger

    _clears = (0, [])  # (len(sys.modules) when listed, the cache_clear of every cached function)

    @classmethod
    def _cache_clears(cls):
        """The memoised functions of our modules, listed again only when a module was imported
        since (walking every module's names on every job cost more than the check itself)."""
        if cls._clears[0] != len(sys.modules):
            clears = []
            for name, module in list(sys.modules.items()):
                if name.startswith("osop_checks"):
                    for value in list(vars(module).values()):
                        clear = getattr(value, "cache_clear", None)
                        if callable(clear):
                            clears.append(clear)
            cls._clears = (len(sys.modules), clears)
        return cls._clears[1]

    def restore(self):
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in self.handlers.items():
            if handler is not None and signal.getsignal(sig) is not handler:
                with contextlib.suppress(OSError, ValueError):
                    signal.signal(sig, handler)
        if dict(os.environ) != self.environ:
            os.environ.clear()
            os.environ.update(self.environ)
        with contextlib.suppress(OSError):
            os.chdir(self.cwd)
        os.umask(self.umask)
        for name, logger in self._loggers():
            handlers, level, propagate = self.loggers.get(name, ([], logging.NOTSET, True))
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate
        for clear in self._cache_clears():
            clear()
        from osop_checks import deadline

        deadline.start(None)


def run(checks, job):
    """One job in this process: (exit code, output) as the console script prints them."""
    check = checks[job["command"]]
    module = check.module
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            try:
                outcome = runtime.execute(check.name, module.build_parser, module.build_check,
                                          job["argv"])
                code, output = outcome.exitcode, outcome.output
            except SystemExit as exc:  # --help, --version, usage errors: already printed
                code = exc.code if isinstance(exc.code, int) else runtime.UNKNOWN
                output = out.getvalue()
    except BaseException as exc:  # as runtime.main: a bug before the check started
        code, output = runtime.UNKNOWN, runtime.unknown(check.name, "aborted: %s" % (
            type(exc).__name__,)) + "\n"
    return code, output[:OUTPUT_LIMIT]


def serve(channel, checks, max_jobs):
    """The worker's loop: one job per line in, one answer per line out."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.close(devnull)
    snapshot = Snapshot()
    reader = channel.makefile("rb")
    served = 0
    while True:
        line = reader.readline(4 * 1024 * 1024)
        if not line:
            return
        code, output = run(checks, json.loads(line.decode()))
        served += 1
        last = threading.active_count() > 1 or served >= max_jobs or rss() > RSS_LIMIT
        channel.sendall((json.dumps({"exitcode": code, "output": output, "last": last})
                         + "\n").encode())
        if last:
            return  # the parent forks a fresh one and gives this one no more jobs
        snapshot.restore()
