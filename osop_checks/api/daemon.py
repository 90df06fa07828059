"""osop-checks-api: the daemon. One thread, non-blocking sockets, a selectors loop.

A connection goes: TLS handshake (a client certificate signed by the Icinga CA is required,
within HANDSHAKE_TIMEOUT) -> admitted only when the certificate names this node or an
--allow-client, and is no CA -> the whole request read (head and body, within --request-timeout
and the size limits) -> queued for an idle worker -> the answer written -> closed. The parent
never runs a check and never waits on a client: a slow or silent client only holds its own
connection slot, and only until its deadline. A source does at most HANDSHAKES_PER_SOURCE
handshakes at once; its further connections wait, accepted but untouched (no TLS work), at
most WAITING_PER_SOURCE of them, and more are closed at once. A connection's deadlines (its
handshake's, its request's) start when its handshake does: the time it waited for the daemon
is not the client's. A waiting connection is closed when its client hangs up, and after
WAITING_TIMEOUT if it never gets a slot: a burst of calls from the local icinga2 is served in
turn, while one source's flood of idle connections neither holds its descriptors for ever nor
takes the slots of another. An error while handling one connection closes that connection alone.
"""
import argparse
import collections
import contextlib
import errno
import os
import re
import select
import selectors
import signal
import socket
import sys
import time

from osop_checks import __version__, bounded, runtime, text, units
from osop_checks.api import policy, pool, protocol
from osop_checks.state import running_as

PORT = 5668
# Its own key pair, signed by the Icinga CA (docs/api-security.md): never Icinga's private key
# in /var/lib/icinga2/certs, which is nagios' alone.
CERTS = "/etc/osop-checks"
MAX_BODY = 1024 * 1024
MAX_HEAD = 16 * 1024
# Icinga 2.14's default cipher_list (as in Debian 13's icinga2 binary): forward-secret AEAD
# suites only, so neither static RSA key exchange nor CBC with SHA-1 (the DHE ones stay unused:
# no DH parameters are loaded); TLS 1.3's own suites are all AEAD.
ICINGA_CIPHERS = ("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                  "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
                  "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                  "DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256")
# A caller that has not shown its certificate yet gets a few slots per address (idle or
# stalled handshakes from one place cannot hold every slot) and 10 s, as Icinga's own API
# gives a handshake (ApiListener's tls_handshake_timeout): 3 s cut off a round of Icinga's
# calls whose last flights were late because Icinga itself was busy forking that round.
HANDSHAKE_TIMEOUT = 10.0
HANDSHAKES_PER_SOURCE = 16
WAITING_PER_SOURCE = 240  # accepted connections of one source waiting for their handshake
# A connection waiting for a handshake slot is closed after this long (if its client has not
# hung up before; that closes it at once). Twice what Icinga waits for a whole ifw-api call by
# default (IfwApiCheckTask: the command's timeout, 1m, or the service's check_timeout), and
# twice the longest --timeout a caller may ask: a client still there after it is no check's.
WAITING_TIMEOUT = 120.0
GROWTH = 2         # workers grow up to this many times --workers while calls wait
QUEUE_PER_WORKER = 16  # calls waiting per worker at most; more are answered 503
TLS_FILES_CHECKED = 1.0  # seconds between two looks at the certificate files' stat
TLS_FILE_LIMIT = 1024 * 1024  # a certificate, key, CA bundle or CRL read to say what is wrong
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
               "  osop-checks-api          # 127.0.0.1:5668 and [::1]:5668, "
               "/etc/osop-checks/api.crt, api.key, ca.crt, api.conf\n"
               "  osop-checks-api --listen 192.0.2.10:5668 --allow-client satellite1 -v\n"
               "  osop-checks-api --crl /etc/osop-checks/crl.pem --node agent1.example.org\n"
               "as the package runs it: systemctl enable --now osop-checks-api.socket "
               "(docs/api-security.md)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", action="append", type=listen_type, metavar="ADDRESS:PORT",
                        help="address to listen on (repeatable; [v6]:port for IPv6; default: "
                             "127.0.0.1:%d and [::1]:%d)" % (PORT, PORT))
    parser.add_argument("--node", default=node,
                        help="the Icinga node name whose certificate is presented; a client "
                             "whose certificate names it may call (default: this host's FQDN, "
                             "%s)" % node)
    parser.add_argument("--allow-client", action="append", default=[], metavar="NAME",
                        help="a client certificate's common name that may call besides --node "
                             "itself, e.g. the satellite or master that schedules this host's "
                             "checks (repeatable)")
    parser.add_argument("--cert", metavar="FILE",
                        help="its certificate, signed by the Icinga CA for its node name "
                             "(default: %s/api.crt)" % CERTS)
    parser.add_argument("--key", metavar="FILE",
                        help="its own private key (default: %s/api.key)" % CERTS)
    parser.add_argument("--ca", metavar="FILE", default=os.path.join(CERTS, "ca.crt"),
                        help="clients need a certificate signed by this CA (default: %(default)s)")
    parser.add_argument("--crl", metavar="FILE",
                        help="refuse client certificates revoked in this CRL (read again when "
                             "the file changes, as the certificate, key and CA on SIGHUP)")
    parser.add_argument("--workers", type=int, default=4, metavar="N",
                        help="checks run at the same time, one per worker; while all are busy "
                             "up to as many again are forked, and a few calls per worker wait "
                             "their turn (default: 4)")
    parser.add_argument("--max-connections", type=int, default=64, metavar="N",
                        help="open connections at most; more wait in the kernel's backlog "
                             "(default: 64)")
    parser.add_argument("--request-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="a client must finish its request within this (its handshake "
                             "within %g s), counted from when the daemon starts its handshake; "
                             "what it has sent counts even while the daemon is busy "
                             "(default: 10)" % HANDSHAKE_TIMEOUT)
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
    parser.add_argument("--health", action="store_true",
                        help="instead of serving: call the daemon at the first --listen "
                             "address (default 127.0.0.1:%d) as a client with --cert, --key "
                             "and --ca (Icinga's own node certificate), its certificate "
                             "checked for --node, and answer as a monitoring plugin whether it "
                             "is there (the osop_api_health CheckCommand)" % PORT)
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="one line per request on stderr, with where its time went")
    parser.add_argument("-V", "--version", action="version",
                        version="osop-checks-api (osop-checks) %s" % __version__)
    return parser


