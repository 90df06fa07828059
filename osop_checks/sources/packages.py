"""What every package manager source returns.

apt (sources/apt.py) and dnf (sources/dnf.py) both answer with a ``Pending`` holding
``Upgrade``s, a ``Reboot`` and a ``ListAge``, so check_os_upgrades judges Debian and RHEL
hosts alike. The running versus newest installed kernel is sources/kernel.py; the result
cache that makes a repeat run cheap is osop_checks.state's ``Cache``.
"""
from __future__ import annotations

import dataclasses
import os
import time

# Bytes of a package manager's answer kept (apt-get -s writes two lines per package).
OUTPUT_LIMIT = 16 * 1024 * 1024


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
