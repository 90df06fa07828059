"""The veterinary practice as hosts in network namespaces: a server and the hosts it copies to.

``Practice()`` makes, as root, one network namespace for the practice's server and one per
host (the office PC, the off-site box), each host joined to the server by a veth pair of its
own with an IPv4 and an IPv6 address. Nothing is routed out of these namespaces: the
addresses (private and documentation ranges) exist only inside them, no traffic leaves the
machine, and the machine's own network is not touched. Every host runs its own real sshd on
port 22 (its own host key, key-only login for the server's one client key) and has rsync; the
server's /etc/hosts (``ip netns exec`` bind-mounts /etc/netns/NAME/hosts) names the hosts
(office-pc by its IPv4, vault.example.org, the box's DynDNS name, by its IPv6),
and ``known_hosts`` trusts each host's key under its name and addresses.

A host ``sleep()``s with its link down (the off-site box outside its backup window, the office
PC switched off) and ``wake()``s with it up. Commands run "on the server" through
``practice.on_server(argv)``: the check, the sync job, ssh.

The namespaces are named ``osop-prac-PID-N-ROLE`` (``unique_base``: N counts the networks this
process made, so two in one process, as `make demo` and its Icinga part may start, never share a
name); ``Practice`` removes its own on exit, even after a failure, and removes at start those
left by a run whose process is gone.
"""
import itertools
import os
import shutil
import signal
import subprocess
import tempfile

import pytest

from lab.peers import Started

PREFIX = "osop-prac-"
ETC_NETNS = "/etc/netns"


def ip(*args, check=True):
    return subprocess.run(["ip"] + list(args), check=check, capture_output=True, text=True,
                          timeout=30)


def _namespaces():
    result = ip("netns", "list", check=False)
    return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]


def remove_namespace(name):
    """Remove namespace ``name``: end the processes in it (our sshds), its /etc/netns dir."""
    pids = ip("netns", "pids", name, check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError):
            pass
    ip("netns", "delete", name, check=False)
    shutil.rmtree(os.path.join(ETC_NETNS, name), ignore_errors=True)


