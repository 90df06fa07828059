"""The guarded entry point every check runs through.

arguments -> build the nagiosplugin Check -> run it within --timeout -> one status line.
Whatever goes wrong ends as one ``NAME UNKNOWN - <what failed>`` line and exit 3: a usage
error, a missing Python module, a timeout, a bug. Tracebacks show only at -vvv.
"""
import io
import logging
import os
import signal
import sys
import traceback

import nagiosplugin

from osop_checks import cli, deadline, text, units

UNKNOWN = cli.UNKNOWN

# Python module -> how an admin installs it: the words after "Python module X is not
# installed", a sentence that can be followed as it stands (the pip requirement quoted for
# the shell, as in setup.cfg).
PACKAGES = {
    "nagiosplugin": ": install the Debian package python3-nagiosplugin "
                    "(or pip install nagiosplugin)",
    "psutil": ": install the Debian package python3-psutil (or pip install psutil)",
    "cryptography": ": install the Debian package python3-cryptography "
                    "(or pip install cryptography)",
    "requests": ": install the Debian package python3-requests (or pip install requests)",
    "dns": ": install the Debian package python3-dnspython (or pip install dnspython)",
    "pysnmp": " (needed for SNMP mode only, the package's extra snmp): install it with "
              "pip install 'pysnmp>=7.1,<8' (Debian's python3-pysnmp4 is too old)",
}

# Failures whose message already says what went wrong, in words.
EXPECTED = (nagiosplugin.CheckError, units.UnitError, OSError)


class Outcome:
    """What a run produced: the exit code and the text of the plugin output."""

    def __init__(self, exitcode, output):
        self.exitcode = exitcode
        self.output = output

    @property
    def status_line(self):
        return self.output.split("\n", 1)[0]


def _alarm(signum, frame):
    raise deadline.Timeout("timed out")


def _unraisable(unraisable):
    """What Python cannot raise (an exception in a weakref callback, a __del__) it writes to
    stderr, which Icinga shows above the check's line. The alarm is such an exception when it
    strikes in importlib's module-lock callback (a module imported just as the --timeout ends,
    seen under load): it is armed again at once, to strike where it can be raised. Anything
    else is said at -vvv only."""
    if isinstance(unraisable.exc_value, deadline.Timeout):
        signal.setitimer(signal.ITIMER_REAL, 0.01)
        return
    logging.getLogger("nagiosplugin").debug(
        "ignored in %r: %s: %s", unraisable.object, type(unraisable.exc_value).__name__,
        unraisable.exc_value)


def _log_channel(verbose):
    channel = logging.StreamHandler(io.StringIO())
    channel.setFormatter(logging.Formatter("%(message)s"))
    level = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO}.get(verbose, logging.DEBUG)
    channel.setLevel(level)
    logger = logging.getLogger("nagiosplugin")
    # the logger's level too: a message that will not be shown is then not even built
    # (log.isEnabledFor guards what is dear to build, the quoted command lines of -vv)
    logger.setLevel(level)
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(channel)
    return channel


def render(name, verdict):
    """The lines of a plugin.Verdict: the status line with its perfdata (sorted, as
    nagiosplugin prints it), then the long output; every line free of '|'."""
    summary = text.oneline(verdict.summary, limit=400)
    state = str(verdict.state).upper()
    first = "%s %s - %s" % (name, state, summary) if summary else "%s %s" % (name, state)
    perfdata = sorted(filter(None, (str(p) for p in verdict.perfdata)))
    if perfdata:
        first += " | " + " ".join(perfdata)
    return [first] + [text.oneline(line, limit=1000) for line in verdict.long
                      if str(line).strip()]


def unknown(name, message):
    return "%s UNKNOWN - %s" % (name, text.oneline(message, limit=400))


def execute(name, build_parser, build_check, argv=None):
    """Run one check in this process and return its Outcome; never raises, never exits
    (argparse's own exits for --help and usage errors aside)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = args.verbose
    channel = _log_channel(verbose)
    deadline.start(args.timeout)
    previous = signal.signal(signal.SIGALRM, _alarm)
    previous_unraisable, sys.unraisablehook = sys.unraisablehook, _unraisable
    signal.setitimer(signal.ITIMER_REAL, args.timeout)
    try:
        verdict = build_check(args)  # gathered and judged: a plugin.Verdict
        lines, code = render(name, verdict), verdict.state.code
        if verdict.save is not None:  # a stateful check's state, once its answer is known
            verdict.save()
    except deadline.Timeout:
        lines, code = [unknown(name, "no result within the --timeout of %s" % (
            units.format_seconds(args.timeout)))], UNKNOWN
    except cli.UsageError as exc:
        lines, code = ["%s UNKNOWN - %s (see --help)" % (name, text.oneline(exc))], UNKNOWN
    except ModuleNotFoundError as exc:
        hint = PACKAGES.get((exc.name or "").split(".")[0], "")
        lines = [unknown(name, "Python module %s is not installed%s" % (exc.name, hint))]
        code = UNKNOWN
    except EXPECTED as exc:
        lines, code = [unknown(name, _describe(exc))], UNKNOWN
    except Exception as exc:  # a bug of ours: still one line, the traceback only at -vvv
        lines, code = [unknown(name, cli.scrub("internal error: %s: %s" % (
            type(exc).__name__, exc)))], UNKNOWN
        if verbose >= 3:
            lines.extend(cli.scrub(traceback.format_exc()).replace("|", "/").splitlines())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        sys.unraisablehook = previous_unraisable
        deadline.start(None)  # the run is over: code after it (a test) has no budget left over
    logged = channel.stream.getvalue()
    if logged:
        # a logged command line (proc's "running: ...") stays whole, to be pasted into a shell
        lines.extend(text.oneline(line, limit=4000) for line in cli.scrub(logged).splitlines()
                     if line.strip())
    return Outcome(code, "\n".join(lines) + "\n")


def _describe(exc):
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return "%s: %s" % (exc.strerror, exc.filename)
    return str(exc) or type(exc).__name__


def main(name, build_parser, build_check, argv=None):
    """Console-script entry point: run, print, and leave with the plugin's exit code.

    os._exit skips interpreter shutdown, which would wait for worker threads still stuck on a
    black-holed peer after a timeout.
    """
    try:
        outcome = execute(name, build_parser, build_check, argv)
    except SystemExit as exc:  # --help, --version, usage errors: already printed
        sys.stdout.flush()
        os._exit(exc.code if isinstance(exc.code, int) else UNKNOWN)
    except BaseException as exc:  # KeyboardInterrupt or a bug before the check started
        sys.stdout.write(unknown(name, "aborted: %s" % (type(exc).__name__,)) + "\n")
        if "-vvv" in sys.argv:
            sys.stdout.write(cli.scrub(traceback.format_exc()))
        sys.stdout.flush()
        os._exit(UNKNOWN)
    sys.stdout.write(outcome.output)
    sys.stdout.flush()
    os._exit(outcome.exitcode)
