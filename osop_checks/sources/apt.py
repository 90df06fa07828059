"""apt (Debian, Ubuntu): pending upgrades from a simulation, held packages, list age, reboot.

``apt-get -s -o Debug::NoLocking=1 dist-upgrade`` computes what an upgrade would do without
taking the dpkg lock and without changing anything; ``parse_simulation`` reads its ``Inst``
lines. Everything else is read from files: the dpkg status (holds), /var/lib/apt/lists (age),
/run/reboot-required (+ .pkgs) and /boot (installed kernels). ``root`` reads all of them below
another root directory (a container), as apt's own ``-o Dir=`` does.
"""
import logging
import os
import re

from osop_checks import bounded, proc
from osop_checks.sources.packages import (OUTPUT_LIMIT, ListAge, Pending, Reboot, Upgrade,
                                           newest_file)

log = logging.getLogger("nagiosplugin")

STATUS_LIMIT = 32 * 1024 * 1024  # bytes; the dpkg status of a big host is a few MiB

MODES = ("dist-upgrade", "upgrade")

# Inst NAME [CURRENT] (CANDIDATE ORIGIN, ORIGIN [ARCH]) [...]
_INST = re.compile(
    r"^Inst (?P<package>\S+)(?: \[(?P<current>[^\]]*)\])? "
    r"\((?P<candidate>\S+)(?: (?P<origins>.*?))? \[(?P<arch>[^\]]+)\]\)")
_REMV = re.compile(r"^Remv (?P<package>\S+)")
_SUMMARY = re.compile(
    r"^(\d+) upgraded, (\d+) newly installed, (\d+) to remove and (\d+) not upgraded\.$")


def is_security_origin(origin):
    """'Debian-Security:12/stable-security', 'Ubuntu:22.04/jammy-security': a security pocket.

    An origin is apt's 'Label:Version/Archive'; the label Debian-Security or an archive
    (suite) ending in -security marks security updates, as Monitoring Plugins' check_apt
    has it."""
    label, _, rest = origin.partition(":")
    suite = rest.rsplit("/", 1)[-1] if rest else origin
    return label.strip() == "Debian-Security" or suite.strip().endswith("-security")


def parse_simulation(text):
    """The ``Inst`` lines of ``apt-get -s`` output as a list of Upgrade (in apt's order).

    Raises proc.LayoutError when the output has no summary line ("N upgraded, ...") or when the
    number of Inst lines differs from what the summary says: a layout this parser does not
    know, never a silent "0 upgrades"."""
    upgrades = []
    summary = None
    for line in text.splitlines():
        if line.startswith("Inst "):
            match = _INST.match(line)
            if not match:
                raise proc.LayoutError("cannot read this line of apt-get output: %s" % line[:200])
            origins = [o.strip() for o in (match.group("origins") or "").split(", ")
                       if o.strip()]
            upgrades.append(Upgrade(
                package=match.group("package"), current=match.group("current"),
                candidate=match.group("candidate"), origins=origins,
                arch=match.group("arch"),
                security=any(is_security_origin(o) for o in origins)))
        else:
            match = _SUMMARY.match(line.strip())
            if match:
                summary = [int(n) for n in match.groups()]
    if summary is None:
        raise proc.LayoutError("apt-get printed no 'N upgraded, N newly installed ...' line; "
                               "the layout of its output has changed")
    if summary[0] + summary[1] != len(upgrades):
        raise proc.LayoutError("apt-get announced %d upgraded and %d newly installed packages but "
                               "listed %d Inst lines" % (summary[0], summary[1], len(upgrades)))
    return upgrades


def _section(text, heading):
    """Package names listed under an apt-get heading ('The following ... kept back:')."""
    names = []
    inside = False
    for line in text.splitlines():
        if line.startswith(heading):
            inside = True
        elif inside and line.startswith("  "):
            names.extend(line.split())
        else:
            inside = False
    return names


def parse_kept_back(text):
    """Packages under 'The following packages have been kept back:' (held or blocked)."""
    return _section(text, "The following packages have been kept back")


def parse_deferred(text):
    """Ubuntu's phased updates, held back for now on this host (not counted as upgrades, as
    apt does not install them either)."""
    return _section(text, "The following upgrades have been deferred due to phasing")


def parse_removals(text):
    return [m.group("package") for m in map(_REMV.match, text.splitlines()) if m]


