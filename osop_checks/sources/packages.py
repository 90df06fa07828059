"""What every package manager source returns, and the parts they share.

apt (sources/apt.py) and dnf (sources/dnf.py) both answer with a ``Pending`` holding
``Upgrade``s, so check_os_upgrades judges Debian and RHEL hosts alike. Also here: the running
versus newest installed kernel, and the result cache that makes a repeat run cheap.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import time

log = logging.getLogger("nagiosplugin")


@dataclasses.dataclass
class Upgrade:
    """One package that an upgrade would install: ``current`` is None for a new package."""
    package: str
    current: str | None
    candidate: str
    origins: list = dataclasses.field(default_factory=list)
    arch: str = ""
    security: bool = False

    @property
    def pocket(self):
        """The suite it comes from ('oldstable-security'): the security one where there is one,
        else the first origin's (for dnf: the repository)."""
        suites = [origin.rsplit("/", 1)[-1] for origin in self.origins]
        for suite in suites:
            if suite.endswith("-security"):
                return suite
        return suites[0] if suites else ""


@dataclasses.dataclass
class Pending:
    """A package manager's answer: the upgrades and the packages held back from upgrading."""
    manager: str
    upgrades: list = dataclasses.field(default_factory=list)
    held: list = dataclasses.field(default_factory=list)
    kept_back: list = dataclasses.field(default_factory=list)
    removals: list = dataclasses.field(default_factory=list)
    deferred: list = dataclasses.field(default_factory=list)  # Ubuntu's phased updates
    cached_at: float | None = None

    def to_json(self):
        data = dataclasses.asdict(self)
        data.pop("cached_at")
        return data

    @classmethod
    def from_json(cls, data):
        data = dict(data)
        data["upgrades"] = [Upgrade(**u) for u in data.get("upgrades", [])]
        return cls(**data)


@dataclasses.dataclass
class Reboot:
    """Why a reboot is needed (empty ``reasons``: it is not)."""
    reasons: list = dataclasses.field(default_factory=list)
    packages: list = dataclasses.field(default_factory=list)
    note: str = ""  # why it could not be told, where it could not

    @property
    def required(self):
        return bool(self.reasons)


@dataclasses.dataclass
class ListAge:
    """How old the package lists / repository metadata are: ``newest`` is a path, ``mtime`` its
    time (None: no lists at all)."""
    newest: str | None
    mtime: float | None

    def age(self, now=None):
        if self.mtime is None:
            return None
        return max(0.0, (time.time() if now is None else now) - self.mtime)


def newest_file(paths) -> ListAge:
    """The most recently modified of ``paths`` (those that cannot be read are passed over)."""
    newest, newest_mtime = None, None
    for path in paths:
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            continue
        if newest_mtime is None or mtime > newest_mtime:
            newest, newest_mtime = path, mtime
    return ListAge(newest, newest_mtime)


# -- kernels ------------------------------------------------------------------------------

def version_key(text):
    """Natural order of kernel release strings: '6.1.0-9-amd64' < '6.1.0-21-amd64'."""
    return [(1, int(part), "") if part[0] in "0123456789" else (0, 0, part)
            for part in re.findall(r"[0-9]+|[^0-9]+", text)]  # '²' is \d, not int()


def installed_kernels(boot="/boot"):
    """Kernel releases with an image in ``boot`` (vmlinuz-<release>, vmlinux-<release>)."""
    try:
        names = os.listdir(boot)
    except OSError:
        return []
    found = set()
    for name in names:
        for prefix in ("vmlinuz-", "vmlinux-"):
            if name.startswith(prefix) and len(name) > len(prefix):
                found.add(name[len(prefix):])
    return sorted(found, key=version_key)


def kernel_reason(running, installed):
    """A reboot reason when a newer kernel than the running one is installed, else None.

    Where no kernel image is installed (a container, a VM booted from outside) there is
    nothing to compare, and a running kernel newer than every installed one is no reason."""
    if not installed or not running:
        return None
    newest = installed[-1]
    if newest != running and version_key(newest) > version_key(running):
        return "running kernel %s, newest installed %s" % (running, newest)
    return None


# -- the result cache ----------------------------------------------------------------------

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


def default_cache_dir():
    """/var/cache/osop-checks where it can be written (root), else $XDG_CACHE_HOME/osop-checks
    (~/.cache/osop-checks); None when neither can be written."""
    candidates = ["/var/cache/osop-checks"]
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    candidates.append(os.path.join(xdg, "osop-checks"))
    for path in candidates:
        if _writable_dir(path):
            return path
    return None


def _writable_dir(path):
    try:
        os.makedirs(path, mode=0o755, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK)


class ResultCache:
    """One JSON file per question (``name`` hashes what was asked: command, mode, root) that
    holds the answer and the key it was computed under; a different key is a miss."""

    def __init__(self, directory, name):
        import hashlib

        self.directory = directory
        digest = hashlib.sha256(json.dumps(name, sort_keys=True).encode()).hexdigest()[:16]
        self.path = os.path.join(directory, "os_upgrades-%s.json" % digest) if directory \
            else None

    def load(self, key):
        if not self.path:
            return None
        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return None
        if data.get("key") != key:
            log.info("cache %s is out of date, asking the package manager", self.path)
            return None
        try:
            pending = Pending.from_json(data["pending"])
        except (KeyError, TypeError):
            return None
        pending.cached_at = data.get("time")
        log.info("answer from the cache %s (its key is unchanged)", self.path)
        return pending

    def store(self, key, pending):
        if not self.path:
            return
        import tempfile

        data = {"key": key, "time": time.time(), "pending": pending.to_json()}
        try:
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".os_upgrades-")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle)
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("cannot write the cache %s: %s", self.path, exc)
