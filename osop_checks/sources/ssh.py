"""The one way a check runs a command on another host: ssh in batch mode.

Key authentication only, never a prompt: BatchMode, no password, no keyboard-interactive, the
host key checked strictly against a known_hosts file. Every timeout ssh has is bounded by the
check's deadline, and the command runs through ``proc`` like any local one (own process group,
killed on timeout). The remote side runs the command through the login shell, so every remote
argument is quoted with ``shlex.quote``.

A failure of ssh itself (exit code 255) is told in words: host key mismatch, host key not
known, permission denied (publickey), connection refused, timeout, unknown host, unreachable.
"""
from __future__ import annotations

import collections
import contextlib
import re

from osop_checks import address, deadline, proc

# ssh exits 255 for its own errors; any other code is the remote command's.
SSH_FAILED = 255


# A named tuple, not a dataclass: see osop_checks.record.
class Options(collections.namedtuple(
        "Options", "port identity known_hosts user connect_timeout family",
        defaults=(None, None, None, None, 10.0, None))):
    """How to reach hosts: port, identity (private key), known_hosts file, default user,
    the seconds ssh may take to connect, address family (4 or 6: ssh -4/-6, as -4/-6 of the
    check). Immutable; ``options._replace(port=2222)`` is a changed copy."""
    __slots__ = ()


DEFAULT = Options()  # ssh's own port, key, known_hosts and user


class SshError(proc.CommandError):
    """ssh could not run the command on ``host``; ``kind`` says why in a few words."""

    def __init__(self, host, kind, detail="", port=None):
        self.host = host
        self.kind = kind
        self.detail = detail
        where = "%s port %d" % (host, port) if port else host
        super().__init__("ssh to %s: %s%s" % (where, kind, ": %s" % detail if detail else ""))


# (kind, pattern on ssh's stderr); first match wins, so the specific ones come first.
_KINDS = (
    ("host key mismatch", r"REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed"
                          r"|host key for .* differs"),
    ("host key not known", r"No \S+ host key is known for|Host key verification failed"),
    ("unknown host", r"Could not resolve hostname|Name or service not known"
                     r"|nodename nor servname|Temporary failure in name resolution"),
    ("permission denied (publickey)", r"Permission denied \("),
    ("connection refused", r"Connection refused"),
    ("timeout", r"timed out|Connection timed out|Timeout, server"),
    ("unreachable", r"No route to host|Network is unreachable|Host is down"),
    ("connection closed", r"Connection closed|Connection reset|closed by remote host"
                          r"|Broken pipe"),
)


def classify(stderr):
    """The kind of an ssh failure from its stderr (None when none of the known ones)."""
    for kind, pattern in _KINDS:
        if re.search(pattern, stderr):
            return kind
    return None


def check_file_option(path):
    """``path`` if ssh reads it as the one file it names (-i, UserKnownHostsFile); ValueError
    naming the rule otherwise: ssh splits UserKnownHostsFile at blanks into several files (the
    second relative to the working directory), expands '%' tokens and a leading '~' in both,
    and takes quotes and backslashes as its own quoting."""
    text = str(path)
    if re.search(r"[\s%\"'\\]", text) or text.startswith("~"):
        raise ValueError("ssh would not read %r as one file: the path may hold no blank, '%%', "
                         "quote or backslash, nor start with '~'" % text)
    return text


def remote_command(args):
    """One string for the remote shell: every argument quoted, none interpreted."""
    import shlex  # here: a run over local trees only does not need it at start

    return " ".join(shlex.quote(str(a)) for a in args)


