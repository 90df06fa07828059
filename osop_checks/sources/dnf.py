"""dnf / yum (RHEL, Fedora, Alma, Rocky): pending upgrades, security advisories, reboot.

``dnf -q -C check-update`` lists the upgrades (exit 100 when there are some) from the cached
metadata only (-C: no download, nothing changed); ``dnf -q -C updateinfo list --security``
names the packages that security advisories update; ``needs-restarting -r`` (dnf-utils /
yum-utils) exits 1 when a reboot is required. The metadata age is the newest repomd.xml or
.solv file under /var/cache/dnf (or /var/cache/yum).
"""
import glob
import logging
import os
import re

from osop_checks import proc
from osop_checks.sources.packages import OUTPUT_LIMIT, Pending, Reboot, Upgrade, newest_file

log = logging.getLogger("nagiosplugin")

ARCHES = frozenset("x86_64 i686 i386 noarch aarch64 ppc64le s390x armv7hl src".split())
_NEVRA = re.compile(r"^(?P<name>.+)-(?P<version>[^-]+)-(?P<release>[^-]+)\.(?P<arch>[^.]+)$")


def split_nevra(text):
    """'openssl-libs-1:3.0.7-25.el9_3.x86_64' -> ('openssl-libs', '1:3.0.7-25.el9_3', 'x86_64')."""
    match = _NEVRA.match(text)
    if not match or match.group("arch") not in ARCHES:
        return None
    return (match.group("name"), "%s-%s" % (match.group("version"), match.group("release")),
            match.group("arch"))


def parse_check_update(text):
    """``dnf -q check-update`` as a list of Upgrade (security flags unset).

    Rows are 'name.arch  version  repo'; a long name wraps the rest onto the next line; the
    'Obsoleting Packages' section that may follow is not a list of upgrades."""
    upgrades = []
    tokens = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("Obsoleting Packages"):
            break
        if stripped.startswith(("Last metadata expiration", "Security:")):
            continue
        tokens.extend(stripped.split())
        if len(tokens) < 3:
            continue
        if len(tokens) > 3:
            raise proc.LayoutError("cannot read this line of dnf check-update output: %s"
                                   % stripped[:200])
        name_arch, version, repo = tokens
        tokens = []
        name, dot, arch = name_arch.rpartition(".")
        if not dot or arch not in ARCHES:
            raise proc.LayoutError("cannot read this line of dnf check-update output: %s"
                                   % stripped[:200])
        upgrades.append(Upgrade(package=name, current="", candidate=version, origins=[repo],
                                arch=arch))
    if tokens:
        raise proc.LayoutError("dnf check-update output ends in an incomplete row: %s"
                               % " ".join(tokens)[:200])
    return upgrades


def parse_updateinfo(text):
    """``dnf updateinfo list --security`` as {(name, arch): advisory id}.

    dnf 4 and yum print 'ADVISORY  Severity/Sec.  nevra'; dnf 5 prints a table whose header
    names the columns (Name, Type, Severity, Package, Issued)."""
    found = {}
    column = None
    for line in text.splitlines():
        fields = line.split()
        if not fields or line.startswith(("Last metadata expiration", "Updating Subscription")):
            continue
        if fields[0] == "Name" and "Package" in fields:
            column = fields.index("Package")
            continue
        index = column if column is not None else 2
        if len(fields) <= index:
            raise proc.LayoutError("cannot read this line of dnf updateinfo output: %s"
                                   % line.strip()[:200])
        nevra = split_nevra(fields[index])
        if nevra is None:
            raise proc.LayoutError("cannot read this line of dnf updateinfo output: %s"
                                   % line.strip()[:200])
        found[(nevra[0], nevra[2])] = fields[0]
    return found


def classify(upgrades, advisories):
    """Mark the upgrades that a security advisory covers (and name the advisory)."""
    for upgrade in upgrades:
        advisory = advisories.get((upgrade.package, upgrade.arch))
        if advisory:
            upgrade.security = True
            upgrade.origins = upgrade.origins + [advisory]
    return upgrades


def pending(command=("dnf",), timeout=None):
    """Ask dnf from its cached metadata (-C): upgrades, then the security advisories."""
    base = list(command) + ["-q", "-C"]
    updates = proc.run(base + ["check-update"], timeout=timeout, ok_codes=(0, 100),
                       limit=OUTPUT_LIMIT).stdout
    log.debug("dnf check-update output:\n%s", updates)
    upgrades = parse_check_update(updates)
    if upgrades:
        info = proc.run(base + ["updateinfo", "list", "--security"], timeout=timeout,
                        limit=OUTPUT_LIMIT).stdout
        log.debug("dnf updateinfo output:\n%s", info)
        classify(upgrades, parse_updateinfo(info))
    return Pending("dnf", upgrades=upgrades)


def needs_restarting(command=("needs-restarting",), timeout=None):
    """``needs-restarting -r``: exit 1 means a reboot is required, 0 that it is not."""
    result = proc.run(list(command) + ["-r"], timeout=timeout, ok_codes=(0, 1))
    if result.returncode == 1:
        packages = sorted(set(
            m.group(1) for m in re.finditer(r"^\s*\*\s*(\S+)", result.stdout, re.M)))
        return Reboot(reasons=["needs-restarting -r: reboot is required"], packages=packages)
    return Reboot()


CACHE_DIRS = ("/var/cache/dnf", "/var/cache/yum", "/var/cache/libdnf5")


def metadata_age(root=None):
    """The newest repository metadata (repomd.xml, .solv) dnf or yum has cached."""
    paths = []
    for base in CACHE_DIRS:
        base = os.path.join(root, base.lstrip("/")) if root else base
        for pattern in ("*.solv", "*/repodata/repomd.xml", "*/*/repodata/repomd.xml"):
            paths.extend(glob.glob(os.path.join(base, pattern)))
    return newest_file(paths)


def cache_inputs(root=None):
    """The rpm database and dnf's metadata cache: either changing changes dnf's answer."""
    paths = ["/var/lib/rpm", "/usr/lib/sysimage/rpm", "/etc/yum.repos.d", "/etc/dnf/dnf.conf"]
    paths += list(CACHE_DIRS)
    return [os.path.join(root, p.lstrip("/")) if root else p for p in paths]
