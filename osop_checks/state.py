"""State and cache files of the checks that remember something between runs.

One set of rules for every such file, because a monitoring plugin often runs as root or as
the nagios user in directories other users can write to:

- the default directory is ``$XDG_STATE_HOME/osop-checks`` or else
  ``/var/tmp/osop-checks-<uid>``, created with mode 0700; it must belong to the running user
  and must not be writable by group or others (``/var/tmp`` is shared by every user);
- the file is opened with O_NOFOLLOW: a symbolic link is refused, never followed; it must be
  a regular file of the running user, not writable by group or others;
- it is read with a size cap, and a file that is not a JSON object is *corrupt*: refused,
  never trusted and never silently replaced (the caller says how to reset it);
- it is written atomically: a temporary file in the same directory (O_EXCL | O_NOFOLLOW,
  mode 0600), fsync, then ``os.replace``; a failed write removes its temporary file.

Every refusal is a ``nagiosplugin.CheckError`` (UNKNOWN) naming the file.

A cache (``Cache``) is such a file too: an answer kept under a key (``stat_key`` of the
files it was computed from), in ``default_cache_directory()`` or one the admin chose.
"""
import errno
import json
import logging
import os
import re
import stat
import sys
import time

import nagiosplugin

from osop_checks import bounded

LIMIT = 1024 * 1024  # bytes; a state file is a few KiB


def default_directory(environ=None, uid=None):
    environ = os.environ if environ is None else environ
    uid = os.geteuid() if uid is None else uid
    base = environ.get("XDG_STATE_HOME")
    return os.path.join(base, "osop-checks") if base else "/var/tmp/osop-checks-%d" % uid


def sha256_hex(data):
    """The sha256 of ``data`` in hex, from CPython's own sha256 (the module hashlib falls back
    to): importing hashlib loads OpenSSL's libcrypto, 3 to 5 ms at every start of Debian's
    python3, for the digest of one short file name."""
    try:  # the one of this Python: a module not found is a search of sys.path
        if sys.version_info >= (3, 12):
            from _sha2 import sha256
        else:
            from _sha256 import sha256
    except ImportError:
        from hashlib import sha256
    return sha256(data).hexdigest()


def default_path(check, name=None, identity=(), environ=None, uid=None):
    """The default state file of one service of ``check``: ``<default directory>/<check>_<key>
    .json``. The key is ``name`` with every character but a-z, 0-9, '.' and '-' written '_'
    (dyndns_match: the host name asked), or else the first 16 hex digits of the sha256 of the
    ``identity`` lines (three_copies: the source and the copies): two services of one host
    never share a file, and a service keeps its file from run to run."""
    if name is not None:
        key = re.sub(r"[^a-z0-9.-]", "_", name)
    else:
        key = sha256_hex("\n".join(identity).encode("utf-8", "surrogateescape"))[:16]
    return os.path.join(default_directory(environ, uid), "%s_%s.json" % (check, key))


