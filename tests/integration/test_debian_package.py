"""The Debian package, built once (`make deb`) and installed for real: `apt-get install
./osop-checks_*.deb` in fresh bookworm and trixie root filesystems resolves its dependencies
from Debian; there every check runs as nagios (--help, --version, one real case each), its
man page renders, and that release's `icinga2 daemon -C` loads the shipped commands through
`include <plugins-contrib>` with the example services. osop-checks-api's part: its system user,
its units installed but neither enabled nor started, and /etc/osop-checks/api.conf a conffile
that allows nothing."""
import configparser
import contextlib
import glob
import os
import re
import shutil
import subprocess

import pytest

from lab.peers import ROOT, debian_root, need, need_root
from lab.peers.debian_root import chroot
from tests import readme
from lab.peers.icinga2 import instantiated

pytestmark = pytest.mark.peer

RELEASES = ("bookworm", "trixie")
# Not dependencies of the package: what the test itself uses in the root (icinga2, man).
BASE_PACKAGES = ("icinga2-bin", "icinga2-common", "man-db")
PLUGINS = "/usr/lib/nagios/plugins"
EXAMPLES = "/usr/share/doc/osop-checks/examples"
STATES = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}
CHECKS = ("backup_age", "disk_partitions", "dyndns_match", "os_upgrades", "systemd_units",
          "three_copies", "tls_expiry")
# One real case each, as nagios in the root; (argv, the states it may end in).
CASES = {
    "backup_age": (["-p", "/usr/share/doc/osop-checks", "-w", "3650d", "-c", "3651d"], ["OK"]),
    "disk_partitions": (["-p", "/"], ["OK", "WARNING", "CRITICAL"]),
    "dyndns_match": (["-H", "localhost", "--expect", "127.0.0.1", "-t", "5"], list(STATES)),
    "os_upgrades": (["--no-cache"], ["OK", "WARNING", "CRITICAL"]),
    "systemd_units": ([], ["UNKNOWN"]),  # no systemd in a chroot: said in one line
    "three_copies": (["--source", "/usr/share/doc/osop-checks", "--copy", "a=/tmp/copy-a",
                      "--copy", "b=/tmp/copy-b"], list(STATES)),
    "tls_expiry": (["--file", "/tmp/leaf.pem", "-w", "20", "-c", "10"], ["OK"]),
}
ICINGA2_CONF = """
const PluginDir = "/usr/lib/nagios/plugins"
const PluginContribDir = "/usr/lib/nagios/plugins"
const ManubulonPluginDir = "/usr/lib/nagios/plugins"
const NodeName = "monitor.office.example"
const ZoneName = "master"
const TicketSalt = ""
include <itl>
include <plugins>
include <plugins-contrib>
include "/usr/share/osop-checks/icinga2/osop-checks.conf"
include "/usr/share/osop-checks/icinga2/nrpe-services.conf"
""" + "".join('include "%s/%s"\n' % (EXAMPLES, f) for f in (
    "example/zones.conf", "example/hosts.conf"))


