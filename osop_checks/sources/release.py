"""The running release and the end of its security support, offline.

The release is read from /etc/os-release (ID, ID_LIKE, VERSION_ID, VERSION_CODENAME,
UBUNTU_CODENAME); its dates from the distributions' own tables in distro-info-data
(/usr/share/distro-info/debian.csv and ubuntu.csv), which Debian and Ubuntu update with every
point release. ``root`` reads both below another root directory (a container).

Debian: ``eol`` ends the security team's regular support, ``eol-lts`` the LTS team's after it
(fewer packages); ``eol-elts`` is Freexian's paid Extended LTS and not counted. Ubuntu: the end
of standard support is ``eol-server`` (``eol`` where there is none); ESM (``eol-esm``) needs an
Ubuntu Pro subscription, like ELTS, so Ubuntu has no LTS phase here.
"""
import datetime
import os

from osop_checks import bounded

OS_RELEASE_LIMIT = 64 * 1024  # bytes; the file is a dozen lines
TABLE_LIMIT = 1024 * 1024      # bytes; debian.csv is 2 KiB, ubuntu.csv 5 KiB
DISTRO_INFO = "/usr/share/distro-info"


class Release:
    """The running release: ``distro`` (debian, ubuntu, or another ID), ``version``
    (VERSION_ID, '' on testing/unstable), ``codename``, ``name`` (PRETTY_NAME)."""

    def __init__(self, distro, version, codename, name, like=()):
        self.distro, self.version, self.codename, self.name = distro, version, codename, name
        self.like = tuple(like)

    def __eq__(self, other):
        return type(other) is type(self) and vars(other) == vars(self)

    def __repr__(self):
        return "Release(%r, %r, %r, %r, %r)" % (self.distro, self.version, self.codename,
                                                self.name, self.like)


class Support:
    """A release's support as its distribution's table has it: ``label`` ('Debian 11
    (bullseye)'), the dates (datetime.date, None where the table has none) when regular
    security support ends (``eol``) and LTS ends (``lts``, None: no LTS phase); ``note``
    says why nothing is known where nothing is (``label`` None then)."""

    def __init__(self, label=None, eol=None, lts=None, note="", source=""):
        self.label, self.eol, self.lts, self.note, self.source = label, eol, lts, note, source

    def __eq__(self, other):
        return type(other) is type(self) and vars(other) == vars(self)

    def __repr__(self):
        return "Support(%s)" % ", ".join("%s=%r" % kv for kv in vars(self).items())


def under(root, path):
    return os.path.join(root, path.lstrip("/")) if root else path


def parse_os_release(text):
    """os-release's KEY=value lines (quoted as a shell would, without expansion) as a
    Release."""
    import shlex

    fields = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            words = shlex.split(value)
        except ValueError:
            continue
        fields[key.strip()] = words[0] if words else ""
    distro = fields.get("ID", "linux").lower()
    codename = fields.get("UBUNTU_CODENAME") if distro != "ubuntu" else None
    return Release(distro, fields.get("VERSION_ID", ""),
                   codename or fields.get("VERSION_CODENAME", ""),
                   fields.get("PRETTY_NAME", fields.get("NAME", distro)),
                   fields.get("ID_LIKE", "").lower().split())


def read_os_release(root=None):
    """The Release of the system (below ``root``): /etc/os-release, else
    /usr/lib/os-release, as systemd reads them."""
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        path = under(root, path)
        if root and os.path.islink(path) and os.readlink(path).startswith("/"):
            path = under(root, os.readlink(path))  # the root's file, not this host's
        try:
            return parse_os_release(bounded.read_text(path, OS_RELEASE_LIMIT))
        except FileNotFoundError:
            continue
    return None


def table_of(release):
    """Which distro-info table speaks of ``release``: 'debian', 'ubuntu' or None. A
    derivative (Raspbian, Linux Mint) is found through ID_LIKE and its base codename."""
    for distro in (release.distro,) + release.like:
        if distro in ("debian", "ubuntu"):
            return distro
    return None


def _date(text):
    try:
        return datetime.date.fromisoformat(text.strip()) if text and text.strip() else None
    except ValueError:
        return None


def parse_table(text, distro, release):
    """The Support of ``release`` from distro-info-data's csv ``text`` of ``distro``; a
    Support with a ``note`` when the table does not list it or has not the expected columns."""
    import csv  # only where it is read

    rows = list(csv.reader(text.splitlines()))
    if not rows or rows[0][:3] != ["version", "codename", "series"] or "eol" not in rows[0]:
        return Support(note="%s.csv has not the columns of distro-info-data "
                            "(version,codename,series,...,eol)" % distro)
    header = rows[0]
    for row in rows[1:]:
        entry = dict(zip(header, row))
        version = entry.get("version", "").split(" ")[0]
        matches = (release.codename and entry.get("series") == release.codename) or (
            not release.codename and release.version and version == release.version)
        if not matches:
            continue
        label = "%s %s (%s)" % (distro.capitalize(), entry.get("version") or "?",
                                entry.get("series"))
        if distro == "ubuntu":
            return Support(label, _date(entry.get("eol-server") or entry.get("eol")), None,
                           source=distro)
        return Support(label, _date(entry.get("eol")), _date(entry.get("eol-lts")),
                       source=distro)
    return Support(note="%s.csv does not list %s (an older distro-info-data?)" % (
        distro, release.codename or release.version or release.name))


def support(root=None):
    """The Support of the system's release (below ``root``) from its own distro-info-data;
    a Support with a note where it cannot be told."""
    release = read_os_release(root)
    if release is None:
        return Support(note="no /etc/os-release")
    distro = table_of(release)
    if distro is None:
        return Support(note="distro-info-data knows Debian and Ubuntu only, not %s"
                            % release.name)
    path = under(root, "%s/%s.csv" % (DISTRO_INFO, distro))
    try:
        text = bounded.read_text(path, TABLE_LIMIT)
    except FileNotFoundError:
        return Support(note="no %s: install distro-info-data" % path)
    return parse_table(text, distro, release)
