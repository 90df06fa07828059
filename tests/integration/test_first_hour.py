"""An admin's first hour with the package, as docs/icinga2.md and docs/api-security.md tell it.

In fresh bookworm and trixie roots with Debian's icinga2 (2.13 and 2.14.6) and its sample
config, each in a network namespace of its own: the .deb built by `make deb` installed with
README.md's line, then the docs' package-path shell blocks run verbatim as root (extracted
from the Markdown as the README install test does): Debian's clashing sample rules out, the
one `include` line, a host file, `icinga2 api setup`, `icinga2 daemon -C`; then the daemon's
blocks (its key pair, the CSR signed by Icinga's CA, the socket) and, on 2.14, the API
commands for the host. A chroot has no systemd: `systemctl` is a stand-in in /usr/local/sbin
(root's PATH on Debian) that starts the daemon as the unit would (its ExecStart, as
osop-checks-api) and leaves starting icinga2 to the test. Then icinga2 runs as nagios, its
checks forced for a few rounds through its API, and the disk, backup, upgrades and TLS
services are read back (and, on 2.14, the same through osop-checks-api with the health
service); icinga2's log has no warning but the documented "does not match anywhere".
Also: nothing an admin includes is under /usr/share/doc, /var/cache/osop-checks belongs to
nagios after the install, and check_os_upgrades' second run as nagios is answered from it.
"""
import contextlib
import os
import re
import shutil
import subprocess
import time

import pytest

from lab.peers import ROOT, debian_root, need, need_root
from tests import readme
from tests.integration.test_debian_package import deb_package  # noqa: F401 (a fixture)

pytestmark = pytest.mark.peer

# What `apt-get install icinga2` brings an admin (its recommended plugins for Debian's sample
# services), and openssl for the key-pair recipe.
PACKAGES = ("icinga2", "monitoring-plugins-basic", "openssl")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # root's, on Debian
ICINGA2_DOCS = os.path.join(ROOT, "docs", "icinga2.md")
API_DOCS = os.path.join(ROOT, "docs", "api-security.md")
HOST = "icinga-server"
# The stand-in for systemctl: what a chroot lacks of systemd, nothing more.
SYSTEMCTL = r"""#!/bin/sh
# test stand-in (tests/integration/test_first_hour.py): records each call; starts
# osop-checks-api as its unit would; icinga2 is started by the test
echo "$*" >> /var/log/systemctl-calls
case "$*" in
  "enable --now osop-checks-api.socket")
    install -d -o osop-checks-api -g osop-checks-api -m 0700 /var/lib/osop-checks-api \
        /var/cache/osop-checks-api
    exec_start=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/osop-checks-api.service)
    cd / && setsid setpriv --reuid=osop-checks-api --regid=osop-checks-api --init-groups \
        $exec_start -v >>/var/log/osop-checks-api.log 2>&1 < /dev/null &
    echo $! > /run/osop-checks-api.pid
    # systemd holds the socket from here on: wait until the daemon has it
    for i in $(seq 120); do
      grep -q "listening on" /var/log/osop-checks-api.log && break
      sleep 0.5
    done
    ;;
  "reload osop-checks-api")
    kill -HUP "$(cat /run/osop-checks-api.pid)"
    sleep 1
    ;;
esac
exit 0
"""


def block(path, name):
    with open(path) as handle:
        return readme.shell_block(name, handle.read())


