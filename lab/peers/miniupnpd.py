"""The practice's router as a network namespace running Debian's miniupnpd (a UPnP IGD).

    with UpnpRouter(wan="80.81.82.83") as router:
        run_plugin("check_dyndns_match", ["-H", NAME, "--server", router.dns_server,
                                          "--router-upnp"], wrap=router.wrap())
        router.set_wan("100.64.7.2")       # the provider moved it behind carrier-grade NAT
        router.set_records({NAME: ["80.81.82.83"]})

``UpnpRouter()`` makes, as root, three namespaces ``osop-upnp-PID-N-router|client|isp``:

- ``router``: a veth "LAN" ``lan0`` (LAN_ROUTER = 192.168.178.1/24, as a FRITZ!Box) to the
  client and a veth "WAN" ``wan0`` to the isp namespace, holding the WAN address the test
  chooses (``set_wan``). It runs miniupnpd (``ext_ifname=wan0``, ``listening_ip=lan0``,
  ``http_port=49000``; SSDP on UDP 1900, the description at ``description_url``), which reads
  wan0's address on every GetExternalIPAddress: a private or reserved one (documentation
  ranges included) it answers as an empty NewExternalIPAddress and logs "not suitable for
  external IP". And a dnsmasq on LAN_ROUTER:53, the LAN's DNS server, answering the names the
  test sets (``set_records``) from a hosts file, ``local`` for dyn.test (no forwarding).
- ``client``: the monitoring host on the LAN, eth0 = LAN_CLIENT (192.168.178.20/24), its
  default route through the router, so the SSDP multicast (239.255.255.250:1900) goes to the
  router's LAN and nowhere else. The check runs here (``wrap()``).
- ``isp``: the other end of the WAN link, running nothing.

No packet leaves these namespaces: a non-reserved WAN address (what a match needs, miniupnpd
refuses the others) exists only inside them, and nothing routes to or from the machine's own
network. Namespaces, miniupnpd and dnsmasq are ended on exit, even after a failure, and the
namespaces a run whose process is gone left behind are removed at start.

No FRITZ!Box can run here: ``fritzbox()`` gives the arguments of an HTTP echo server
(lab/peers/http_echo.py) that answers as one, from the synthetic answers of
tests/fixtures/upnp/ (its IGD description, GetExternalIPAddress, X_AVM_DE_GetIPv6Prefix).
"""
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from lab.peers import fixture
from lab.peers import Started, end_process
from lab.peers.netns import in_namespace, ip, remove_namespace, remove_stale, unique_base