def _systemd_dir(variable, fallback):
    """The first directory systemd passes in ``variable`` (StateDirectory= and
    CacheDirectory= set them, colon-separated), else ``fallback``."""
    return (os.environ.get(variable) or "").split(":")[0] or fallback


class TLSFileError(Exception):
    """A certificate, key, CA or CRL file that cannot be loaded; the message names it, and
    where ``user_named`` the user the daemon runs as too (start_failed names it otherwise)."""

    def __init__(self, why, user_named=False):
        super().__init__(why)
        self.user_named = user_named


def tls_files(args):
    """{what: path} of the files the TLS setup is made of."""
    files = {"certificate": args.cert or os.path.join(CERTS, "api.crt"),
             "key": args.key or os.path.join(CERTS, "api.key"), "CA": args.ca}
    if args.crl:
        files["CRL"] = args.crl
    return files


def tls_context(args):
    import ssl  # the daemon's alone: the checks never import this module
    files = tls_files(args)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # Icinga's DEFAULT_TLS_PROTOCOLMIN
    context.set_ciphers(ICINGA_CIPHERS)
    # every call is a new session; a client may not renegotiate (a CPU cost it could repeat
    # at will, and a TLS 1.2 attack surface Icinga does not need)
    context.options |= ssl.OP_NO_TICKET | ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    # ifw-api resumes nothing: under TLS 1.3, OP_NO_TICKET alone makes OpenSSL keep each
    # session in its server cache instead (the parent grew by ~11 KiB a request); no tickets
    # at all keep it flat.
    context.num_tickets = 0
    steps = [("certificate", lambda: context.load_cert_chain(files["certificate"],
                                                             files["key"])),
             ("CA", lambda: context.load_verify_locations(files["CA"]))]
    if "CRL" in files:
        steps.append(("CRL", lambda: context.load_verify_locations(files["CRL"])))
    for what, load in steps:
        try:
            load()
        except (OSError, ssl.SSLError) as exc:
            raise tls_file_trouble(files, what, exc) from exc
    context.verify_mode = ssl.CERT_REQUIRED
    if "CRL" in files:
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return context