class Admin:
    """A fresh root in a network namespace of its own (icinga2's API and the daemon bind
    loopback ports there, never this machine's)."""

    def __init__(self, root, release):
        self.root, self.release = root, release
        self.netns = "osop-first-%d-%s" % (os.getpid(), release)
        self.icinga2 = None

    def path(self, inside):
        return os.path.join(self.root, inside.lstrip("/"))

    def run(self, *argv, user=None, timeout=300):
        cmd = ["ip", "netns", "exec", self.netns, "chroot", self.root] + (
            ["runuser", "-u", user, "--"] if user else []) + list(argv)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={
            "PATH": PATH, "LC_ALL": "C.UTF-8", "HOME": "/root", "TERM": "dumb",
            "DEBIAN_FRONTEND": "noninteractive"})

    def sh(self, script, cwd="/root"):
        """``script`` run by root's sh, stopping at the first failing command."""
        done = self.run("sh", "-ec", "cd %s\n%s" % (cwd, script))
        assert done.returncode == 0, (self.release, script, done.stdout[-3000:],
                                      done.stderr[-3000:])
        return done

    def start_icinga2(self):
        self.run("/usr/lib/icinga2/prepare-dirs", "/etc/default/icinga2")
        log = open(self.path("/var/log/icinga2-foreground.log"), "ab")
        self.icinga2 = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "chroot", self.root, "icinga2", "daemon"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={"PATH": PATH, "LC_ALL": "C.UTF-8"})
        log.close()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.icinga2.poll() is None, self.log()[-4000:]
            try:
                if self.api("GET", "/v1/status/IcingaApplication").ok:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError("icinga2's API did not come up:\n" + self.log()[-4000:])

    def api(self, method, path, body=None):
        import requests
        import urllib3

        from lab.peers.netns import in_namespace

        urllib3.disable_warnings()
        with open(self.path("/etc/icinga2/conf.d/api-users.conf")) as handle:
            password = re.search(r'password = "([^"]+)"', handle.read()).group(1)
        headers = {"Accept": "application/json"}
        if method == "GET" and body is not None:
            method, headers["X-HTTP-Method-Override"] = "POST", "GET"
        return in_namespace(self.netns, lambda: requests.request(
            method, "https://127.0.0.1:5665" + path, json=body, auth=("root", password),
            verify=False, timeout=30, headers=headers))

    def rounds(self, count=2, timeout=180):
        """``count`` check rounds of every service, each forced and waited for; the
        services of HOST as {name: attrs} after the last."""
        for _ in range(count):
            since = time.time()
            forced = self.api("POST", "/v1/actions/reschedule-check", {
                "type": "Service", "filter": "host.name == \"%s\"" % HOST, "force": True,
                "next_check": since})
            assert forced.ok, forced.text
            deadline = time.monotonic() + timeout
            while True:
                services = self.services()
                pending = [n for n, a in services.items() if not a["last_check_result"]
                           or a["last_check_result"]["execution_end"] < since]
                if not pending:
                    break
                assert time.monotonic() < deadline, (self.release, pending)
                time.sleep(0.5)
        return services

    def services(self):
        reply = self.api("GET", "/v1/objects/services", {
            "attrs": ["name", "check_command", "last_check_result"],
            "filter": "host.name == \"%s\"" % HOST})
        assert reply.ok, reply.text
        return {s["attrs"]["name"]: s["attrs"] for s in reply.json()["results"]}

    def log(self):
        with open(self.path("/var/log/icinga2/icinga2.log"), errors="replace") as handle:
            return handle.read()

    def stop(self):
        if self.icinga2 and self.icinga2.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.icinga2.pid, 15)
            try:
                self.icinga2.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.icinga2.pid, 9)
        # what else runs in the root: the daemon, icinga2's own children
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    if os.readlink("/proc/%s/root" % entry) == self.root:
                        os.kill(int(entry), 9)


@contextlib.contextmanager
def admin_root(release, deb, tmp_path):
    from lab.peers import netns

    with debian_root.booted_copy(release, PACKAGES,
                                 str(tmp_path / ("first-" + release))) as root:
        admin = Admin(root, release)
        netns.ip("netns", "add", admin.netns)
        try:
            netns.ip("netns", "exec", admin.netns, "ip", "link", "set", "lo", "up")
            # as Debian's installer leaves a host: its name resolves (hostname -f, NodeName)
            with open(admin.path("/etc/hosts"), "w") as handle:
                handle.write("127.0.0.1\tlocalhost\n127.0.1.1\t%s.first-hour.test %s\n"
                             "::1\tlocalhost ip6-localhost\n" % (
                                 os.uname().nodename.split(".")[0],
                                 os.uname().nodename.split(".")[0]))
            with open(admin.path("/usr/local/sbin/systemctl"), "w") as handle:
                handle.write(SYSTEMCTL)
            os.chmod(admin.path("/usr/local/sbin/systemctl"), 0o755)
            shutil.copy(deb, admin.path("/tmp"))
            admin.sh(readme.shell_block("install-deb"), cwd="/tmp")
            yield admin
        finally:
            admin.stop()
            netns.remove_namespace(admin.netns)


def state_of(attrs):
    result = attrs["last_check_result"]
    return int(result["state"]), result["output"]


