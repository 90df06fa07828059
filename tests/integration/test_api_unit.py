"""osop-checks-api as the Debian package installs it, in a booted systemd (Debian bookworm,
systemd 252, systemd-nspawn: lab/peers/systemd_container.py).

The .deb (`make deb`, as tests/integration/test_debian_package.py builds it) is installed with
dpkg in the running container, whose root has the package's dependencies (debian/control)
besides systemd. Then, as docs/api-security.md tells an admin: the daemon's own P-256 key and
CSR made with openssl on the node, the CSR signed by Icinga's CA with `icinga2 pki sign-csr`
(this machine's icinga2 plays the master), ca.crt beside them; a drop-in moves the socket to a
free loopback port (the container shares this machine's network) and the socket is enabled.
The first call starts the service. Asserted: `systemd-analyze security` rates the service 2.5
or lower, it runs as osop-checks-api, and checks asked through it with a certificate whose CN
is the node's answer as the command line does in the same container (disks, systemd over the
system bus, apt-get -s); the port stays systemd's while the service is down; another node of
the same CA, what api.conf does not allow and running as root are refused.
"""
import os
import re
import shutil
import subprocess

import pytest

from tests.integration.test_debian_package import deb_package  # noqa: F401 (a fixture)
from lab.peers import ROOT, debian_root, ifw_api, need_root, systemd_container
from lab.peers.tls import free_port

pytestmark = pytest.mark.peer

RELEASE = "bookworm"
# Besides what the package depends on: a system to boot, and openssl for the key pair.
CONTAINER_PACKAGES = ("systemd", "systemd-sysv", "dbus", "openssl")
NODE = "agent1.osop.test"          # the node's Icinga name: the daemon's CN and its one caller
SERVICE = "osop-checks-api.service"
SOCKET = "osop-checks-api.socket"
ETC = "/etc/osop-checks"
MAX_EXPOSURE = 2.5                 # systemd-analyze's "OK"


def package_depends():
    """The binary package's Depends in debian/control, without substvars and versions."""
    with open(os.path.join(ROOT, "debian", "control")) as handle:
        text = handle.read()
    field = re.search(r"^Depends:(.*?)(?=^\S)", text, re.M | re.S).group(1)
    names = [item.split()[0] for item in field.replace("\n", " ").split(",") if item.strip()]
    return tuple(name for name in names if not name.startswith("${"))


def container_root():
    """The cached bookworm root for the container: systemd and the package's dependencies."""
    return debian_root.apt_root(RELEASE, CONTAINER_PACKAGES + package_depends())


API_CONF = """\
# the test's policy: what the demo asks this host for
[check_disk_partitions]
paths = /
"""
RECIPE = (
    # docs/api-security.md, "The daemon's key pair", as the admin runs it on the node
    'cd {etc} && (umask 027 && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 '
    '-nodes -keyout {name}.key -subj "/CN={cn}" -out {name}.csr) '
    '&& chgrp osop-checks-api {name}.key && chmod 0640 {name}.key')
SOCKET_DROPIN = ("[Socket]\nListenStream=\nListenStream=127.0.0.1:{port}\n"
                 "ListenStream=[::1]:{port}\n")
EXPOSURE = re.compile(r"Overall exposure level for %s: (\d+(?:\.\d+)?) (\S+)" % re.escape(SERVICE))


class Host:
    """The booted container with the package installed: ``inside(*argv)`` runs a command
    there (all its namespaces, a plain environment), ``port`` the API's loopback port."""

    def __init__(self, container, port):
        self.container = container
        self.root = container.root
        self.port = port
        self.installed = {}   # unit -> (is-enabled, is-active) right after dpkg -i

    def inside(self, *argv, timeout=60, user=None):
        prefix = ["nsenter", "-t", str(self.container.pid), "-a"]
        if user:
            prefix += ["runuser", "-u", user, "--"]
        return subprocess.run(prefix + list(argv), capture_output=True, text=True,
                              timeout=timeout, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                                    "LC_ALL": "C.UTF-8", "TZ": "UTC"})

    def path(self, inside):
        return os.path.join(self.root, inside.lstrip("/"))

    def key_pair(self, name, cn):
        """The documented recipe on the node (``cn`` as its shell expands it), the CSR signed
        by the Icinga CA on the "master" (this machine's icinga2); (certificate, key) as paths
        seen from here."""
        made = self.inside("sh", "-ec", RECIPE.format(etc=ETC, name=name, cn=cn))
        assert made.returncode == 0, made.stderr
        sign_csr(self.path("%s/%s.csr" % (ETC, name)), self.path("%s/%s.crt" % (ETC, name)))
        return self.path("%s/%s.crt" % (ETC, name)), self.path("%s/%s.key" % (ETC, name))

    def call(self, command, body, cert, key, host="127.0.0.1", timeout=20):
        context = ifw_api.client_context(self.path(ETC + "/ca.crt"), cert, key)
        return ifw_api.post(self.port, command, body, context, host=host, server_name=NODE,
                            timeout=timeout)

    def show(self, unit, *properties):
        shown = self.container.run("show", unit, "-p", ",".join(properties), check=True)
        return dict(line.split("=", 1) for line in shown.stdout.splitlines())


