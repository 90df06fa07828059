"""Peers that fail: a port that refuses, a listener that never answers, peers that answer
garbage (TCP and UDP), and a host name that cannot be resolved.

Every check's fault tests use these, so "the peer is broken" means the same thing everywhere:

- ``refused_port()``: a loopback TCP port held by a bound socket that never listens, so a
  connection is refused and no other test can take the port while this process lives.
- ``BlackHole``: accepts TCP connections and never sends a byte (a hung daemon, a firewall
  that lets SYNs through to nothing); ``UDPBlackHole``: takes datagrams, never answers.
- ``Garbage(reply)``: answers every TCP connection with ``reply`` once the peer spoke (or
  right away with ``greet=True``); ``UDPGarbage(reply)``: answers every datagram with ``reply``.
- ``UNREACHABLE_HOST``: a name in .invalid (RFC 6761), which no resolver may resolve.
"""
import contextlib
import socket
import threading

import pytest

UNREACHABLE_HOST = "unreachable.invalid"

_HTTP_400_BODY = b"<html>| broken\nbody | here</html>"
# Content-Length counted from the body: urllib3 2 refuses a response whose body is shorter.
HTTP_400 = (b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Type: text/html\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(_HTTP_400_BODY)
            + _HTTP_400_BODY)

_held = {}


def refused_port(host="127.0.0.1"):
    """A port on ``host`` where a TCP connect is refused, reserved for this process."""
    if host not in _held:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.bind((host, 0))  # bound, never listening: the kernel answers SYN with RST
        _held[host] = sock
    return _held[host].getsockname()[1]


def silent_udp_port(host="127.0.0.1"):
    """A UDP port on ``host`` held by a socket that never reads: datagrams vanish."""
    key = ("udp", host)
    if key not in _held:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                             socket.SOCK_DGRAM)
        sock.bind((host, 0))
        _held[key] = sock
    return _held[key].getsockname()[1]


class _Peer:
    kind = socket.SOCK_STREAM

    def __init__(self, host="127.0.0.1", port=0):
        self.host = host
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, self.kind)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))  # port 0: an ephemeral one
        if self.kind == socket.SOCK_STREAM:
            self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopped = threading.Event()
        self.connections = []
        self.received = []
        self.thread = threading.Thread(target=self._serve, daemon=True,
                                       name="%s:%d" % (type(self).__name__, self.port))

    @property
    def address(self):
        return "[%s]:%d" % (self.host, self.port) if ":" in self.host else \
            "%s:%d" % (self.host, self.port)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join(2)
        self.sock.close()
        for conn in self.connections:
            with contextlib.suppress(OSError):
                conn.close()

    def _serve(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._guarded, args=(conn,), daemon=True).start()

    def _guarded(self, conn):
        try:
            conn.settimeout(30)
            self.handle(conn)
        except (OSError, ValueError):
            pass

    def handle(self, conn):
        raise NotImplementedError


class BlackHole(_Peer):
    """Accepts TCP connections, reads nothing, says nothing, closes nothing until stopped."""

    def handle(self, conn):
        self.stopped.wait()


class Garbage(_Peer):
    """Answers each TCP connection with ``reply`` (after the peer's first bytes, or at once
    with ``greet=True``), then closes it."""

    def __init__(self, reply=HTTP_400, greet=False, host="127.0.0.1"):
        super().__init__(host)
        self.reply = reply
        self.greet = greet

    def handle(self, conn):
        try:
            if not self.greet:
                self.received.append(conn.recv(4096))
            conn.sendall(self.reply)
        finally:
            with contextlib.suppress(OSError):
                conn.close()


class UDPPeer(_Peer):
    """A UDP peer: each datagram is recorded and ``answer(data)`` says what to send back
    (None: nothing)."""

    kind = socket.SOCK_DGRAM

    def _serve(self):
        while not self.stopped.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            self.received.append(data)
            reply = self.answer(data)
            if reply is not None:
                with contextlib.suppress(OSError):
                    self.sock.sendto(reply, peer)

    def answer(self, data):
        raise NotImplementedError


class UDPBlackHole(UDPPeer):
    """Reads datagrams and never answers."""

    def answer(self, data):
        return None


class UDPGarbage(UDPPeer):
    """Answers every datagram with ``reply`` (default: text, not DNS, not SNMP)."""

    def __init__(self, reply=b"HTTP/1.0 200 OK\r\n\r\nthis is not a DNS answer", host="127.0.0.1"):
        super().__init__(host)
        self.reply = reply

    def answer(self, data):
        return self.reply


# -- fixtures (auto-registered by tests/conftest.py) --------------------------------------

@pytest.fixture(scope="session")
def blackhole_tcp():
    with BlackHole() as peer:
        yield peer


@pytest.fixture(scope="session")
def blackhole_udp():
    with UDPBlackHole() as peer:
        yield peer


@pytest.fixture(scope="session")
def garbage_http():
    """Plain HTTP where TLS (or anything else) is expected: answers a 400 with '|' and a
    newline in its body."""
    with Garbage(HTTP_400) as peer:
        yield peer


@pytest.fixture(scope="session")
def garbage_udp():
    with UDPGarbage() as peer:
        yield peer