def parse_holds(text):
    """Names of packages marked 'hold' in a dpkg status file (what apt-mark showhold says)."""
    held = []
    package = None
    for line in text.splitlines():
        if line.startswith("Package:"):
            package = line.split(":", 1)[1].strip()
        elif line.startswith("Status:") and package:
            if line.split(":", 1)[1].split()[:1] == ["hold"]:
                held.append(package)
        elif not line.strip():
            package = None
    return sorted(set(held))


# -- files and commands -------------------------------------------------------------------

def under(root, path):
    return os.path.join(root, path.lstrip("/")) if root else path


def apt_argv(command, mode, root=None):
    """The simulation command line. With ``root`` and the plain apt-get, apt reads its
    configuration, lists and dpkg status below ``root`` (-o Dir=ROOT) and writes no binary
    cache there (the root's own apt may be another version); a command such as
    'chroot ROOT apt-get' is taken as given."""
    if mode not in MODES:
        raise ValueError("unknown upgrade mode %r" % mode)
    argv = list(command) + ["-s", "-o", "Debug::NoLocking=1"]
    if root and os.path.basename(command[0]) == "apt-get" and len(command) == 1:
        argv += ["-o", "Dir=%s" % root,
                 "-o", "Dir::State::status=%s" % under(root, "/var/lib/dpkg/status"),
                 "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache="]
    return argv + [mode]


def simulate(command=("apt-get",), mode="dist-upgrade", root=None, timeout=None):
    """Run the simulation and return its stdout (never takes the lock, changes nothing)."""
    return proc.run(apt_argv(command, mode, root), timeout=timeout,
                    limit=OUTPUT_LIMIT).stdout


def status_path(root=None):
    return under(root, "/var/lib/dpkg/status")


def read_holds(root=None):
    try:
        return parse_holds(bounded.read_text(status_path(root), STATUS_LIMIT))
    except OSError as exc:
        log.warning("cannot read the dpkg status: %s", exc)
        return []


def pending(command=("apt-get",), mode="dist-upgrade", root=None, timeout=None):
    """Ask apt: the upgrades, the held and kept-back packages, and the removals."""
    text = simulate(command, mode, root, timeout)
    log.debug("apt-get output:\n%s", text)
    return Pending("apt", upgrades=parse_simulation(text), held=read_holds(root),
                   kept_back=parse_kept_back(text), removals=parse_removals(text),
                   deferred=parse_deferred(text))


def cache_inputs(root=None):
    """The files whose change changes apt's answer: the dpkg status, the package lists, the
    sources and pinning configuration."""
    return [under(root, p) for p in (
        "/var/lib/dpkg/status", "/var/lib/apt/lists", "/var/lib/apt/extended_states",
        "/etc/apt/sources.list", "/etc/apt/sources.list.d", "/etc/apt/preferences",
        "/etc/apt/preferences.d", "/etc/apt/apt.conf.d")]


def list_age(root=None):
    """The newest package list in /var/lib/apt/lists, or apt-daily's
    /var/lib/apt/periodic/update-success-stamp where newer.

    apt replaces a list only when the mirror has a new one, and gives it the mirror's
    Last-Modified time; Debian's and Ubuntu's -updates and -security suites are republished
    several times a day, so after a successful update the newest list is hours old at most.
    lists/partial is not taken: apt touches it on every update, a failed one too."""
    lists = under(root, "/var/lib/apt/lists")
    candidates = []
    try:
        with os.scandir(lists) as entries:
            for entry in entries:
                if entry.name == "lock" or entry.name.startswith("."):
                    continue
                if entry.is_file(follow_symlinks=False):
                    candidates.append(entry.path)
    except OSError:
        pass
    if not candidates:
        return ListAge(None, None)
    candidates.append(under(root, "/var/lib/apt/periodic/update-success-stamp"))
    return newest_file(candidates)


def reboot_required(root=None):
    """Debian's /run/reboot-required flag file and the packages named in its .pkgs file."""
    flag = under(root, "/run/reboot-required")
    if not os.path.exists(flag):
        return Reboot()
    packages = []
    try:
        packages = sorted(set(line.strip() for line in bounded.read_text(
            flag + ".pkgs").splitlines() if line.strip()))
    except OSError:
        pass
    return Reboot(reasons=["%s exists" % flag], packages=packages)
