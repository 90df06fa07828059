"""osop-checks-api: the daemon. One thread, non-blocking sockets, a selectors loop.

A connection goes: TLS handshake (a client certificate signed by the Icinga CA is required)
-> the whole request read (head and body, within --request-timeout and the size limits) ->
queued for an idle worker -> the answer written -> closed. The parent never runs a check and
never waits on a client: a slow or silent client only holds its own connection slot, and
only until its deadline.
"""
import argparse
import collections
import errno
import os
import selectors
import signal
import socket
import sys
import time

from osop_checks import __version__, runtime, units
from osop_checks.api import policy, pool, protocol

PORT = 5668
CERTS = "/var/lib/icinga2/certs"
MAX_BODY = 1024 * 1024
MAX_HEAD = 16 * 1024
# Loaded once in the parent, so no worker pays for them (the checks import them lazily).
PRELOAD = ("psutil", "requests", "urllib3", "dns.resolver", "dns.message", "dns.rdatatype",
           "cryptography.x509", "cryptography.hazmat.primitives.serialization",
           "cryptography.x509.oid", "ssl", "subprocess", "threading", "concurrent.futures",
           "ipaddress", "hashlib", "json", "tempfile", "socket", "stat")


def listen_type(text):
    """ADDRESS:PORT or [V6ADDRESS]:PORT -> (family, address, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise argparse.ArgumentTypeError("%r is not ADDRESS:PORT ([::1]:5668 for IPv6)" % text)
    if host.startswith("[") and host.endswith("]"):
        return socket.AF_INET6, host[1:-1], int(port)
    if ":" in host:
        raise argparse.ArgumentTypeError("write an IPv6 address in brackets: [%s]:%s" % (
            host, port))
    return socket.AF_INET, host, int(port)


def build_parser():
    node = socket.getfqdn()
    parser = argparse.ArgumentParser(
        prog="osop-checks-api",
        description="Serve the osop checks to Icinga 2.14's ifw-api CheckCommand "
                    "(POST /v1/checker?command=NAME over mutual TLS) from pre-forked workers, "
                    "so Icinga runs a check without starting a process.",
        epilog="examples:\n"
               "  osop-checks-api                       # 127.0.0.1:5668 and [::1]:5668, "
               "Icinga's certificates\n"
               "  osop-checks-api --listen 0.0.0.0:5668 --workers 4 -v\n"
               "  osop-checks-api --cert /etc/osop/api.crt --key /etc/osop/api.key",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", action="append", type=listen_type, metavar="ADDRESS:PORT",
                        help="address to listen on (repeatable; [v6]:port for IPv6; default: "
                             "127.0.0.1:%d and [::1]:%d)" % (PORT, PORT))
    parser.add_argument("--node", default=node,
                        help="the Icinga node name whose certificate is presented "
                             "(default: this host's FQDN, %s)" % node)
    parser.add_argument("--cert", metavar="FILE",
                        help="certificate to present (default: %s/NODE.crt)" % CERTS)
    parser.add_argument("--key", metavar="FILE",
                        help="its private key (default: %s/NODE.key)" % CERTS)
    parser.add_argument("--ca", metavar="FILE", default=os.path.join(CERTS, "ca.crt"),
                        help="clients need a certificate signed by this CA (default: %(default)s)")
    parser.add_argument("--crl", metavar="FILE",
                        help="refuse client certificates revoked in this CRL")
    parser.add_argument("--workers", type=int, default=4, metavar="N",
                        help="checks run at the same time, one per worker; more wait their "
                             "turn (default: 4)")
    parser.add_argument("--max-connections", type=int, default=64, metavar="N",
                        help="open connections at most; more wait in the kernel's backlog "
                             "(default: 64)")
    parser.add_argument("--request-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="a client must finish its handshake and request within this; "
                             "what it has sent counts even while the daemon is busy "
                             "(default: 10)")
    parser.add_argument("--max-jobs", type=int, default=5000, metavar="N",
                        help="a worker is replaced after this many checks (default: 5000)")
    parser.add_argument("--config", metavar="FILE",
                        help="what a caller may ask each check beyond plain options: the "
                             "paths, hosts, ports, URLs and files it allows (default: %s; "
                             "without that file, nothing beyond plain options)"
                             % policy.DEFAULT_CONFIG)
    parser.add_argument("--state-dir", metavar="DIR", default=_systemd_dir(
                            "STATE_DIRECTORY", "/var/lib/osop-checks-api"),
                        help="the checks' state files (XDG_STATE_HOME of the workers; "
                             "default: $STATE_DIRECTORY, else %(default)s)")
    parser.add_argument("--cache-dir", metavar="DIR", default=_systemd_dir(
                            "CACHE_DIRECTORY", "/var/cache/osop-checks-api"),
                        help="the checks' caches (XDG_CACHE_HOME of the workers; default: "
                             "$CACHE_DIRECTORY, else %(default)s)")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="one line per request on stderr, with where its time went")
    parser.add_argument("-V", "--version", action="version",
                        version="osop-checks-api (osop-checks) %s" % __version__)
    return parser


def _systemd_dir(variable, fallback):
    """The first directory systemd passes in ``variable`` (StateDirectory= and
    CacheDirectory= set them, colon-separated), else ``fallback``."""
    return (os.environ.get(variable) or "").split(":")[0] or fallback


def tls_context(args):
    import ssl  # the daemon's alone: the checks never import this module
    cert = args.cert or os.path.join(CERTS, args.node + ".crt")
    key = args.key or os.path.join(CERTS, args.node + ".key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # Icinga's DEFAULT_TLS_PROTOCOLMIN
    context.options |= ssl.OP_NO_TICKET | ssl.OP_NO_COMPRESSION  # every call is a new session
    # ifw-api resumes nothing: under TLS 1.3, OP_NO_TICKET alone makes OpenSSL keep each
    # session in its server cache instead (the parent grew by ~11 KiB a request); no tickets
    # at all keep it flat.
    context.num_tickets = 0
    context.load_cert_chain(cert, key)
    context.load_verify_locations(args.ca)
    context.verify_mode = ssl.CERT_REQUIRED
    if args.crl:
        context.load_verify_locations(args.crl)
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return context


class Connection:
    HANDSHAKE, READ, QUEUED, RUNNING, WRITE = range(5)

    def __init__(self, sock, peer, deadline):
        self.sock = sock
        self.peer = peer
        self.state = self.HANDSHAKE
        self.deadline = deadline
        self.data = b""
        self.head = None
        self.length = None
        self.out = b""
        self.check = None
        self.argv = None
        self.times = {"accept": time.monotonic()}
        self.client = "-"
        self.result = "-"
        self.closed = False


class Server:
    def __init__(self, args, checks, context, listeners):
        self.args = args
        self.checks = checks
        self.context = context
        self.listeners = listeners
        self.selector = selectors.DefaultSelector()
        self.connections = {}
        self.workers = []
        self.queue = collections.deque()
        self.listening = False
        self.served = 0

    # -- bookkeeping ----------------------------------------------------------------------------

    def inherited(self):
        """What a forked worker must close: every socket and the selector of the parent."""
        return ([self.selector] + list(self.listeners) + [c.sock for c in self.connections.values()]
                + [w.channel for w in self.workers])

    def spawn(self):
        worker = pool.spawn(self.checks, self.inherited, self.args.max_jobs)
        self.workers.append(worker)
        self.selector.register(worker.channel, selectors.EVENT_READ, ("worker", worker))
        return worker

    def retire(self, worker, killed=False):
        self.selector.unregister(worker.channel)
        self.workers.remove(worker)
        if killed:
            worker.kill()
        else:
            worker.reap()

    def log(self, conn):
        if self.args.verbose:
            t = conn.times
            start = t["accept"]

            def ms(mark):
                return "%.1f" % ((t[mark] - start) * 1000) if mark in t else "-"
            sys.stderr.write(
                "osop-checks-api: %s %s %s %s: handshake %s ms, request %s ms, check %s ms, "
                "answered %s ms\n" % (conn.peer, conn.client, conn.check.command if conn.check
                                      else "-", conn.result, ms("handshake"), ms("request"),
                                      ms("checked"), ms("written")))
            sys.stderr.flush()

    def close(self, conn):
        import ssl  # the daemon's alone: the checks never import this module
        if conn.closed:
            return
        conn.closed = True
        if conn.sock.fileno() in self.connections:
            del self.connections[conn.sock.fileno()]
            self.selector.unregister(conn.sock)
        if conn.state == Connection.WRITE and not conn.out:
            try:
                conn.sock.unwrap()  # our close_notify, so Icinga's shutdown ends at once
            except (ssl.SSLError, OSError, ValueError):
                pass
        conn.sock.close()
        if conn in self.queue:
            self.queue.remove(conn)
        self.log(conn)
        self.update_listening()

    def update_listening(self):
        want = len(self.connections) < self.args.max_connections
        if want != self.listening:
            for sock in self.listeners:
                if want:
                    self.selector.register(sock, selectors.EVENT_READ, ("listen", sock))
                else:
                    self.selector.unregister(sock)
            self.listening = want

    def watch(self, conn, events):
        self.selector.modify(conn.sock, events, ("conn", conn))

    # -- connections ----------------------------------------------------------------------------

    def accept(self, listener):
        while len(self.connections) < self.args.max_connections:
            try:
                sock, peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # EMFILE and the like: try again on the next event
                sys.stderr.write("osop-checks-api: accept: %s\n" % exc)
                break
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            conn = Connection(tls, "%s:%s" % peer[:2],
                              time.monotonic() + self.args.request_timeout)
            self.connections[tls.fileno()] = conn
            self.selector.register(tls, selectors.EVENT_READ, ("conn", conn))
            self.handshake(conn)
        self.update_listening()

    def handshake(self, conn):
        import ssl  # the daemon's alone: the checks never import this module
        try:
            conn.sock.do_handshake()
        except ssl.SSLWantReadError:
            return self.watch(conn, selectors.EVENT_READ)
        except ssl.SSLWantWriteError:
            return self.watch(conn, selectors.EVENT_WRITE)
        except (ssl.SSLError, OSError) as exc:  # no or a foreign client certificate, garbage
            conn.result = "refused (TLS: %s)" % (getattr(exc, "reason", None) or exc)
            return self.close(conn)
        conn.times["handshake"] = time.monotonic()
        subject = dict(x[0] for x in (conn.sock.getpeercert() or {}).get("subject", ()))
        conn.client = subject.get("commonName", "?")
        conn.state = Connection.READ
        self.watch(conn, selectors.EVENT_READ)
        self.read(conn)

    def read(self, conn):
        import ssl  # the daemon's alone: the checks never import this module
        while True:
            try:
                chunk = conn.sock.recv(65536)
            except ssl.SSLWantReadError:
                return
            except (ssl.SSLError, OSError):
                return self.close(conn)
            if not chunk:
                conn.result = "closed by the client before its request was complete"
                return self.close(conn)
            conn.data += chunk
            try:
                if self.take(conn):
                    return
            except protocol.BadRequest as exc:
                return self.respond(conn, exc.status, protocol.error_answer(exc))

    def take(self, conn):
        """Parse what has arrived; True once the connection has left the READ state."""
        if conn.head is None:
            end = conn.data.find(b"\r\n\r\n")
            if end < 0:
                if len(conn.data) > MAX_HEAD:
                    raise protocol.BadRequest(431, "request head over %d bytes" % MAX_HEAD)
                return False
            head, conn.data = conn.data[:end], conn.data[end + 4:]
            method, target, headers = protocol.parse_head(head)
            conn.check = protocol.parse_target(target, self.checks)
            conn.length = protocol.body_length(method, headers, MAX_BODY)
            conn.head = headers
            if headers.get("expect", "").lower() == "100-continue":
                conn.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        if len(conn.data) < conn.length:
            return False
        if len(conn.data) > conn.length:
            raise protocol.BadRequest(400, "more data than the Content-Length",
                                      conn.check.command, conn.check.name)
        conn.times["request"] = time.monotonic()
        arguments = protocol.decode_body(conn.check, conn.data)
        conn.argv = protocol.to_argv(conn.check, arguments)
        conn.state = Connection.QUEUED
        conn.deadline = None  # the worker's deadline rules now
        self.selector.modify(conn.sock, selectors.EVENT_READ, ("conn", conn))
        self.queue.append(conn)
        self.dispatch()
        return True

    def respond(self, conn, status, document, result=None):
        conn.result = result or "%d" % status
        conn.out = protocol.http_response(status, document)
        conn.state = Connection.WRITE
        conn.deadline = time.monotonic() + self.args.request_timeout
        self.watch(conn, selectors.EVENT_WRITE)
        self.write(conn)

    def write(self, conn):
        import ssl  # the daemon's alone: the checks never import this module
        try:
            while conn.out:
                sent = conn.sock.send(conn.out)
                conn.out = conn.out[sent:]
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
            return
        except (ssl.SSLError, OSError):
            conn.out = b"x"  # no close_notify on a broken connection
            return self.close(conn)
        conn.times["written"] = time.monotonic()
        self.close(conn)

    def event(self, conn, mask):
        import ssl  # the daemon's alone: the checks never import this module
        if conn.state == Connection.HANDSHAKE:
            self.handshake(conn)
        elif conn.state == Connection.READ:
            self.read(conn)
        elif conn.state == Connection.WRITE:
            self.write(conn)
        else:  # waiting for its check: a client that hangs up is noticed here
            try:
                if conn.sock.recv(1) == b"":
                    conn.result = "client left while its check ran"
                    self.close(conn)
            except (ssl.SSLWantReadError, BlockingIOError):
                pass
            except (ssl.SSLError, OSError):
                self.close(conn)

    # -- workers -------------------------------------------------------------------------------

    def dispatch(self):
        for worker in self.workers:
            if not self.queue:
                return
            if worker.job is None and not worker.leaving:
                conn = self.queue.popleft()
                conn.state = Connection.RUNNING
                try:
                    worker.send(conn.check, conn.argv, conn)
                except OSError:  # it died between two jobs
                    self.queue.appendleft(conn)
                    self.retire(worker)
                    self.spawn()
                    return self.dispatch()

    def finished(self, conn, code, output):
        conn.times["checked"] = time.monotonic()
        if not conn.closed:
            self.respond(conn, 200, protocol.answer(conn.check.command, code, output),
                         "exit %d" % code)

    def from_worker(self, worker):
        conn = worker.job
        try:
            reply = worker.receive()
        except EOFError:
            self.retire(worker)
            self.spawn()
            if conn is not None:
                self.finished(conn, runtime.UNKNOWN, runtime.unknown(
                    conn.check.name, "the worker running the check ended without an answer"))
            self.dispatch()
            return
        if reply is not None:
            if worker.leaving:  # it exits now (threads left behind, or its quota): a fresh one
                self.retire(worker)
                self.spawn()
            self.finished(conn, reply["exitcode"], reply["output"])
            self.dispatch()

    def expire(self, now):
        import ssl  # the daemon's alone: the checks never import this module
        for worker in list(self.workers):
            if worker.deadline is not None and now > worker.deadline:
                conn = worker.job
                self.retire(worker, killed=True)
                self.spawn()
                self.finished(conn, runtime.UNKNOWN, runtime.unknown(
                    conn.check.name, "no result within the --timeout of %s: the check was "
                    "killed" % units.format_seconds(conn.check.timeout(conn.argv))))
        for conn in list(self.connections.values()):
            if conn.deadline is not None and now > conn.deadline:
                if conn.state in (Connection.HANDSHAKE, Connection.READ):
                    # Slow may be the daemon, not the client: a burst of calls (Icinga starts a
                    # round's checks at once) can keep the loop in its handshakes for longer than
                    # the deadline while a client's flight and request wait unread. Take what
                    # has arrived first; only a client still short of its request is cut off.
                    self.event(conn, selectors.EVENT_READ)
                    if conn.closed or conn.state not in (Connection.HANDSHAKE, Connection.READ):
                        continue
                if conn.state == Connection.READ and conn.check is not None:
                    exc = protocol.BadRequest(408, "the request was not complete within %s"
                                              % units.format_seconds(self.args.request_timeout),
                                              conn.check.command, conn.check.name)
                    conn.out = protocol.http_response(408, protocol.error_answer(exc))
                    try:  # one try, never a wait: the client is slow by definition
                        conn.sock.send(conn.out)
                    except (ssl.SSLError, OSError):
                        pass
                conn.result = "timed out (%s)" % ("handshake", "request", "", "", "answer")[
                    conn.state]
                conn.out = b"x"
                self.close(conn)
        self.dispatch()

    # -- the loop --------------------------------------------------------------------------------

    def serve(self):
        for _ in range(self.args.workers):
            self.spawn()
        self.update_listening()
        while True:
            deadlines = [w.deadline for w in self.workers if w.deadline is not None] + [
                c.deadline for c in self.connections.values() if c.deadline is not None]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            for key, mask in self.selector.select(timeout):
                kind, thing = key.data
                if kind == "listen":
                    self.accept(thing)
                elif kind == "worker":
                    if thing in self.workers:
                        self.from_worker(thing)
                elif thing.sock.fileno() in self.connections:
                    self.event(thing, mask)
            self.expire(time.monotonic())

    def shutdown(self):
        for worker in list(self.workers):
            self.retire(worker, killed=True)
        for conn in list(self.connections.values()):
            conn.out = b"x"
            self.close(conn)


def bind(args):
    defaults = args.listen is None
    addresses = args.listen or [(socket.AF_INET, "127.0.0.1", PORT),
                                (socket.AF_INET6, "::1", PORT)]
    listeners = []
    for family, host, port in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            if defaults and family == socket.AF_INET6 and exc.errno == errno.EADDRNOTAVAIL:
                continue  # no IPv6 loopback on this host
            raise OSError(exc.errno, "cannot listen on %s:%d: %s" % (host, port, exc.strerror))
        sock.listen(128)
        sock.setblocking(False)
        listeners.append(sock)
    return listeners


def preload():
    import argparse
    import functools
    import gettext
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # the check that needs it says so in its own UNKNOWN line
    # Every check builds its parser per run, and argparse asks gettext for each of its
    # messages, which searches the locale directories on disk every time (a third of a
    # worker's time per check). The daemon's locale does not change while it runs.
    argparse._ = functools.lru_cache(maxsize=512)(gettext.gettext)
    argparse.ngettext = functools.lru_cache(maxsize=512)(gettext.ngettext)


def main(argv=None):
    import ssl  # the daemon's alone: the checks never import this module
    args = build_parser().parse_args(argv)
    if args.workers < 1 or args.max_connections < 1 or args.request_timeout <= 0:
        sys.stderr.write("osop-checks-api: --workers, --max-connections and --request-timeout "
                         "must be positive\n")
        return 2
    checks = protocol.load_checks()
    try:  # a missing default file is the built-in policy; one named with --config must exist
        rules = policy.load(args.config or policy.DEFAULT_CONFIG, explicit=bool(args.config),
                            commands=checks)
    except policy.PolicyError as exc:
        sys.stderr.write("osop-checks-api: %s\n" % exc)
        return 2
    # The checks' default state and cache files are the daemon's own, never the caller's.
    os.environ["XDG_STATE_HOME"] = os.path.abspath(args.state_dir)
    os.environ["XDG_CACHE_HOME"] = os.path.abspath(args.cache_dir)
    try:
        context = tls_context(args)
        listeners = bind(args)
    except (OSError, ssl.SSLError) as exc:
        sys.stderr.write("osop-checks-api: %s\n" % runtime._describe(exc))
        return 1
    preload()
    protocol.apply_policy(checks, rules)
    server = Server(args, checks, context, listeners)

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    sys.stderr.write("osop-checks-api: listening on %s with %d workers; checks: %s\n" % (
        ", ".join("[%s]:%d" % s.getsockname()[:2] if s.family == socket.AF_INET6
                  else "%s:%d" % s.getsockname()[:2] for s in listeners),
        args.workers, ", ".join(sorted(checks))))
    sys.stderr.flush()
    try:
        server.serve()
    finally:
        server.shutdown()
    return 0


def console():
    sys.exit(main())


if __name__ == "__main__":
    console()
