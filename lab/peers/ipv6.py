"""An IPv6-only host and a dual-stack host in network namespaces, as the non-profit has them.

    with Ipv6Net() as net:
        net.exec(net.client, ["check_...", "-H", net.v6only_name])   # CompletedProcess
        net.popen(net.v6only, ["openssl", "s_server", ...])          # a server on that host
        run_plugin("check_...", [...], wrap=net.wrap(net.client))

``Ipv6Net()`` makes, as root, three namespaces ``osop-v6-PID-N-client|v6only|dual``:

- ``client``: where the checks run. Its /etc/netns/<client>/resolv.conf names the DNS server
  on the IPv6-only host, so the host names below resolve through real DNS (glibc, as a check
  on a monitoring satellite resolves them); its hosts file has localhost only.
- ``v6only``: the IPv6-only host, ``v6only.osop.test`` = ``V6ONLY`` (2001:db8:16:1::2). Its
  link to the client has an IPv6 address (and the link-local one) and no IPv4 one; even
  lo's 127.0.0.1, which the kernel puts there when lo comes up, is deleted: ``ip -4 addr``
  in it lists nothing. What the kernel still forces is the IPv4 stack itself (Linux has no
  switch to remove it from a namespace): a program may open an AF_INET socket there, it
  just reaches nothing. It runs dnsmasq on [V6ONLY]:53,
  authoritative-like for ``osop.test`` (``--local``: nothing is forwarded, a name not listed
  is NXDOMAIN): ``v6only.osop.test`` has an AAAA record and no A record (an A query is
  answered NODATA), ``dual.osop.test`` has both.
- ``dual``: the dual-stack host, ``dual.osop.test`` = ``DUAL4`` (192.0.2.2) and ``DUAL6``
  (2001:db8:16:2::2), on a second link of the client.

Documentation ranges only, nothing routed out: no packet leaves these namespaces. The hosts run
nothing but dnsmasq until asked: ``start_sshd(host)`` (lab/peers/sshd.py's Sshd on port 22,
key only, ``known_hosts`` trusting the host's name and address) and ``start_snmpd(host)``
(lab/peers/snmpd.py's Snmpd on UDP 161, udp6 on the IPv6-only host) reuse those peers.
Namespaces and /etc/netns entries are removed on exit, even after a failure, and those left by
a run whose process is gone are removed at start (lab/peers/netns.py's helpers).
"""
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from lab.peers import Started
from lab.peers.netns import ETC_NETNS, ip, remove_namespace, remove_stale, unique_base

PREFIX = "osop-v6-"
DOMAIN = "osop.test"
CLIENT6_1, V6ONLY = "2001:db8:16:1::1", "2001:db8:16:1::2"
CLIENT4_2, CLIENT6_2, DUAL4, DUAL6 = "192.0.2.1", "2001:db8:16:2::1", "192.0.2.2", \
    "2001:db8:16:2::2"
