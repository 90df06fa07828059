"""What every package manager source returns.

apt (sources/apt.py) and dnf (sources/dnf.py) both answer with a ``Pending`` holding
``Upgrade``s, a ``Reboot`` and a ``ListAge``, so check_os_upgrades judges Debian and RHEL
hosts alike. The running versus newest installed kernel is sources/kernel.py; the result
cache that makes a repeat run cheap is osop_checks.state's ``Cache``.
"""
from __future__ import annotations

import collections
import os
import time

from osop_checks.record import Record

# Bytes of a package manager's answer kept (apt-get -s writes two lines per package).
OUTPUT_LIMIT = 16 * 1024 * 1024


class Upgrade(Record):
    """One package that an upgrade would install: ``current`` is None for a new package."""

    def __init__(self, package, current, candidate, origins=None, arch="", security=False):
        self.package = package
        self.current = current
        self.candidate = candidate
        self.origins = [] if origins is None else origins
        self.arch = arch
        self.security = security

    @property
    def pocket(self):
        """The suite it comes from ('oldstable-security'): the security one where there is one,
        else the first origin's (for dnf: the repository)."""
        suites = [origin.rsplit("/", 1)[-1] for origin in self.origins]
        for suite in suites:
            if suite.endswith("-security"):
                return suite
        return suites[0] if suites else ""


class Pending(Record):
    """A package manager's answer: the upgrades and the packages held back from upgrading
    (``deferred``: Ubuntu's phased updates); ``cached_at`` the time of a cached answer."""

    def __init__(self, manager, upgrades=None, held=None, kept_back=None, removals=None,
                 deferred=None, cached_at=None):
        self.manager = manager
        self.upgrades = [] if upgrades is None else upgrades
        self.held = [] if held is None else held
        self.kept_back = [] if kept_back is None else kept_back
        self.removals = [] if removals is None else removals
        self.deferred = [] if deferred is None else deferred
        self.cached_at = cached_at

    def to_json(self):
        return {"manager": self.manager,
                "upgrades": [dict(vars(u), origins=list(u.origins)) for u in self.upgrades],
                "held": list(self.held), "kept_back": list(self.kept_back),
                "removals": list(self.removals), "deferred": list(self.deferred)}

    @classmethod
    def from_json(cls, data):
        data = dict(data)
        data["upgrades"] = [Upgrade(**u) for u in data.get("upgrades", [])]
        return cls(**data)


class Reboot(Record):
    """Why a reboot is needed (empty ``reasons``: it is not); ``note``: why it could not be
    told, where it could not."""

    def __init__(self, reasons=None, packages=None, note=""):
        self.reasons = [] if reasons is None else reasons
        self.packages = [] if packages is None else packages
        self.note = note

    @property
    def required(self):
        return bool(self.reasons)


class ListAge(collections.namedtuple("ListAge", "newest mtime")):
    """How old the package lists / repository metadata are: ``newest`` is a path, ``mtime`` its
    time (None: no lists at all)."""
    __slots__ = ()

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