def tls_file_trouble(files, what, exc):
    """The TLSFileError of ``what`` of ``files`` failing to load, naming the one file at
    fault, and the user the daemon runs as where a file cannot be read: OpenSSL's own words
    ("[Errno 13] Permission denied", "[SSL] PEM lib") name neither, and load_cert_chain
    reads two files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    suspects = [("certificate", x509.load_pem_x509_certificate),
                ("key", lambda data: serialization.load_pem_private_key(data, None))] \
        if what == "certificate" else [(what, None)]
    for name, parse in suspects:
        path = files[name]
        try:
            data = bounded.read_file(path, TLS_FILE_LIMIT)
        except OSError as err:
            return TLSFileError("cannot read the %s %s: %s (as user %s%s)" % (
                name, path, err.strerror or err, running_as(),
                "; it must be readable by this user's group, e.g. root:%s 0640" % (
                    running_as(group=True)) if err.errno == errno.EACCES else ""),
                user_named=True)
        except bounded.TooLarge:
            return TLSFileError("the %s %s is larger than %d bytes" % (name, path,
                                                                       TLS_FILE_LIMIT))
        if parse is not None:
            try:
                parse(data)
            except (ValueError, TypeError) as err:
                return TLSFileError("the %s %s is not a PEM %s: %s" % (
                    name, path, "certificate" if name == "certificate" else
                    "private key without a passphrase",
                    text.oneline(str(err.args[0] if err.args else err).split(". See ")[0],
                                 limit=160)))
    if what == "certificate":
        return TLSFileError("the key %s does not belong to the certificate %s: %s" % (
            files["key"], files["certificate"], runtime._describe(exc)))
    return TLSFileError("cannot load the %s %s: %s" % (what, files[what],
                                                      runtime._describe(exc)))


def tls_stamp(args):
    """What changes when one of the TLS files is replaced or rewritten (inode, size, mtime)."""
    stamp = []
    for path in tls_files(args).values():
        try:
            info = os.stat(path)
            stamp.append((info.st_ino, info.st_size, info.st_mtime_ns))
        except OSError:
            stamp.append(None)
    return tuple(stamp)


def client_refusal(der, allowed):
    """(the client's common name, why it may not call or None): ``der`` is its verified
    certificate, ``allowed`` the names that may call."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_der_x509_certificate(der)
    names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    name = str(names[0]) if names else "(no common name)"
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if is_ca:
        return name, "a CA certificate is never a client"
    if len(names) != 1 or name not in allowed:
        return name, "neither this node (--node) nor an --allow-client"
    return name, None


UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\\]")


def shown(value, limit=200):
    """``value`` for a log line: control characters and backslashes escaped, so nothing a
    caller chose can end the line or forge another; at most ``limit`` characters."""
    value = str(value)
    escaped = UNPRINTABLE.sub(lambda m: "\\\\" if m.group() == "\\" else
                              "\\x%02x" % ord(m.group()) if ord(m.group()) < 0x100 else
                              "\\u%04x" % ord(m.group()), value[:limit])
    return escaped + ("..." if len(value) > limit else "")


class Connection:
    HANDSHAKE, READ, QUEUED, RUNNING, WRITE = range(5)

    def __init__(self, sock, peer, deadline, accepted):
        self.sock = sock
        self.fd = sock.fileno()
        self.source = peer[0]
        self.peer = "[%s]:%s" % peer[:2] if ":" in peer[0] else "%s:%s" % peer[:2]
        self.state = self.HANDSHAKE
        self.deadline = deadline
        self.data = b""
        self.head = None
        self.asked = None  # the command the request target names, before it is known valid
        self.length = None
        self.out = b""
        self.check = None
        self.argv = None
        self.times = {"accept": accepted, "start": time.monotonic()}
        self.client = "-"
        self.result = "-"
        self.closed = False