def argv(host, args, options=DEFAULT, user=None):
    """The ssh argv that runs ``args`` (a list, quoted here) on ``host`` in batch mode.

    ConnectTimeout (TCP connect and key exchange) and the keep-alive interval are bounded by
    what is left of the check's --timeout."""
    left = deadline.remaining(options.connect_timeout)
    connect = max(1, int(min(options.connect_timeout, left)))
    alive = max(1, min(15, int(deadline.remaining(None) or 30) // 3))
    cmd = ["ssh", "-T", "-x", "-a", "-e", "none",
           "-o", "BatchMode=yes",
           "-o", "PasswordAuthentication=no",
           "-o", "KbdInteractiveAuthentication=no",
           "-o", "StrictHostKeyChecking=yes",
           "-o", "UpdateHostKeys=no",
           "-o", "ConnectTimeout=%d" % connect,
           "-o", "ServerAliveInterval=%d" % alive,
           "-o", "ServerAliveCountMax=2",
           "-o", "LogLevel=ERROR"]
    if options.known_hosts:
        cmd += ["-o", "UserKnownHostsFile=%s" % options.known_hosts,
                "-o", "GlobalKnownHostsFile=/dev/null"]
    if options.identity:
        cmd += ["-i", options.identity, "-o", "IdentitiesOnly=yes"]
    if options.port:
        cmd += ["-p", str(options.port)]
    if options.family:
        cmd.append("-%d" % options.family)
    user = user or options.user
    if user:
        cmd += ["-l", user]
    try:
        address.check_host(host)
    except ValueError as exc:
        raise SshError(host, "unknown host", str(exc)) from None
    return cmd + ["--", host, remote_command(args)]


def _failed(host, stderr, options, code=None):
    kind = classify(stderr)
    detail = ""
    if kind is None:  # say what ssh said, since we cannot say it shorter
        lines = [line.strip() for line in stderr.splitlines() if line.strip()
                 and not line.startswith("@") and "WARNING" not in line]
        detail = lines[-1] if lines else ""
        kind = "ssh failed" if code is None else "ssh failed (exit %d)" % code
    return SshError(host, kind, detail, options.port)


def _not_run(host, exc, options):
    """A proc.CommandError of ssh itself: out of time is the host's timeout; an answer too
    large is told with the host's name; ssh not installed (or not runnable) stays what it
    is, a problem of this host."""
    if exc.reason == proc.TIMEOUT:
        return SshError(host, "timeout", port=options.port)
    if exc.reason == proc.INVALID and exc.detail:  # an answer too large to read
        return proc.CommandError("the answer from %s is %s; it is not read" % (
            host, exc.detail), exc.command, proc.INVALID, detail=exc.detail)
    return exc


def run(host, args, options=DEFAULT, user=None, timeout=None, ok_codes=(0,)):
    """Run ``args`` on ``host``; return proc.Completed. ssh's own failure raises SshError;
    a remote exit code outside ``ok_codes`` (None: any) raises proc.CommandError."""
    cmd = argv(host, args, options, user)
    try:
        result = proc.run(cmd, timeout=timeout, ok_codes=None)
    except proc.CommandError as exc:  # not installed, or ran out of time
        raise _not_run(host, exc, options) from None
    if result.returncode == SSH_FAILED:
        raise _failed(host, result.stderr, options, result.returncode)
    if ok_codes is not None and result.returncode not in ok_codes:
        last = [line for line in result.stderr.splitlines() if line.strip()]
        raise _remote_failed(host, args, result.returncode, last[-1].strip() if last else "")
    return result


def _remote_failed(host, args, code, detail):
    return proc.CommandError("%s on %s failed (exit %d): %s" % (args[0], host, code, detail),
                             args[0], proc.FAILED, code, detail)


@contextlib.contextmanager
def stream(host, args, options=DEFAULT, user=None, timeout=None):
    """Run ``args`` on ``host`` and yield its output lines (proc.stream); a failure of ssh
    or of the remote command raises SshError / proc.CommandError in words."""
    cmd = argv(host, args, options, user)
    try:
        with proc.stream(cmd, timeout=timeout) as lines:
            yield lines
    except SshError:
        raise
    except proc.CommandError as exc:
        if exc.reason == proc.INVALID and exc.command != "ssh":
            raise  # the caller's own parser refused a line
        if exc.reason != proc.FAILED:
            raise _not_run(host, exc, options) from None
        if exc.returncode == SSH_FAILED:
            raise _failed(host, exc.detail, options) from None
        raise _remote_failed(host, args, exc.returncode, exc.detail) from None