PREFIX = "osop-upnp-"
LAN_ROUTER, LAN_CLIENT = "192.168.178.1", "192.168.178.20"
HTTP_PORT = 49000
DOMAIN = "dyn.test"
MINIUPNPD = shutil.which("miniupnpd", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") \
    or "/usr/sbin/miniupnpd"

CONFIG = """\
ext_ifname=wan0
listening_ip=lan0
http_port={port}
enable_natpmp=no
enable_upnp=yes
secure_mode=yes
system_uptime=yes
friendly_name=osop-checks test router
uuid=2d6c2a8e-16c8-4a1e-9a55-0f5e0c0ffee1
allow 1024-65535 192.168.178.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
"""


class UpnpRouter(Started):
    """The router, its LAN client and the provider's end of the WAN (module docstring)."""

    dns_server = LAN_ROUTER
    description_url = "http://%s:%d/rootDesc.xml" % (LAN_ROUTER, HTTP_PORT)

    def __init__(self, wan="80.81.82.83", records=None):
        base = unique_base(PREFIX)
        self.router, self.client, self.isp = base + "router", base + "client", base + "isp"
        self.wan = wan
        self.records = dict(records or {})
        self.dir = tempfile.mkdtemp(prefix=PREFIX + "run-")
        self.log = os.path.join(self.dir, "miniupnpd.log")
        self.miniupnpd = self.dnsmasq = None

    def wrap(self, ns=None):
        """The command prefix that runs a command in namespace ``ns`` (the client's)."""
        return ["ip", "netns", "exec", ns or self.client]

    def start(self):
        remove_stale(PREFIX)
        for ns in (self.router, self.client, self.isp):
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "dev", "lo", "up")
        ip("link", "add", "lan0", "netns", self.router, "type", "veth", "peer", "name", "eth0",
           "netns", self.client)
        ip("link", "add", "wan0", "netns", self.router, "type", "veth", "peer", "name", "eth0",
           "netns", self.isp)
        ip("-n", self.router, "address", "add", LAN_ROUTER + "/24", "dev", "lan0")
        ip("-n", self.client, "address", "add", LAN_CLIENT + "/24", "dev", "eth0")
        for ns, dev in ((self.router, "lan0"), (self.router, "wan0"), (self.client, "eth0"),
                        (self.isp, "eth0")):
            ip("-n", ns, "link", "set", "dev", dev, "up")
        ip("-n", self.client, "route", "add", "default", "via", LAN_ROUTER)
        self.set_wan(self.wan)
        self._start_miniupnpd()
        self._start_dnsmasq()
        return self

    def set_wan(self, address):
        """Give the WAN interface ``address`` (/24) alone; None: no address at all."""
        ip("-n", self.router, "address", "flush", "dev", "wan0")
        if address:
            ip("-n", self.router, "address", "add", address + "/24", "dev", "wan0")
        self.wan = address

    def set_records(self, records):
        """The A/AAAA records the router's DNS answers ({name: [addresses]})."""
        self.dnsmasq.set_records(records)

    def log_text(self):
        try:
            with open(self.log, errors="replace") as handle:
                return handle.read()
        except OSError:
            return ""

    def _start_miniupnpd(self):
        config = os.path.join(self.dir, "miniupnpd.conf")
        with open(config, "w") as handle:
            handle.write(CONFIG.format(port=HTTP_PORT))
        with open(self.log, "wb") as log:
            # -d: in the foreground, its log on stderr
            self.miniupnpd = subprocess.Popen(
                self.wrap(self.router) + [MINIUPNPD, "-d", "-f", config, "-P",
                                          os.path.join(self.dir, "miniupnpd.pid")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            if self.miniupnpd.poll() is not None:
                raise RuntimeError("miniupnpd did not start: %s" % self.log_text()[-1000:])
            if "HTTP listening on port %d" % HTTP_PORT in self.log_text() and \
                    in_namespace(self.client, self._listens):
                return
            time.sleep(0.05)
        raise RuntimeError("miniupnpd does not listen: %s" % self.log_text()[-1000:])

    @staticmethod
    def _listens():
        import socket

        try:
            socket.create_connection((LAN_ROUTER, HTTP_PORT), timeout=0.5).close()
            return True
        except OSError:
            return False

    def _start_dnsmasq(self):
        from lab.peers.dns import Dnsmasq

        self.dnsmasq = Dnsmasq(LAN_ROUTER, 53, self.records, workdir=self.dir,
                               netns=self.router, options=["--local=/%s/" % DOMAIN])
        self.dnsmasq.start()

    def stop(self):
        if self.dnsmasq is not None:
            self.dnsmasq.stop()
        end_process(self.miniupnpd)
        for ns in (self.client, self.router, self.isp):
            remove_namespace(ns)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def upnp_router():
    """The UPnP router for a module (skips without root, ip, miniupnpd or dnsmasq; fails in
    CI). Each test sets the WAN address and the records it needs."""
    from lab.peers import need, need_root

    need_root()
    need("ip", "miniupnpd", "dnsmasq")
    with UpnpRouter() as router:
        yield router


FRITZBOX_PREFIX = fixture("upnp", "fritzbox_X_AVM_DE_GetIPv6Prefix_synthetic.xml")


def fritzbox(address="fritzbox_GetExternalIPAddress_synthetic.xml", prefix=FRITZBOX_PREFIX):
    """The keyword arguments of an EchoServer playing a FRITZ!Box's IGD: ``address`` names
    the fixture of its GetExternalIPAddress answer, ``prefix`` is the text of its
    X_AVM_DE_GetIPv6Prefix answer (the description is at any path, e.g. igddesc.xml)."""
    return {"body": fixture("upnp", "fritzbox_igddesc_synthetic.xml"), "post": {
        "GetExternalIPAddress": fixture("upnp", address), "X_AVM_DE_GetIPv6Prefix": prefix}}