class Server:
    def __init__(self, args, checks, context, listeners, rules=None):
        self.args = args
        self.checks = checks
        self.context = context
        self.listeners = listeners
        self.allowed_clients = set()
        self.use_policy(rules or policy.Policy())
        self.selector = selectors.DefaultSelector()
        self.connections = {}
        self.workers = []
        self.worker_limit = GROWTH * args.workers
        self.queue = collections.deque()
        self.queue_limit = QUEUE_PER_WORKER * self.worker_limit
        self.listening = False
        self.served = 0
        self.tls_checked = time.monotonic()
        self.tls_stamp = tls_stamp(args)
        # source: [(sock, peer, accepted)] of connections waiting for a handshake slot
        self.waiting = collections.defaultdict(collections.deque)
        # The waiting connections' hang-ups (peer closed or reset), nothing else: their
        # ClientHellos stay unread, so they cannot sit in the selector (always readable).
        self.hangups = select.epoll()
        self.selector.register(self.hangups, selectors.EVENT_READ, ("hangup", None))
        self.turned_away = collections.Counter()  # connections closed at once, per source
        self.turned_away_said = 0.0
        self.reloads_asked = []
        # A signal's handler only notes it and the byte Python writes to this socket pair
        # wakes the loop: the reload runs in the loop, never inside a write to the log.
        self.wake_read, self.wake_write = socket.socketpair()
        for sock in (self.wake_read, self.wake_write):
            sock.setblocking(False)
        self.selector.register(self.wake_read, selectors.EVENT_READ, ("signal", None))

    # -- bookkeeping ----------------------------------------------------------------------------

    def say(self, line):
        sys.stderr.write("osop-checks-api: %s\n" % line)
        sys.stderr.flush()

    def inherited(self):
        """What a forked worker must close: every socket and the selector of the parent."""
        return ([self.selector, self.hangups, self.wake_read, self.wake_write]
                + list(self.listeners)
                + [c.sock for c in self.connections.values()] + [w.channel for w in self.workers]
                + [sock for queue in self.waiting.values() for sock, _peer, _accepted in queue])

    def spawn(self):
        worker = pool.spawn(self.checks, self.inherited, self.args.max_jobs)
        self.workers.append(worker)
        self.selector.register(worker.channel, selectors.EVENT_READ, ("worker", worker))
        return worker

    def fill(self):
        """Fork workers up to --workers (after one was killed or left)."""
        while len(self.workers) < self.args.workers:
            self.spawn()

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
            self.say("%s %s %s %s: waited %s ms, handshake %s ms, request %s ms, check %s ms, "
                     "answered %s ms" % (conn.peer, shown(conn.client), conn.check.command
                                         if conn.check else "-", shown(conn.result),
                                         ms("start"), ms("handshake"), ms("request"),
                                         ms("checked"), ms("written")))

    def close(self, conn):
        import ssl  # the daemon's alone: the checks never import this module
        if conn.closed:
            return
        conn.closed = True
        if self.connections.get(conn.fd) is conn:
            del self.connections[conn.fd]
            try:
                self.selector.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
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

    def isolated(self, conn, action, *args):
        """``action(conn, *args)``; a bug or an unforeseen error there closes this connection
        alone, with one line in the log."""
        try:
            action(conn, *args)
        except Exception as exc:
            self.say("closed %s after an internal error: %s: %s" % (
                conn.peer, type(exc).__name__, shown(exc)))
            conn.result = "internal error"
            conn.out = b"x"  # no close_notify: its state is unknown
            try:
                self.close(conn)
            except Exception:  # the bookkeeping itself is broken: drop the entry anyway
                self.connections.pop(conn.fd, None)

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

    # -- the TLS setup and the policy -----------------------------------------------------------

    def use_policy(self, rules):
        """The policy ``rules`` (policy.Policy) from now on: what each check may be asked, and
        who may call: this node, --allow-client and the config file's [api] allow-client."""
        protocol.apply_policy(self.checks, rules)
        self.allowed_clients = {self.args.node} | set(self.args.allow_client or ()) | set(
            rules.clients)

    def reload_policy(self):
        """The config file again (SIGHUP); one that cannot be read keeps the policy in use."""
        try:
            rules = policy.load(self.args.config or policy.DEFAULT_CONFIG,
                                explicit=bool(self.args.config), commands=self.checks)
        except policy.PolicyError as exc:
            self.say("%s; the policy loaded before stays in use (SIGHUP)" % shown(exc))
            return
        self.use_policy(rules)
        self.say("policy loaded again from %s (SIGHUP)" % shown(rules.source))

    def reload(self, why):
        """A new TLS context from the files, for the connections accepted from now on; one
        that cannot be made keeps the old one."""
        self.tls_stamp = tls_stamp(self.args)
        try:
            self.context = tls_context(self.args)
        except TLSFileError as exc:
            self.say("%s; the certificate, key, CA and CRL loaded before stay in use (%s)"
                     % (exc, why))
            return
        self.say("certificate, key, CA%s loaded again (%s)" % (
            " and CRL" if self.args.crl else "", why))

    def hear_sighup(self):
        """SIGHUP from now on: the TLS files loaded again in the loop (see reload)."""
        signal.set_wakeup_fd(self.wake_write.fileno())
        signal.signal(signal.SIGHUP, lambda signum, frame: self.reloads_asked.append("SIGHUP"))

    def look_at_tls_files(self):
        """Reload when a TLS file changed, looking at most once every TLS_FILES_CHECKED s."""
        now = time.monotonic()
        if now - self.tls_checked < TLS_FILES_CHECKED:
            return
        self.tls_checked = now
        if tls_stamp(self.args) != self.tls_stamp:
            self.reload("a file changed")

    # -- connections ----------------------------------------------------------------------------

    def accept(self, listener):
        self.look_at_tls_files()
        while len(self.connections) < self.args.max_connections:
            try:
                sock, peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # EMFILE and the like: try again on the next event
                self.say("accept: %s" % exc)
                break
            try:
                self.admit(sock, peer)
            except Exception as exc:  # reset before we looked at it, and the like
                self.say("closed a connection from %s at once: %s: %s" % (
                    shown(peer[0]), type(exc).__name__, shown(exc)))
                sock.close()
        self.update_listening()
        self.say_turned_away()

    def admit(self, sock, peer):
        waiting = self.handshaking(peer[0])
        if len(waiting) >= HANDSHAKES_PER_SOURCE:
            # A burst of calls (Icinga starts a round at once) leaves many handshakes half
            # done while the loop accepts: take what those clients sent first, and turn this
            # one away only if the source's handshakes are really stalled.
            for conn in waiting:
                self.isolated(conn, self.handshake)
            waiting = self.handshaking(peer[0])
        if len(waiting) >= HANDSHAKES_PER_SOURCE:
            if len(self.waiting[peer[0]]) >= WAITING_PER_SOURCE:
                self.turned_away[peer[0]] += 1
                sock.close()
                return
            # its handshake starts when one of the source's ends (see start_waiting)
            self.hangups.register(sock.fileno(), select.EPOLLRDHUP)
            self.waiting[peer[0]].append((sock, peer, time.monotonic()))
            return
        self.start(sock, peer)

    def start(self, sock, peer, accepted=None):
        """The TLS handshake of an accepted connection begins, and its deadlines with it."""
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tls = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        now = time.monotonic()
        conn = Connection(tls, peer, now + min(HANDSHAKE_TIMEOUT, self.args.request_timeout),
                          now if accepted is None else accepted)
        self.connections[conn.fd] = conn
        self.selector.register(tls, selectors.EVENT_READ, ("conn", conn))
        self.isolated(conn, self.handshake)

    def start_waiting(self, now):
        """Start the handshakes of waiting connections while their sources have room; one that
        waited WAITING_TIMEOUT for it is closed (a flood: Icinga gave up long before)."""
        for source in list(self.waiting):
            queue = self.waiting[source]
            while queue and (queue[0][2] + WAITING_TIMEOUT < now or
                             len(self.handshaking(source)) < HANDSHAKES_PER_SOURCE):
                sock, peer, accepted = queue.popleft()
                self.hangups.unregister(sock)
                if accepted + WAITING_TIMEOUT < now:
                    self.turned_away[source] += 1
                    sock.close()
                    continue
                try:
                    self.start(sock, peer, accepted)
                except Exception as exc:  # reset while it waited, and the like
                    self.say("closed a connection from %s at once: %s: %s" % (
                        shown(source), type(exc).__name__, shown(exc)))
                    sock.close()
            if not queue:
                del self.waiting[source]

    def hung_up(self):
        """Close the waiting connections whose clients hung up (Icinga gave up on the call, or
        a flood's client left): nobody is there to answer."""
        gone = {fd for fd, _events in self.hangups.poll(0)}
        for fd in gone:
            self.hangups.unregister(fd)
        for source in list(self.waiting):
            queue = self.waiting[source]
            for entry in [entry for entry in queue if entry[0].fileno() in gone]:
                queue.remove(entry)
                entry[0].close()
            if not queue:
                del self.waiting[source]

    def handshaking(self, source):
        return [c for c in self.connections.values()
                if c.state == Connection.HANDSHAKE and c.source == source and not c.closed]

    def say_turned_away(self):
        """One line a second at most for connections closed at once (a flood would otherwise
        flood the log too)."""
        now = time.monotonic()
        if self.turned_away and now - self.turned_away_said >= 1:
            self.say("closed unanswered (%d handshakes at once and %d waiting per source at "
                     "most, each waiting %s at most): %s" % (
                         HANDSHAKES_PER_SOURCE, WAITING_PER_SOURCE,
                         units.format_seconds(WAITING_TIMEOUT),
                         ", ".join("%d from %s" % (n, shown(source))
                                   for source, n in self.turned_away.items())))
            self.turned_away.clear()
            self.turned_away_said = now

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
        conn.client, refusal = client_refusal(conn.sock.getpeercert(binary_form=True),
                                              self.allowed_clients)
        if refusal:
            self.say("refused %s: its certificate %s is %s" % (
                conn.peer, shown(conn.client), refusal))
            conn.result = "refused (%s)" % refusal
            conn.out = b"x"
            return self.close(conn)
        conn.state = Connection.READ
        conn.deadline = conn.times["start"] + self.args.request_timeout
        # The client's request follows its last handshake flight, which it has not seen
        # acknowledged: with Nagle's algorithm on its side (Icinga's ifw-api client) the
        # request waits for our ACK, which Linux delays ~40 ms while we have nothing to send.
        # ACK at once: the request comes in the next round trip (-v: "request" ~40 ms less).
        with contextlib.suppress(OSError, AttributeError):
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
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
                return self.refuse(conn, exc)

    def refuse(self, conn, exc):
        """Answer a BadRequest under the command asked, as soon as that is known."""
        if exc.command is None:
            exc.command = conn.check.command if conn.check else conn.asked
        if exc.name == protocol.SELF and conn.check is not None:
            exc.name = conn.check.name
        self.respond(conn, exc.status, protocol.error_answer(exc))

    def take(self, conn):
        """Parse what has arrived; True once the connection has left the READ state."""
        if conn.head is None:
            end = conn.data.find(b"\r\n\r\n")
            if end < 0:
                if len(conn.data) > MAX_HEAD:
                    conn.asked = protocol.command_asked(conn.data)
                    raise protocol.BadRequest(431, "request head over %d bytes" % MAX_HEAD)
                return False
            head, conn.data = conn.data[:end], conn.data[end + 4:]
            conn.asked = protocol.command_asked(head)
            method, target, headers = protocol.parse_head(head)
            conn.check = protocol.parse_target(target, self.checks)
            conn.length = protocol.body_length(method, headers, MAX_BODY)
            conn.head = headers
            if headers.get("expect", "").lower() == "100-continue":
                conn.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        if len(conn.data) < conn.length:
            return False
        if len(conn.data) > conn.length:
            raise protocol.BadRequest(400, "more data than the Content-Length")
        conn.times["request"] = time.monotonic()
        arguments = protocol.decode_body(conn.check, conn.data)
        conn.argv = protocol.cap_timeout(conn.check, protocol.to_argv(conn.check, arguments))
        if len(self.queue) >= self.queue_limit:
            raise protocol.BadRequest(503, "all %d workers are busy and %d calls wait: try "
                                      "again later" % (len(self.workers), len(self.queue)))
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
                gone = conn.sock.recv(1) == b""
            except (ssl.SSLWantReadError, BlockingIOError):
                gone = False
            except (ssl.SSLError, OSError):
                gone = True
            if gone:
                conn.result = "client left while its check %s" % (
                    "ran: killed" if conn.state == Connection.RUNNING else "waited")
                self.abandon(conn)

    def abandon(self, conn):
        """The caller hung up: its check is killed (its worker replaced), it is not run to
        its end for no one."""
        conn.out = b"x"
        self.close(conn)
        for worker in list(self.workers):
            if worker.job is conn:
                self.retire(worker, killed=True)
                self.fill()
        self.dispatch()

    # -- workers -------------------------------------------------------------------------------

    def dispatch(self):
        while self.queue:
            idle = [w for w in self.workers if w.job is None and not w.leaving]
            if idle:
                worker = idle[0]
            elif self.args.workers <= len(self.workers) < self.worker_limit:
                # every worker busy (black-holed peers, say): a call need not wait for them
                worker = self.spawn()
            else:
                return
            conn = self.queue.popleft()
            conn.state = Connection.RUNNING
            try:
                worker.send(conn.check, conn.argv, conn)
            except OSError:  # it died between two jobs
                conn.state = Connection.QUEUED
                self.queue.appendleft(conn)
                worker.job = None
                self.retire(worker)
                self.fill()

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
            self.fill()
            if conn is not None:
                self.isolated(conn, self.finished, runtime.UNKNOWN, runtime.unknown(
                    conn.check.name, "the worker running the check ended without an answer"))
            self.dispatch()
            return
        if reply is not None:
            if worker.leaving:  # it exits now (threads left behind, or its quota): a fresh one
                self.retire(worker)
                self.fill()
            elif len(self.workers) > self.args.workers and not self.queue:
                self.retire(worker)  # grown for a busy time that is over
            self.isolated(conn, self.finished, reply["exitcode"], reply["output"])
            self.dispatch()

    def expire(self, now):
        for worker in list(self.workers):
            if worker.deadline is not None and now > worker.deadline:
                conn = worker.job
                # Slow may be the loop, not the check: a burst of handshakes can hold one turn
                # past the deadline while the check's answer waits unread. Take it first;
                # only a check still without one is killed.
                if self.answered(worker, conn):
                    continue
                self.retire(worker, killed=True)
                self.fill()
                self.isolated(conn, self.finished, runtime.UNKNOWN, runtime.unknown(
                    conn.check.name, "no result within the --timeout of %s: the check was "
                    "killed" % units.format_seconds(conn.check.timeout(conn.argv))))
        for conn in list(self.connections.values()):
            if conn.deadline is not None and now > conn.deadline:
                self.isolated(conn, self.cut_off)
        self.dispatch()

    def answered(self, worker, conn):
        """Take what ``worker`` has written of the answer to ``conn``; True once it is in
        (or the worker is gone, which answers too)."""
        while True:
            seen = len(worker.buffer)
            self.from_worker(worker)
            if worker not in self.workers or worker.job is not conn:
                return True
            if len(worker.buffer) == seen:  # nothing more has arrived
                return False

    def cut_off(self, conn):
        """A connection past its deadline: what it sent is taken first, then it is closed."""
        import ssl  # the daemon's alone: the checks never import this module
        if conn.state in (Connection.HANDSHAKE, Connection.READ):
            # Slow may be the daemon, not the client: a burst of calls (Icinga starts a
            # round's checks at once) can keep the loop in its handshakes for longer than
            # the deadline while a client's flight and request wait unread. Take what
            # has arrived first; only a client still short of its request is cut off.
            self.event(conn, selectors.EVENT_READ)
            if conn.closed or conn.state not in (Connection.HANDSHAKE, Connection.READ):
                return
        if conn.state == Connection.READ and conn.check is not None:
            exc = protocol.BadRequest(408, "the request was not complete within %s"
                                      % units.format_seconds(self.args.request_timeout),
                                      conn.check.command, conn.check.name)
            conn.out = protocol.http_response(408, protocol.error_answer(exc))
            try:  # one try, never a wait: the client is slow by definition
                conn.sock.send(conn.out)
            except (ssl.SSLError, OSError):
                pass
        conn.result = "timed out (%s)" % ("handshake", "request", "", "", "answer")[conn.state]
        conn.out = b"x"
        self.close(conn)

    # -- the loop --------------------------------------------------------------------------------

    def serve(self):
        self.fill()
        self.update_listening()
        while True:
            try:
                self.turn()
            except Exception as exc:  # a bug outside any one connection: the loop goes on
                self.say("internal error in the loop: %s: %s" % (type(exc).__name__,
                                                                  shown(exc)))
                self.fill()

    def turn(self):
        deadlines = [w.deadline for w in self.workers if w.deadline is not None] + [
            c.deadline for c in self.connections.values() if c.deadline is not None] + [
            queue[0][2] + WAITING_TIMEOUT for queue in self.waiting.values()]
        timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        if self.turned_away:
            timeout = 1.0 if timeout is None else min(timeout, 1.0)
        for key, mask in self.selector.select(timeout):
            kind, thing = key.data
            if kind == "listen":
                self.accept(thing)
            elif kind == "signal":
                while True:
                    try:
                        if not self.wake_read.recv(512):
                            break
                    except (BlockingIOError, InterruptedError):
                        break
            elif kind == "hangup":
                self.hung_up()
            elif kind == "worker":
                if thing in self.workers:
                    self.from_worker(thing)
            elif self.connections.get(thing.fd) is thing:
                self.isolated(thing, self.event, mask)
        while self.reloads_asked:
            self.reload(self.reloads_asked.pop())
            self.reload_policy()
        self.expire(time.monotonic())
        self.start_waiting(time.monotonic())
        self.say_turned_away()

    def shutdown(self):
        for worker in list(self.workers):
            self.retire(worker, killed=True)
        for queue in self.waiting.values():
            for sock, _peer, _accepted in queue:
                sock.close()
        self.hangups.close()
        for conn in list(self.connections.values()):
            conn.out = b"x"
            self.close(conn)