DNSMASQ = shutil.which("dnsmasq", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") \
    or "/usr/sbin/dnsmasq"


class Ipv6Net(Started):
    """The client, the IPv6-only host and the dual-stack host (see the module docstring)."""

    v6only_name = "v6only." + DOMAIN
    dual_name = "dual." + DOMAIN
    v6only_address = V6ONLY
    dual_addresses = (DUAL4, DUAL6)
    dns_server = V6ONLY

    def __init__(self):
        base = unique_base(PREFIX)
        self.client, self.v6only, self.dual = base + "client", base + "v6only", base + "dual"
        self.dir = tempfile.mkdtemp(prefix=PREFIX + "run-")
        self.processes = []
        self.sshds, self.snmpds = {}, {}
        self.dnsmasq = None

    # -- running things in the network --------------------------------------------------
    def wrap(self, ns):
        """The command prefix that runs a command inside namespace ``ns``."""
        return ["ip", "netns", "exec", ns]

    def exec(self, ns, argv, timeout=30, **kwargs):
        """Run ``argv`` in namespace ``ns``: a CompletedProcess (text, output captured)."""
        return subprocess.run(self.wrap(ns) + [str(a) for a in argv], capture_output=True,
                              text=True, timeout=timeout, **kwargs)

    def popen(self, ns, argv, **kwargs):
        """Start ``argv`` in namespace ``ns``; ended (and waited for) on exit."""
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        process = subprocess.Popen(self.wrap(ns) + [str(a) for a in argv], **kwargs)
        self.processes.append(process)
        return process

    # -- the network ----------------------------------------------------------------------
    def start(self):
        remove_stale(PREFIX)
        for ns in (self.client, self.v6only, self.dual):
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "dev", "lo", "up")
        # the IPv6-only host: no IPv4 address anywhere, not even the one lo got when it came up
        ip("-n", self.v6only, "-4", "address", "flush", "dev", "lo")
        self._link("to-v6only", self.v6only, [CLIENT6_1], [V6ONLY])
        self._link("to-dual", self.dual, [CLIENT4_2, CLIENT6_2], [DUAL4, DUAL6])
        etc = os.path.join(ETC_NETNS, self.client)
        os.makedirs(etc)
        with open(os.path.join(etc, "resolv.conf"), "w") as handle:
            handle.write("nameserver %s\noptions timeout:2 attempts:2\n" % V6ONLY)
        with open(os.path.join(etc, "hosts"), "w") as handle:
            handle.write("127.0.0.1 localhost\n::1 localhost\n")
        self._start_dnsmasq()
        return self

    def _link(self, dev, ns, mine, theirs):
        ip("link", "add", dev, "netns", self.client, "type", "veth", "peer", "name", "eth0",
           "netns", ns)
        for where, name, addresses in ((self.client, dev, mine), (ns, "eth0", theirs)):
            for address in addresses:
                if ":" in address:
                    ip("-n", where, "-6", "address", "add", address + "/64", "dev", name,
                       "nodad")
                else:
                    ip("-n", where, "address", "add", address + "/24", "dev", name)
            ip("-n", where, "link", "set", "dev", name, "up")

    def _start_dnsmasq(self):
        hosts = os.path.join(self.dir, "hosts")
        with open(hosts, "w") as handle:
            handle.write("%s %s\n" % (V6ONLY, self.v6only_name))
            for address in self.dual_addresses:
                handle.write("%s %s\n" % (address, self.dual_name))
        log = os.path.join(self.dir, "dnsmasq.log")
        self.dnsmasq = self.popen(self.v6only, [
            DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
            "--no-hosts", "--addn-hosts=" + hosts, "--local=/%s/" % DOMAIN,
            "--listen-address=" + V6ONLY, "--bind-interfaces", "--port=53",
            "--pid-file=", "--user=root", "--log-facility=" + log, "--cache-size=0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        end = time.monotonic() + 10
        while time.monotonic() < end:  # answering once the client resolves the name
            if self.dnsmasq.poll() is not None:
                raise RuntimeError("dnsmasq did not start: %s" % _tail(log))
            answer = self.exec(self.client, ["getent", "ahostsv6", self.v6only_name],
                               timeout=10)
            if V6ONLY in answer.stdout:
                return
            time.sleep(0.05)
        raise RuntimeError("dnsmasq does not answer: %s" % _tail(log))

    # -- servers on the hosts ---------------------------------------------------------------
    def names(self, ns):
        """(host name, addresses) of host namespace ``ns``."""
        if ns == self.v6only:
            return self.v6only_name, (V6ONLY,)
        return self.dual_name, self.dual_addresses

    def start_sshd(self, ns, client_key=None):
        """A real sshd on port 22 of host ``ns`` (lab/peers/sshd.py), once per host."""
        from lab.peers.sshd import Sshd

        if ns not in self.sshds:
            name, addresses = self.names(ns)
            self.sshds[ns] = Sshd(addresses, netns=ns, names=(name,),
                                  client_key=client_key).start()
        return self.sshds[ns]

    def start_snmpd(self, ns):
        """A real snmpd on UDP port 161 of host ``ns``'s first address (udp6 on the
        IPv6-only host; lab/peers/snmpd.py), once per host."""
        from lab.peers.snmpd import Snmpd

        if ns not in self.snmpds:
            self.snmpds[ns] = Snmpd(address=self.names(ns)[1][-1], netns=ns).start()
        return self.snmpds[ns]

    def stop(self):
        for sshd in self.sshds.values():
            sshd.stop()
        for snmpd in self.snmpds.values():
            snmpd.close()
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()
        for ns in (self.client, self.v6only, self.dual):
            remove_namespace(ns)
        shutil.rmtree(self.dir, ignore_errors=True)


def _tail(path):
    try:
        with open(path, errors="replace") as handle:
            return handle.read()[-1000:]
    except OSError:
        return ""


@pytest.fixture(scope="module")
def ipv6_net():
    """The IPv6 test network for a module (skips without root, ip or dnsmasq; fails in CI)."""
    from lab.peers import need, need_root

    need_root()
    need("ip", "dnsmasq", "getent")
    with Ipv6Net() as network:
        yield network