@pytest.mark.parametrize("release", ("bookworm", "trixie"))
def test_the_first_hour_with_the_package(deb_package, release, tmp_path):  # noqa: F811
    need_root()
    need("debootstrap", "chroot", "mount", "ip")
    deb, _ = deb_package
    with admin_root(release, deb, tmp_path) as admin:
        # what the package put where: nothing an admin includes under /usr/share/doc
        files = admin.run("dpkg", "-L", "osop-checks").stdout.split()
        included = set(re.findall(r'include "([^"]+)"', open(ICINGA2_DOCS).read()))
        assert included >= {"/usr/share/osop-checks/icinga2/osop-checks.conf",
                            "/usr/share/osop-checks/icinga2/commands-api.conf",
                            "/usr/share/osop-checks/icinga2/nrpe-services.conf"}, included
        for path in included | {"/usr/share/icinga2/include/plugins-contrib.d/osop-checks.conf",
                                "/usr/share/osop-checks/icinga2/templates.conf",
                                "/usr/share/osop-checks/icinga2/services.conf",
                                "/lib/systemd/system/osop-checks-api.service",
                                "/lib/systemd/system/osop-checks-api.socket"}:
            assert path in files and not path.startswith("/usr/share/doc/"), path
        assert not [f for f in files if f.startswith("/usr/share/doc/") and f.endswith(
            ("templates.conf", "/services.conf", "commands-api.conf"))], files
        # the cache of check_os_upgrades: nagios' from the install on
        cache = os.stat(admin.path("/var/cache/osop-checks"))
        owner = admin.run("stat", "-c", "%U:%G %a", "/var/cache/osop-checks").stdout.split()
        assert owner == ["nagios:nagios", "755"], (release, owner, cache)

        # docs/icinga2.md, "With the Debian package", verbatim
        admin.sh(block(ICINGA2_DOCS, "package-conf"))
        admin.sh(block(ICINGA2_DOCS, "package-hosts"))
        # docs/api-security.md, "The daemon's key pair", verbatim
        for name in ("api-keypair", "api-sign", "api-enable"):
            admin.sh(block(API_DOCS, name))
        api = release != "bookworm"  # ifw-api needs Icinga 2.14
        if api:
            admin.sh(block(ICINGA2_DOCS, "api-icinga"))
            admin.sh(block(ICINGA2_DOCS, "api-icinga-ec"))
        modes = admin.run("stat", "-c", "%n %U:%G %a", "/etc/osop-checks/api.key",
                          "/etc/osop-checks/api.crt", "/etc/osop-checks/ca.crt").stdout
        assert modes.split("\n")[:3] == [
            "/etc/osop-checks/api.key root:osop-checks-api 640",
            "/etc/osop-checks/api.crt root:root 644",
            "/etc/osop-checks/ca.crt root:root 644"], modes
        health = admin.run("osop-checks-api", "--health", "--node",
                           admin.run("hostname", "-f").stdout.strip(), "--cert",
                           "/etc/osop-checks/api.crt", "--key", "/etc/osop-checks/api.key",
                           "--ca", "/etc/osop-checks/ca.crt")
        assert health.returncode == 0 and health.stdout.startswith(
            "OSOP_CHECKS_API OK - osop-checks-api answers on 127.0.0.1:5668"), (
            release, health.stdout, health.stderr,
            open(admin.path("/var/log/osop-checks-api.log")).read()[-2000:])

        admin.start_icinga2()
        services = admin.rounds(3)
        expected = {"disk /": "DISK_PARTITIONS", "backup etc": "BACKUP_AGE",
                    "upgrades": "OS_UPGRADES", "tls icinga api": "TLS_EXPIRY"}
        if api:
            expected["osop-checks-api"] = "OSOP_CHECKS_API"
        ours = {name for name, attrs in services.items()
                if attrs["check_command"].startswith("osop_")}
        # Debian's sample rules still give the host ping4 and ssh; no systemd (osop_skip)
        assert ours == set(expected), (release, sorted(services))
        for name, label in expected.items():
            state, output = state_of(services[name])
            assert output.startswith(label + " "), (release, name, output)
            assert state in ((0, 1, 2) if name in ("disk /", "upgrades") else (0,)), (
                release, name, state, output)
            command = services[name]["check_command"]
            assert command.endswith("_api") == (api and name != "osop-checks-api"), (
                release, name, command)

        log = admin.log()
        assert "is not defined" not in log and "re-defined" not in log, log[-4000:]
        warnings = [line for line in log.splitlines()
                    if "warning/" in line or "critical/" in line]
        unexplained = [line for line in warnings if not re.search(
            r"warning/ApplyRule: Apply rule '[^']*' \(in /usr/share/osop-checks/icinga2/"
            r"[\w-]+\.conf: [\d:-]+\) for type '\w+' does not match anywhere!", line)]
        assert not unexplained, (release, unexplained)

        # the cache: Icinga's runs (forked as nagios on 2.13) and two by hand as nagios
        first = admin.run("/usr/lib/nagios/plugins/check_os_upgrades", "-vv", user="nagios")
        second = admin.run("/usr/lib/nagios/plugins/check_os_upgrades", "-vv", user="nagios")
        assert "answer from the cache /var/cache/osop-checks/os_upgrades-" in second.stdout, (
            release, first.stdout[-2000:], second.stdout[-2000:])
