"""Real DNS servers on loopback: dnsmasq from Debian, and small UDP peers that misbehave.

``DnsSite`` is a DynDNS zone as the check meets it in the wild, on one ephemeral port P:

- ``site.auth``: dnsmasq at 127.0.0.1:P, authoritative for ``dyn.test`` (SOA, NS
  ns1.dyn.test -> 127.0.0.1, AA set); its A/AAAA records come from a hosts file the tests
  rewrite (``site.auth.set_records``; SIGHUP, and the reload is waited for).
- ``site.resolver``: dnsmasq at 127.0.0.2:P, a forwarding resolver for dyn.test (cache off)
  with its own hosts file: records put there (``site.resolver.set_records``) shadow the zone's,
  like a stale cache; a check asking it sees those, one with --authoritative does not.

``UdpPeer`` answers every datagram with garbage, with a SERVFAIL, with an answer to another
question, with a non-authoritative answer (a lame server), or never (a black hole).
"""
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from lab.peers import end_process, need

DNSMASQ = shutil.which("dnsmasq", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") \
    or "/usr/sbin/dnsmasq"
ZONE = "dyn.test"
AUTH_ADDRESS = "127.0.0.1"
RESOLVER_ADDRESS = "127.0.0.2"


def free_port(addresses=(AUTH_ADDRESS,)):
    """A port that is free for UDP and TCP on every address given (checked, then released:
    the caller retries if it is taken in between)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((addresses[0], 0))
            port = probe.getsockname()[1]
        try:
            for address in addresses:
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    with socket.socket(socket.AF_INET, kind) as sock:
                        sock.bind((address, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port found on %s" % ", ".join(addresses))


def hosts_text(records):
    """{name: [addresses]} -> a hosts file."""
    lines = []
    for name, addresses in records.items():
        for address in ([addresses] if isinstance(addresses, str) else addresses):
            lines.append("%s %s" % (address, name))
    return "\n".join(lines) + "\n"


class Dnsmasq:
    """One dnsmasq in the foreground on ``address``:``port`` (UDP and TCP), no resolv.conf,
    no /etc/hosts; its A/AAAA records from a hosts file rewritten by ``set_records``. With
    ``netns`` it runs in that network namespace (lab/peers/netns.py)."""

    def __init__(self, address, port, records=None, options=(), workdir=None, netns=None):
        self.address = address
        self.port = port
        self.netns = netns
        self.workdir = workdir or tempfile.mkdtemp(prefix="osop-dnsmasq-")
        tag = address.replace(".", "_")
        self.hosts = os.path.join(self.workdir, "hosts_%s" % tag)
        self.log = os.path.join(self.workdir, "log_%s" % tag)
        self.options = list(options)
        self.process = None
        self._write(records or {})

    @property
    def server(self):
        return "%s:%d" % (self.address, self.port)

    def argv(self):
        import grp
        import pwd

        wrap = ["ip", "netns", "exec", self.netns] if self.netns else []
        return wrap + [DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=",
                "--port=%d" % self.port, "--listen-address=%s" % self.address,
                "--bind-interfaces", "--no-resolv", "--no-hosts", "--addn-hosts=" + self.hosts,
                "--cache-size=0", "--log-facility=" + self.log, "--log-queries",
                "--user=" + pwd.getpwuid(os.getuid()).pw_name,
                "--group=" + grp.getgrgid(os.getgid()).gr_name] + self.options

    def start(self):
        open(self.log, "w").close()
        self.process = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, start_new_session=True)
        limit = time.monotonic() + 10
        while time.monotonic() < limit:
            if self.process.poll() is not None:
                raise RuntimeError("dnsmasq on %s exited: %s" % (
                    self.server, self.process.stderr.read().decode(errors="replace").strip()))
            if self._reads() >= 1 and self._answers():
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("dnsmasq on %s did not start within 10 s" % self.server)

    def _answers(self):
        if self.netns:
            from lab.peers.netns import in_namespace

            return in_namespace(self.netns, self._ask)
        return self._ask()

    def _ask(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.2)
            try:
                # A minimal query (id 1, RD, SOA of the root): any answer means it listens.
                sock.sendto(b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x06"
                            b"\x00\x01", (self.address, self.port))
                sock.recvfrom(512)
                return True
            except OSError:
                return False

    def _reads(self):
        try:
            with open(self.log, encoding="utf-8", errors="replace") as handle:
                return sum(1 for line in handle if ("read " + self.hosts) in line)
        except OSError:
            return 0

    def _write(self, records):
        tmp = self.hosts + ".tmp"
        with open(tmp, "w") as handle:
            handle.write(hosts_text(records))
        os.replace(tmp, self.hosts)

    def set_records(self, records):
        """Replace every A/AAAA record ({name: [addresses]}) and wait for the reload."""
        before = self._reads()
        self._write(records)
        if self.process is None:
            return
        self.process.send_signal(signal.SIGHUP)
        limit = time.monotonic() + 5
        while self._reads() <= before:
            if time.monotonic() > limit:
                raise RuntimeError("dnsmasq on %s did not reload its hosts file" % self.server)
            time.sleep(0.01)

    def stop(self):
        end_process(self.process)
        if self.process:
            self.process.stderr.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class DnsSite:
    """The authoritative dnsmasq for dyn.test and a forwarding resolver in front of it, on
    the same port at 127.0.0.1 and 127.0.0.2 (see the module text)."""

    def __init__(self, records=None, resolver_records=None):
        self.workdir = tempfile.mkdtemp(prefix="osop-dnssite-")
        self.records = dict(records or {})
        self.resolver_records = dict(resolver_records or {})
        self.auth = self.resolver = None

    @property
    def port(self):
        return self.auth.port

    def __enter__(self):
        last = None
        for _ in range(5):
            port = free_port((AUTH_ADDRESS, RESOLVER_ADDRESS))
            records = dict(self.records)
            records["ns1.%s" % ZONE] = [AUTH_ADDRESS]
            self.auth = Dnsmasq(AUTH_ADDRESS, port, records, workdir=self.workdir, options=[
                "--auth-zone=%s" % ZONE, "--auth-server=ns1.%s,%s" % (ZONE, AUTH_ADDRESS)])
            self.resolver = Dnsmasq(RESOLVER_ADDRESS, port, self.resolver_records,
                                    workdir=self.workdir, options=[
                                        "--server=/%s/%s#%d" % (ZONE, AUTH_ADDRESS, port)])
            try:
                self.auth.start()
                self.resolver.start()
                return self
            except RuntimeError as exc:  # the port was taken in between: another one
                last = exc
                self.auth.stop()
                self.resolver.stop()
        raise last

    def set_records(self, records):
        """The zone's records (what the authoritative server says)."""
        records = dict(records)
        records["ns1.%s" % ZONE] = [AUTH_ADDRESS]
        self.auth.set_records(records)

    def __exit__(self, *exc):
        self.resolver.stop()
        self.auth.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class UdpPeer:
    """A UDP 'DNS server' on 127.0.0.1:<ephemeral> that misbehaves: ``mode`` 'garbage'
    answers every datagram with text, 'servfail' with a well-formed SERVFAIL, 'other-id'
    with a response whose id is not the query's, 'lame' with an A record (192.0.2.1) but
    without the authoritative-answer flag, 'silent' never answers (a black hole: the
    datagrams are read and dropped)."""

    MODES = ("garbage", "servfail", "other-id", "lame", "silent")

    def __init__(self, mode):
        assert mode in self.MODES
        self.mode = mode
        self.sock = None
        self.thread = None
        self.stopping = threading.Event()

    @property
    def server(self):
        return "%s:%d" % self.sock.getsockname()

    def _serve(self):
        import select

        while not self.stopping.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.1)
            if not ready:
                continue
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                continue
            if self.mode == "garbage":
                self.sock.sendto(b"HELLO, this is not DNS at all\r\n", peer)
            elif self.mode == "servfail" and len(data) >= 12:
                # Same id and question, QR set, rcode 2 (SERVFAIL), no records.
                flags = bytes([0x80 | (data[2] & 0x79), 0x80 | 0x02])
                self.sock.sendto(data[:2] + flags + data[4:6] + b"\x00" * 6 + data[12:],
                                 peer)
            elif self.mode in ("other-id", "lame"):
                self.sock.sendto(self._answer(data), peer)

    def _answer(self, data):
        import dns.flags
        import dns.message
        import dns.rrset

        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        response.flags &= ~dns.flags.AA
        if self.mode == "other-id":
            response.id = (query.id + 1) % 65536
        response.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A",
                                                   "192.0.2.1"))
        return response.to_wire()

    def __enter__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(2)
        self.sock.close()


def closed_port():
    """A loopback UDP port nothing listens on (taken and released at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return "127.0.0.1:%d" % sock.getsockname()[1]


@pytest.fixture
def dns_site():
    """A fresh DnsSite: office.dyn.test has no records until the test sets them."""
    need("dnsmasq")
    with DnsSite() as site:
        yield site


@pytest.fixture
def udp_peer():
    """A factory: udp_peer('garbage' | 'servfail' | 'silent') -> a running UdpPeer."""
    with contextlib.ExitStack() as stack:
        yield lambda mode: stack.enter_context(UdpPeer(mode))