def sign_csr(csr, crt):
    """`icinga2 pki sign-csr` with the tests' cached Icinga CA (lab/peers/icinga2.py)."""
    from lab.peers import icinga2

    icinga2.ensure_installed()
    data = icinga2.cached_pki([])
    master = icinga2.Icinga2(icinga2.PKI_CACHE, node="pki-cache")
    master.run("pki", "sign-csr", "--csr", csr, "--cert", crt, *master.defines())
    return os.path.join(data, "ca", "ca.crt")


@pytest.fixture(scope="module")
def api_host(deb_package):  # noqa: F811 (the fixture imported above)
    need_root()
    if not systemd_container.ensure_tools():
        pytest.skip("debootstrap, systemd-nspawn or nsenter is not installed")
    deb, _ = deb_package
    with systemd_container.booted(units={}, stamps={}, pristine=container_root()) as container:
        host = Host(container, free_port())
        # the container shares this machine's network: the node's name resolves to itself
        with open(host.path("/etc/hosts"), "a") as handle:
            handle.write("127.0.1.1 %s %s\n" % (NODE, NODE.split(".")[0]))
        with open(host.path("/etc/hostname"), "w") as handle:
            handle.write(NODE + "\n")
        assert host.inside("hostname", NODE).returncode == 0
        shutil.copy(deb, host.path("/var/tmp/osop-checks.deb"))
        installed = host.inside("dpkg", "-i", "/var/tmp/osop-checks.deb", timeout=300)
        assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
        for unit in (SOCKET, SERVICE):
            host.installed[unit] = (container.run("is-enabled", unit).stdout.strip(),
                                    container.run("is-active", unit).stdout.strip())
        # what the admin does (docs/api-security.md): the key pair, Icinga's CA, api.conf
        host.cert, host.key = host.key_pair("api", "$(hostname -f)")
        subject = host.inside("openssl", "x509", "-noout", "-subject", "-in", ETC + "/api.crt")
        assert subject.stdout.strip() == "subject=CN = " + NODE, subject.stdout
        shutil.copy(sign_csr(host.path(ETC + "/api.csr"), host.cert), host.path(ETC + "/ca.crt"))
        with open(host.path(ETC + "/api.conf"), "w") as handle:
            handle.write(API_CONF)
        # ... and the drop-in of the socket unit's comment, on a port free on this machine
        dropin = host.path("/etc/systemd/system/%s.d" % SOCKET)
        os.makedirs(dropin)
        with open(os.path.join(dropin, "listen.conf"), "w") as handle:
            handle.write(SOCKET_DROPIN.format(port=host.port))
        for argv in (["daemon-reload"], ["enable", "--now", SOCKET]):
            done = container.run(*argv)
            assert done.returncode == 0, (argv, done.stderr)
        yield host


def masked(text):
    """An answer with its numbers masked (free space and unit counts move between calls) and
    without trailing blanks (Icinga trims the text)."""
    return re.sub(r"\d+(?:\.\d+)?", "N", text).strip()


def command_line(host, check, *argv):
    """The check's answer on the command line, as osop-checks-api's user in the container,
    made what Icinga makes of it (protocol.parse_output): (exit code, text, perfdata labels)."""
    ran = host.inside("/usr/lib/nagios/plugins/" + check, *argv, user="osop-checks-api")
    assert "Traceback" not in ran.stdout + ran.stderr, ran.stderr
    text, perfdata = ifw_api.parse_output(ran.stdout)
    return ran.returncode, masked(text), labels(ifw_api.perf_items(perfdata))


def through_api(host, check, body):
    """The same of the daemon's answer."""
    status, answer = host.call(check, body, host.cert, host.key)
    assert status == 200, (status, answer)
    result = answer[check]
    return result["exitcode"], masked(result["checkresult"]), labels(result["perfdata"])


def labels(perfdata):
    return sorted(item.split("=")[0] for item in perfdata)


def main_process(host):
    """(MainPID, uid, gid) of the service as the container sees them."""
    pid = host.show(SERVICE, "MainPID")["MainPID"]
    status = host.inside("cat", "/proc/%s/status" % pid).stdout
    ids = {line.split(":")[0]: line.split()[1:] for line in status.splitlines()
           if line.startswith(("Uid:", "Gid:"))}
    return int(pid), {int(u) for u in ids["Uid"]}, {int(g) for g in ids["Gid"]}


# -- the package ----------------------------------------------------------------------------


def test_the_package_installs_both_units_neither_enabled_nor_started(api_host):
    assert api_host.installed[SOCKET] == ("disabled", "inactive")
    # the service is "indirect": its [Install] only names the socket (Also=)
    assert api_host.installed[SERVICE] in (("disabled", "inactive"), ("indirect", "inactive"))


def test_systemd_analyze_rates_the_service_ok(api_host):
    analyzed = api_host.inside("systemd-analyze", "security", "--no-pager", SERVICE)
    match = EXPOSURE.search(analyzed.stdout)
    assert match, analyzed.stdout[-2000:] + analyzed.stderr
    exposure = float(match.group(1))
    assert exposure <= MAX_EXPOSURE and match.group(2) == "OK", analyzed.stdout[-4000:]