def activated_listeners():
    """The listening sockets systemd passed (socket activation: LISTEN_PID is this process,
    LISTEN_FDS of them from fd 3 on), [] when it passed none. The variables are removed, so
    no check run by a worker sees them."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return []
    try:
        count = int(os.environ.get("LISTEN_FDS", ""))
    except ValueError:
        return []
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
    listeners = []
    for fd in range(3, 3 + count):
        sock = socket.socket(fileno=fd)
        sock.setblocking(False)
        listeners.append(sock)
    return listeners


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
            raise OSError(exc.errno, "cannot listen on %s:%d: %s" % (
                host, port, exc.strerror)) from None
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
    if args.health:  # a client that runs no check: root or nagios may ask
        from osop_checks.api import health

        return health.main(args)
    # A reload asked while it starts (systemctl reload right after enable) would otherwise
    # end it (SIGHUP's default); it is kept and done once the server runs.
    early_reloads = []
    signal.signal(signal.SIGHUP, lambda signum, frame: early_reloads.append("SIGHUP"))
    if os.geteuid() == 0:
        sys.stderr.write("osop-checks-api: refusing to run as root: every check a caller asks "
                         "for would run as root; run it as a system user of its own (the "
                         "package's unit runs it as osop-checks-api)\n")
        return 2
    if args.workers < 1 or args.max_connections < 1 or args.request_timeout <= 0:
        sys.stderr.write("osop-checks-api: --workers, --max-connections and --request-timeout "
                         "must be positive\n")
        return 2
    checks = protocol.load_checks()
    try:  # a missing default file is the built-in policy; one named with --config must exist
        rules = policy.load(args.config or policy.DEFAULT_CONFIG, explicit=bool(args.config),
                            commands=checks)
    except policy.PolicyError as exc:
        return start_failed(exc, 2)
    # The checks' default state and cache files are the daemon's own, never the caller's.
    os.environ["XDG_STATE_HOME"] = os.path.abspath(args.state_dir)
    os.environ["XDG_CACHE_HOME"] = os.path.abspath(args.cache_dir)
    try:
        context = tls_context(args)
        listeners = activated_listeners() or bind(args)
    except TLSFileError as exc:
        return start_failed(exc, 1, user_named=exc.user_named)
    except (OSError, ssl.SSLError) as exc:
        return start_failed(runtime._describe(exc), 1)
    preload()
    server = Server(args, checks, context, listeners, rules)

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    # SIGHUP: the files again, for the connections from now on; listeners and calls stay
    server.hear_sighup()
    if early_reloads:
        server.reloads_asked.extend(early_reloads)
        server.wake_write.send(b"\0")  # done before the first call, not after it
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


def start_failed(why, status, user_named=False):
    """Say on stderr (the journal, under systemd) why the daemon cannot start, with the user
    it ran as (a file readable by root alone is the usual cause) unless ``why`` names it
    already (``user_named``), and return ``status``."""
    sys.stderr.write("osop-checks-api: %s%s\n" % (
        why, "" if user_named else " (as user %s)" % running_as()))
    return status


def console():
    sys.exit(main())


if __name__ == "__main__":
    console()