def in_namespace(name, call):
    """``call()`` run in a thread that entered network namespace ``name`` (setns(2) on
    /run/netns/NAME): the sockets it opens are that namespace's. Its result, or its
    exception raised here."""
    import ctypes
    import threading

    libc = ctypes.CDLL(None, use_errno=True)
    outcome = {}

    def run():
        try:
            fd = os.open(os.path.join("/run/netns", name), os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
                    error = ctypes.get_errno()
                    raise OSError(error, "setns into %s: %s" % (name, os.strerror(error)))
            finally:
                os.close(fd)
            outcome["value"] = call()
        except BaseException as exc:  # raised again in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


_made = itertools.count(1)


def unique_base(prefix):
    """``prefix``PID-N-: the start of the names of one network's namespaces, unique on this
    machine while this process lives (``remove_stale`` reads the PID back)."""
    return "%s%d-%d-" % (prefix, os.getpid(), next(_made))


def remove_stale(prefix=PREFIX):
    """Remove the namespaces ``prefix``PID-... left by an earlier run that crashed (its
    process is gone)."""
    for name in _namespaces():
        if not name.startswith(prefix):
            continue
        pid = name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not os.path.exists("/proc/%s" % pid):
            remove_namespace(name)


class Host:
    """One host of the practice: a namespace, its link to the server, its addresses."""

    def __init__(self, practice, role, hostname, ipv4, ipv6, server_ipv4, server_ipv6):
        self.practice = practice
        self.role = role
        self.hostname = hostname
        self.ns = practice.base + role
        self.ipv4, self.ipv6 = ipv4, ipv6
        # the office PC is found by its IPv4 on the LAN, the box by its DynDNS name's AAAA
        self.address = ipv6 if hostname.endswith(".org") else ipv4
        self.server_ipv4, self.server_ipv6 = server_ipv4, server_ipv6
        self.server_dev = "to-" + role[:12]  # the server's end of the link (15 chars at most)
        self.sshd = None

    def create(self):
        server = self.practice.server_ns
        ip("netns", "add", self.ns)
        ip("-n", self.ns, "link", "set", "dev", "lo", "up")
        ip("link", "add", self.server_dev, "netns", server, "type", "veth",
           "peer", "name", "eth0", "netns", self.ns)
        # a host that wakes has its addresses again (Linux drops IPv6 ones on link down)
        ip("netns", "exec", self.ns, "sysctl", "-q", "-w",
           "net.ipv6.conf.eth0.keep_addr_on_down=1")
        # the server gives up on a host that does not answer its neighbour lookup after one
        # probe of half a second, not three of a second each: the same failure, sooner
        ip("netns", "exec", server, "sysctl", "-q", "-w",
           *["net.%s.neigh.%s.%s" % (family, self.server_dev, setting)
             for family in ("ipv4", "ipv6")
             for setting in ("mcast_solicit=1", "ucast_solicit=1", "retrans_time_ms=500")])
        for ns, dev, v4, v6 in ((server, self.server_dev, self.server_ipv4, self.server_ipv6),
                                (self.ns, "eth0", self.ipv4, self.ipv6)):
            ip("-n", ns, "address", "add", v4 + "/24", "dev", dev)
            ip("-n", ns, "-6", "address", "add", v6 + "/64", "dev", dev, "nodad")
            ip("-n", ns, "link", "set", "dev", dev, "up")

    def start_sshd(self, client_key):
        from lab.peers.sshd import Sshd

        self.sshd = Sshd((self.ipv4, self.ipv6), netns=self.ns, names=(self.hostname,),
                         client_key=client_key).start()
        return self.sshd

    def sleep(self, silent=False):
        """The host is off: its link is down. The server's neighbour lookup then fails and a
        connection gets "No route to host" after half a second; with ``silent`` the server keeps
        the host's link-layer address (as a router's cache does) and packets simply vanish:
        a connection times out."""
        ip("-n", self.ns, "link", "set", "dev", "eth0", "down")
        if silent:
            mac = ip("-n", self.ns, "-br", "link", "show", "dev", "eth0").stdout.split()[2]
            for address in (self.ipv4, self.ipv6):
                ip("-n", self.practice.server_ns, "neigh", "replace", address, "lladdr", mac,
                   "dev", self.server_dev, "nud", "permanent")

    def wake(self):
        ip("-n", self.ns, "link", "set", "dev", "eth0", "up")
        for address in (self.ipv4, self.ipv6):
            ip("-n", self.practice.server_ns, "neigh", "del", address, "dev", self.server_dev,
               check=False)

    def stop(self):
        if self.sshd:
            self.sshd.stop()
        remove_namespace(self.ns)


class Practice(Started):
    """The practice's server (a namespace of its own) and its hosts, with one client key."""

    HOSTS = (
        # role, host name, its IPv4 and IPv6, the server's on that link
        ("office", "office-pc", "192.168.178.20", "fd00:13:1::20", "192.168.178.10",
         "fd00:13:1::10"),
        ("offsite", "vault.example.org", "203.0.113.7", "2001:db8:13::7", "203.0.113.1",
         "2001:db8:13::1"),
    )

    def __init__(self):
        self.base = unique_base(PREFIX)
        self.server_ns = self.base + "server"
        self.dir = tempfile.mkdtemp(prefix=PREFIX + "keys-")
        self.client_key = os.path.join(self.dir, "id_ed25519")
        self.known_hosts = os.path.join(self.dir, "known_hosts")
        self.hosts = {role: Host(self, role, name, *addresses)
                      for role, name, *addresses in self.HOSTS}

    def __getitem__(self, role):
        return self.hosts[role]

    def start(self):
        from lab.peers.sshd import keygen

        remove_stale()
        ip("netns", "add", self.server_ns)
        ip("-n", self.server_ns, "link", "set", "dev", "lo", "up")
        etc = os.path.join(ETC_NETNS, self.server_ns)
        os.makedirs(etc)
        with open(os.path.join(etc, "hosts"), "w") as handle:
            handle.write("127.0.0.1 localhost\n::1 localhost\n")
            for host in self.hosts.values():
                handle.write("%s %s\n" % (host.address, host.hostname))
        keygen(self.client_key, "practice-server")
        lines = []
        for host in self.hosts.values():
            host.create()
            lines += host.start_sshd(self.client_key).known_hosts_lines()
        with open(self.known_hosts, "w") as handle:
            handle.writelines(lines)
        return self

    def on_server(self, argv):
        """``argv`` run on the practice's server (inside its namespace)."""
        return ["ip", "netns", "exec", self.server_ns] + [str(a) for a in argv]

    def ssh_command(self):
        """The ssh the server's jobs use: key only, batch mode, host keys checked strictly."""
        return ["ssh", "-i", self.client_key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                "-o", "UserKnownHostsFile=%s" % self.known_hosts,
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
                "-o", "ConnectTimeout=5"]

    def ssh_options(self):
        """The check's options that reach the hosts as the server's jobs do."""
        return ["--ssh-identity", self.client_key, "--ssh-known-hosts", self.known_hosts]

    def ssh(self, host, argv, timeout=30):
        """Run ``argv`` on ``host`` (a name or address) from the server; a CompletedProcess."""
        return subprocess.run(self.on_server(self.ssh_command() + ["root@" + host, "--"] + argv),
                              capture_output=True, text=True, timeout=timeout)

    def stop(self):
        for host in self.hosts.values():
            host.stop()
        remove_namespace(self.server_ns)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def practice():
    """The practice's server, office PC and off-site box as network namespaces with real
    sshds (skips without root, ip, sshd or rsync; fails in CI)."""
    from lab.peers import need, need_root

    need_root()
    need("ip", "sshd", "ssh", "ssh-keygen", "rsync", "ss")
    with Practice() as network:
        yield network