# -- the running service (socket activation, the contract's command line) --------------------


def test_the_first_call_starts_the_service_as_its_own_user(api_host):
    assert api_host.show(SERVICE, "ActiveState")["ActiveState"] in ("inactive", "active")
    exitcode, *_ = through_api(api_host, "check_systemd_units", {})
    assert exitcode in (0, 1, 2)
    assert api_host.show(SERVICE, "ActiveState", "User") == {"ActiveState": "active",
                                                             "User": "osop-checks-api"}
    user = api_host.inside("getent", "passwd", "osop-checks-api").stdout.split(":")
    _, uids, gids = main_process(api_host)
    assert uids == {int(user[2])} and gids == {int(user[3])} and 0 not in uids
    # every worker too: nothing in the service's cgroup runs as anybody else
    pids = api_host.inside("pgrep", "-u", "osop-checks-api", "-f", "osop-checks-api").stdout
    others = api_host.inside("pgrep", "-f", "/usr/bin/osop-checks-api").stdout
    assert len(pids.split()) >= 2 and sorted(pids.split()) == sorted(others.split())


@pytest.mark.parametrize("check, argv, body", [
    ("check_disk_partitions", ["-p", "/"], {"-p": ["/"]}),
    ("check_systemd_units", [], {}),     # systemctl over the system bus, as the user
    ("check_os_upgrades", ["--no-cache"], {"--no-cache": True}),  # apt-get -s, read-only
])
def test_a_check_through_the_hardened_service_answers_as_the_command_line(
        api_host, check, argv, body):
    assert through_api(api_host, check, body) == command_line(api_host, check, *argv)


def test_a_call_over_ipv6_loopback(api_host):
    status, answer = api_host.call("check_disk_partitions", {"-p": ["/"]}, api_host.cert,
                                   api_host.key, host="::1")
    assert status == 200 and answer["check_disk_partitions"]["exitcode"] in (0, 1, 2), answer


def test_the_port_stays_systemds_while_the_service_is_down(api_host):
    stopped = api_host.container.run("stop", SERVICE)
    assert stopped.returncode == 0, stopped.stderr
    assert api_host.show(SOCKET, "ActiveState")["ActiveState"] == "active"
    import socket

    with socket.socket() as thief, pytest.raises(OSError) as taken:
        thief.bind(("127.0.0.1", api_host.port))
    assert taken.value.errno == 98  # EADDRINUSE: systemd holds it, nobody else gets it
    exitcode, *_ = through_api(api_host, "check_systemd_units", {})  # started again
    assert exitcode in (0, 1, 2)
    assert api_host.show(SERVICE, "ActiveState")["ActiveState"] == "active"


def test_reload_keeps_the_daemon_and_its_sockets(api_host):
    through_api(api_host, "check_systemd_units", {})
    before, *_ = main_process(api_host)
    restarts = api_host.show(SERVICE, "NRestarts")["NRestarts"]
    reloaded = api_host.container.run("reload", SERVICE)
    assert reloaded.returncode == 0, reloaded.stderr
    exitcode, *_ = through_api(api_host, "check_systemd_units", {})
    assert exitcode in (0, 1, 2)
    after, *_ = main_process(api_host)
    assert after == before
    assert api_host.show(SERVICE, "NRestarts")["NRestarts"] == restarts


# -- the defaults: who may call, what a call may do -----------------------------------------


def test_another_node_of_the_same_ca_is_refused(api_host):
    """Every agent holds a certificate of the same CA: by default only the node itself (the
    local icinga2 calls with the node's certificate) may call."""
    import ssl

    exitcode, *_ = through_api(api_host, "check_systemd_units", {})  # the node itself may
    assert exitcode in (0, 1, 2)
    cert, key = api_host.key_pair("other", "agent2.osop.test")
    try:
        status, answer = api_host.call("check_systemd_units", {}, cert, key)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return  # refused in the handshake
    # or closed right after it, before any request is read: no answer at all
    assert (status, answer) == (0, ""), (status, answer)


def test_what_api_conf_does_not_allow_is_refused(api_host):
    status, answer = api_host.call("check_tls_expiry", {"-H": "127.0.0.1", "-p": "22"},
                                   api_host.cert, api_host.key)
    assert status == 403, (status, answer)
    assert answer["check_tls_expiry"]["exitcode"] == 3
    assert "api.conf" in answer["check_tls_expiry"]["checkresult"]


def test_the_daemon_refuses_to_run_as_root(api_host):
    # today's daemon would serve: `timeout` ends it (exit 124) instead of the test
    ran = api_host.inside("timeout", "10", "osop-checks-api", "--cert", ETC + "/api.crt",
                          "--key", ETC + "/api.key", "--ca", ETC + "/ca.crt", "--listen",
                          "127.0.0.1:%d" % free_port(), timeout=30)
    assert ran.returncode == 2 and len(ran.stderr.strip().splitlines()) == 1, ran.stderr
    assert "root" in ran.stderr