@pytest.fixture(scope="session")
def deb_package(tmp_path_factory):
    """The .deb built once per session with `make deb` (its lintian run included)."""
    need("dpkg-buildpackage", "dh", "lintian", "git")
    work = tmp_path_factory.mktemp("deb")
    proc = subprocess.run(["make", "-s", "deb", "DIST=%s/dist" % work,
                           "DEBBUILD=%s/build" % work], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    debs = glob.glob(os.path.join(str(work), "dist", "osop-checks_*_all.deb"))
    assert len(debs) == 1, debs
    return debs[0], proc.stdout + proc.stderr


@contextlib.contextmanager
def installed_root(release, deb, tmp_path):
    """A fresh copy of a cached ``release`` root with the .deb installed by apt."""
    with debian_root.booted_copy(release, BASE_PACKAGES,
                                 str(tmp_path / ("debian-" + release))) as root:
        shutil.copy(deb, os.path.join(root, "tmp"))
        # README.md's own line, verbatim, run where the .deb is
        proc = chroot(root, "sh", "-ec", "cd /tmp && " + readme.shell_block("install-deb"),
                      timeout=900)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        yield root


def _prepare_cases(root):
    from lab.peers.tls import TestCA

    ca = TestCA(os.path.join(root, "tmp", "ca"))
    shutil.copy(ca.issue("leaf", days=90).chain_path, os.path.join(root, "tmp", "leaf.pem"))
    for copy in ("copy-a", "copy-b"):
        shutil.copytree(os.path.join(root, "usr/share/doc/osop-checks"),
                        os.path.join(root, "tmp", copy), symlinks=True)
    subprocess.run(["chmod", "-R", "a+rX", os.path.join(root, "tmp")], check=True)


@pytest.mark.parametrize("release", RELEASES)
def test_the_package_installs_and_every_check_runs_as_nagios(deb_package, release, tmp_path):
    need_root()
    need("debootstrap", "chroot", "mount")
    deb, _ = deb_package
    with installed_root(release, deb, tmp_path) as root:
        _prepare_cases(root)
        for check in CHECKS:
            plugin = "%s/check_%s" % (PLUGINS, check)
            name = check.upper()
            helped = chroot(root, plugin, "--help", user="nagios")
            assert helped.returncode == 3 and helped.stdout.startswith(
                "usage: check_%s " % check), (release, helped.stdout, helped.stderr)
            version = chroot(root, plugin, "--version", user="nagios")
            assert version.returncode == 3 and version.stdout.strip() == \
                "check_%s (osop-checks) 0.1.0" % check, (release, version.stdout)
            argv, states = CASES[check]
            ran = chroot(root, plugin, *argv, user="nagios")
            first = ran.stdout.splitlines()[0] if ran.stdout else ""
            match = re.match(r"%s (OK|WARNING|CRITICAL|UNKNOWN) - \S" % name, first)
            assert match and match.group(1) in states and STATES[match.group(1)] == \
                ran.returncode, (release, check, ran.returncode, ran.stdout, ran.stderr)
            assert ran.stderr == "" and "Traceback" not in ran.stdout, (release, ran.stderr)
            page = chroot(root, "man", "-P", "cat", "check_" + check)
            assert page.returncode == 0 and "--timeout" in page.stdout, (release, page.stderr)

        with open(os.path.join(root, "tmp", "osop-icinga2.conf"), "w") as handle:
            handle.write(ICINGA2_CONF)
        dump = ["--dump-objects"] if "--dump-objects" in chroot(
            root, "icinga2", "daemon", "--help").stdout else []
        checked = chroot(root, "icinga2", "daemon", "-C", *dump, "-c", "/tmp/osop-icinga2.conf",
                         timeout=300)
        output = checked.stdout + checked.stderr
        assert checked.returncode == 0, (release, output[-4000:])
        assert "warning/" not in output.lower(), (release, output[-4000:])
        assert instantiated(output).get("Service", 0) >= 690, (release, output[-2000:])
        assert os.path.exists(os.path.join(
            root, "usr/share/icinga2/include/plugins-contrib.d/osop-checks.conf"))


@pytest.mark.parametrize("release", RELEASES)
def test_the_package_prepares_osop_checks_api_and_starts_nothing(deb_package, release,
                                                                  tmp_path):
    need_root()
    need("debootstrap", "chroot", "mount")
    deb, _ = deb_package
    with installed_root(release, deb, tmp_path) as root:
        # a system user and group of its own, no login, no home
        user = chroot(root, "getent", "passwd", "osop-checks-api").stdout.strip().split(":")
        assert len(user) == 7 and 0 < int(user[2]) < 1000, (release, user)
        assert user[5] == "/nonexistent" and user[6].endswith("nologin"), (release, user)
        assert chroot(root, "getent", "group", "osop-checks-api").returncode == 0
        # the units where systemd finds them, enabled nowhere (no symlink in /etc/systemd)
        for unit in ("osop-checks-api.service", "osop-checks-api.socket"):
            assert os.path.exists(os.path.join(root, "lib/systemd/system", unit)), unit
        links = subprocess.run(["find", os.path.join(root, "etc/systemd"), "-name",
                                "osop-checks-api*"], capture_output=True, text=True).stdout
        assert links == "", (release, links)
        # the default api.conf: a conffile, every setting commented out
        conffiles = chroot(root, "dpkg-query", "-W", "-f", "${Conffiles}", "osop-checks")
        assert "/etc/osop-checks/api.conf " in conffiles.stdout, conffiles.stdout
        parser = configparser.ConfigParser()
        assert parser.read(os.path.join(root, "etc/osop-checks/api.conf"))
        assert all(not parser.items(section, raw=True) for section in parser.sections())
        assert parser.defaults() == {}
        # upgrading (reinstalling) keeps the admin's api.conf
        with open(os.path.join(root, "etc/osop-checks/api.conf"), "a") as handle:
            handle.write("[check_disk_partitions]\npaths = /srv\n")
        again = chroot(root, "dpkg", "-i", "--force-confold", "/tmp/" + os.path.basename(deb),
                       timeout=300)
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
        with open(os.path.join(root, "etc/osop-checks/api.conf")) as handle:
            assert handle.read().endswith("paths = /srv\n")


def test_lintian_reports_no_errors_nor_warnings(deb_package):
    deb, output = deb_package
    tags = [line for line in output.splitlines() if re.match(r"[EW]: ", line)]
    assert tags == [], tags


def test_the_package_ships_the_graphs_where_the_graphite_module_reads_them(deb_package):
    """Every generated graph template (icingaweb2-module-graphite reads the subfolders of
    /etc/icingaweb2/modules/graphite/templates) and Grafana dashboard is in the package."""
    from lab.peers import icinga2

    deb, _ = deb_package
    listed = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True,
                            check=True).stdout
    shipped = {line.split()[-1].lstrip(".") for line in listed.splitlines()}
    wanted = set()
    for path in icinga2.graphs().outputs():
        kind, name = os.path.basename(os.path.dirname(path)), os.path.basename(path)
        if name.endswith(".ini"):
            wanted.add("/etc/icingaweb2/modules/graphite/templates/osop-checks/" + name)
        else:
            wanted.add("/usr/share/osop-checks/grafana/%s/%s" % (kind, name))
    assert len(wanted) == 3 * len(CHECKS) + 2
    assert wanted <= shipped, sorted(wanted - shipped)