def ensure_dir(path, create=False, option="--state-file", what="state"):
    """The directory of the state file ``path``. ``create`` (the default location): made
    with mode 0700 if missing, and it must belong to this user and not be writable by
    others. Otherwise (a path the admin chose) it must exist. ``what`` names the file in
    every refusal ("the state file ...", "the cache directory ...")."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        if create:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        info = os.lstat(directory)
    except FileNotFoundError:
        raise nagiosplugin.CheckError("the directory of the %s file %s does not exist" % (
            what, path)) from None
    except OSError as exc:
        raise nagiosplugin.CheckError("cannot %s the %s directory %s: %s" % (
            "create" if create else "use", what, directory, _reason(exc))) from None
    if not stat.S_ISDIR(info.st_mode) or (create and (
            info.st_uid != os.geteuid() or info.st_mode & 0o022)):
        raise nagiosplugin.CheckError("the %s directory %s is not a private directory of this "
                                      "user; choose another with %s" % (what, directory, option))
    return directory


def _reason(exc):
    return (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)


def load(path, reset="remove it", discard_corrupt=False, limit=LIMIT, what="state"):
    """The JSON object in ``path``, or None when there is no such file.

    ``what`` names the file in every refusal ("the state file ...", "the cache file ...");
    ``reset`` tells the admin how to start afresh (part of the corrupt-file message);
    ``discard_corrupt`` (the admin asked to start afresh) treats a corrupt file as absent.
    A symlink, a file of another user or one others may write to is refused either way."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise nagiosplugin.CheckError(
                "the %s file %s is a symbolic link, which is never followed; remove it"
                % (what, path)) from None
        raise nagiosplugin.CheckError("cannot open the %s file %s: %s" % (
            what, path, _reason(exc))) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise nagiosplugin.CheckError("cannot open the %s file %s: %s" % (
                what, path, os.strerror(errno.EISDIR)))
        if not stat.S_ISREG(info.st_mode):
            raise nagiosplugin.CheckError("the %s file %s is not a regular file" % (what, path))
        if info.st_uid != os.geteuid():
            raise nagiosplugin.CheckError(
                "the %s file %s belongs to uid %d, not to this user (uid %d); it is not "
                "trusted" % (what, path, info.st_uid, os.geteuid()))
        if info.st_mode & 0o022:
            raise nagiosplugin.CheckError(
                "the %s file %s is writable by group or others (mode %04o); it is not "
                "trusted" % (what, path, stat.S_IMODE(info.st_mode)))
        data = bounded.read_fd(fd, limit)
    except OSError as exc:
        raise nagiosplugin.CheckError("cannot read the %s file %s: %s" % (
            what, path, _reason(exc))) from None
    finally:
        os.close(fd)
    if len(data) > limit:
        why = "larger than %d KiB" % (limit // 1024)
    else:
        try:
            data = json.loads(data.decode("utf-8"))
        except ValueError as exc:  # UnicodeDecodeError is one
            why = "not JSON (%s)" % str(exc).split(":")[0]
        else:
            if isinstance(data, dict):
                return data
            why = "not a JSON object"
    if discard_corrupt:
        return None
    raise nagiosplugin.CheckError("the %s file %s is corrupt: %s; it is not trusted (%s)"
                                  % (what, path, why, reset))


def save(path, data, what="state"):
    """Write ``data`` as JSON to ``path`` atomically (see module); ``what`` as for load."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, ".%s.%s.tmp" % (os.path.basename(path),
                                                  os.urandom(6).hex()))
    created = False
    try:
        text = json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        created = True
        try:
            view = memoryview(text)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        if created:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        raise nagiosplugin.CheckError("cannot write the %s file %s: %s" % (
            what, path, _reason(exc))) from None


# -- caches: an answer kept while what it was computed from is unchanged -----------------

log = logging.getLogger("nagiosplugin")


def default_cache_directory(asking="the source"):
    """/var/cache/osop-checks where it can be written (root, or the Icinga user the Debian
    package makes it for), else $XDG_CACHE_HOME/osop-checks (~/.cache/osop-checks); None when
    neither can be written, said once at -v (a cache that is silently off costs every run
    the full question to ``asking``)."""
    candidates = ["/var/cache/osop-checks"]
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    candidates.append(os.path.join(xdg, "osop-checks"))
    for path in candidates:
        if _writable_dir(path):
            return path
    log.warning("no cache: this user (%s) can write neither %s; asking %s on every run "
                "(create the first for this user, or give --cache-dir)",
                running_as(), " nor ".join(candidates), asking)
    return None


def cache_directory(chosen=None, option="--cache-dir", asking="the source"):
    """The directory a check keeps its cache files in: ``chosen`` (the admin's --cache-dir,
    which must exist and be writable), else default_cache_directory() (None: no cache).
    Either must belong to this user and not be writable by others, who could forge or
    remove the answers kept there; ``option`` tells the admin how to choose another;
    ``asking``: whom a check without a cache asks on every run."""
    directory = chosen or default_cache_directory(asking)
    if chosen and not (os.path.isdir(chosen) and os.access(chosen, os.W_OK | os.X_OK)):
        raise nagiosplugin.CheckError("cannot write the cache directory %s (it must exist)"
                                      % chosen)
    if directory:
        ensure_dir(os.path.join(directory, "cache"), create=True, option=option,
                   what="cache")
    return directory


def running_as(group=False):
    """The name of the user (with ``group``: of its primary group) this process runs as, for
    words to the admin; its number where it has no name (a number works in chown too)."""
    import grp
    import pwd

    try:
        return grp.getgrgid(os.getegid()).gr_name if group else \
            pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.getegid() if group else os.geteuid())


def _writable_dir(path):
    """``path`` is (or now is) a directory of this user that it can write: the package makes
    /var/cache/osop-checks for nagios, so root running a check by hand uses its own ~/.cache
    instead of refusing nagios' directory as not private."""
    try:
        os.makedirs(path, mode=0o755, exist_ok=True)
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and \
        os.access(path, os.W_OK | os.X_OK)


def stat_key(paths):
    """(path, mtime_ns, size, inode) of each path (files and the entries of directories,
    one level deep); a path that does not exist counts as (path, None)."""
    key = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            key.append([path, None])
            continue
        key.append([path, st.st_mtime_ns, st.st_size, st.st_ino])
        if os.path.isdir(path):
            try:
                entries = sorted(os.scandir(path), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                try:
                    est = entry.stat()
                except OSError:
                    continue
                key.append([entry.path, est.st_mtime_ns, est.st_size, est.st_ino])
    return key


class Cache:
    """One JSON file per question in ``directory`` (None: no cache), named
    ``<check>-<hash of question>.json``, holding the answer's fields, the key it was
    computed under and its time; a different key is a miss. ``asking``: who is asked on a
    miss, for the -v lines ("the package manager"); ``limit``: bytes of the file read."""

    def __init__(self, directory, check, question, asking, limit=LIMIT):
        digest = sha256_hex(json.dumps(question, sort_keys=True).encode())[:16]
        self.path = os.path.join(directory, "%s-%s.json" % (check, digest)) if directory \
            else None
        self.asking = asking
        self.limit = limit  # bytes of the file (a CRL kept as base64 is larger than LIMIT)

    def load(self, key, parse):
        """``parse(data)`` of the cached data under ``key``, or None (also when ``parse``
        finds it malformed: KeyError, TypeError, AttributeError, ValueError). The file
        follows the rules of every state file: a symlink, a file of another user or one
        others may write to is not trusted (said at -v) and ``asking`` is asked instead."""
        if not self.path:
            return None
        try:
            data = load(self.path, discard_corrupt=True, limit=self.limit, what="cache")
        except nagiosplugin.CheckError as exc:
            log.warning("%s; asking %s", exc, self.asking)
            return None
        if data is None:
            return None
        if data.get("key") != key:
            log.info("cache %s is out of date, asking %s", self.path, self.asking)
            return None
        try:
            answer = parse(data)
        except (KeyError, TypeError, AttributeError, ValueError):
            return None
        log.info("answer from the cache %s (its key is unchanged)", self.path)
        return answer

    def store(self, key, fields):
        """Write ``fields`` with the key and the time atomically (``save``: a failed write
        leaves no temporary file behind); a failure is said at -v, the answer stands."""
        if not self.path:
            return
        try:
            save(self.path, dict(fields, key=key, time=time.time()), what="cache")
        except nagiosplugin.CheckError as exc:
            log.warning("%s", exc)
