"""osop-checks-api run from this checkout on loopback, and a client that calls it as Icinga's
IfwApiCheckTask does (new TLS context and connection per call, POST /v1/checker?command=NAME,
JSON body, Content-Length, Connection close).

    with ApiDaemon(tmp, pki) as daemon:
        status, answer = daemon.call("check_disk_partitions", {"-p": ["/"], "-w": "20%"})

``api_pki(directory)`` makes an ECDSA CA (root and intermediate, lab.peers.tls.TestCA) with
the callers of the daemon's matrix: the server certificate (api.osop.test, 127.0.0.1, ::1), the
node's own client certificate (``client``: its CN is the daemon's --node, as the local icinga2
calls), another node of the CA, a satellite (admitted with --allow-client), one revoked in
``crl_path`` from the start and one to revoke later, the root CA's own certificate and key, and
a foreign CA's client certificate.

Run as root (the suite is), ApiDaemon starts the daemon as the unprivileged DAEMON_USER, which
the daemon requires, from a world-readable copy of this checkout (lab/peers/foreign_user.py),
with its own copies of the certificate, key, CA and CRL files.
"""
import atexit
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

from osop_checks import cli
from osop_checks.api import protocol
from lab.peers import ROOT
from lab.peers.tls import TestCA, free_port

SERVER_NAME = "api.osop.test"
OTHER_NODE = "other.osop.test"
SATELLITE = "satellite.osop.test"
DAEMON_USER = "nobody"


class Files:
    """A certificate (chain) file and its key, as lab.peers.tls.Issued has them."""

    def __init__(self, chain_path, key_path):
        self.chain_path = chain_path
        self.key_path = key_path


class Pki:
    server_name = SERVER_NAME

    def __init__(self, directory):
        self.ca = TestCA(os.path.join(directory, "ca"))
        # the chain file carries the intermediate: the daemon and the client trust the root
        self.server = self.ca.issue("server", names=(SERVER_NAME, "localhost"),
                                    ips=("127.0.0.1", "::1"))
        self.client = self.ca.issue("client", names=(SERVER_NAME,), ips=())
        self.other = self.ca.issue("other", names=(OTHER_NODE,), ips=())
        self.satellite = self.ca.issue("satellite", names=(SATELLITE,), ips=())
        self.revoked = self.ca.issue("revoked", names=(SERVER_NAME,), ips=())
        self.revoked_later = self.ca.issue("revoked_later", names=(SERVER_NAME,), ips=())
        self.crl_path = self.ca.write_crl("crl.pem", [self.revoked])
        self.ca_itself = Files(self.ca.ca_path, self.ca.write_key("root.key", self.ca.root_key))
        self.foreign = TestCA(os.path.join(directory, "foreign"))
        self.stranger = self.foreign.issue("stranger", names=(SERVER_NAME,), ips=())
        self.ca_path = self.ca.ca_path


def api_pki(directory):
    return Pki(directory)


ICINGA_NODE = "master.osop.test"  # the Icinga node of the end-to-end tests and bench


def ecdsa_pair(instance, label):
    """An ECDSA P-256 key and a CSR for ICINGA_NODE made with Python, signed by the instance's
    CA with `icinga2 pki sign-csr` (as docs/api-security.md tells an admin to do with
    openssl)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory = os.path.join(instance.base, "ecdsa")
    os.makedirs(directory, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ICINGA_NODE)]))
           .sign(key, hashes.SHA256()))
    paths = {ext: os.path.join(directory, label + ext) for ext in (".key", ".csr", ".crt")}
    with open(paths[".key"], "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    with open(paths[".csr"], "wb") as handle:
        handle.write(csr.public_bytes(serialization.Encoding.PEM))
    instance.run("pki", "sign-csr", "--csr", instance.inside(paths[".csr"]),
                 "--cert", instance.inside(paths[".crt"]), *instance.defines())
    return paths[".crt"], paths[".key"]


class IcingaPki:
    """What ApiDaemon needs of an Icinga instance's PKI: ca_path and server.chain_path /
    key_path."""

    def __init__(self, ca, cert, key, client=None):
        self.ca_path = ca
        self.server = Files(cert, key)
        self.client = Files(*(client or (cert, key)))
        self.server_name = ICINGA_NODE


def client_context(ca, cert, key):
    """As Icinga's SetupSslContext: a new context per call, peer verified, our certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(ca)
    context.load_cert_chain(cert, key)
    return context


def post(port, command, body, context, host="127.0.0.1", server_name=SERVER_NAME, timeout=30,
         raw=None, source=None):
    """(HTTP status, decoded JSON or the raw text) of one request; raw: bytes sent instead;
    source: the local address to call from (another loopback address than an attacker's)."""
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = raw if raw is not None else (
        "POST /v1/checker?command=%s HTTP/1.1\r\nHost: %s:%d\r\nAccept: application/json\r\n"
        "Content-Type: application/json\r\nUser-Agent: Icinga/osop-tests\r\n"
        "Content-Length: %d\r\n\r\n" % (command, server_name, port, len(payload))
    ).encode() + payload
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as raw_sock:
        raw_sock.settimeout(timeout)
        if source:
            raw_sock.bind((source, 0))
        raw_sock.connect((host, port))
        with context.wrap_socket(raw_sock, server_hostname=server_name) as sock:
            sock.sendall(request)
            data = b""
            while True:
                try:
                    chunk = sock.recv(65536)
                except ssl.SSLError:
                    break
                if not chunk:
                    break
                data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    try:
        return status, json.loads(rest.decode())
    except ValueError:
        return status, rest.decode(errors="replace")


_install = []  # the world-readable copy of this checkout, made once per process


def read_until_closed(raw, tls, incoming):
    """What the server sent through ``tls`` (a client over memory BIOs, ``incoming`` its
    inbound one) on the socket ``raw`` until it closed the connection: for the tests'
    clients that time their own handshake flights."""
    data = b""
    while True:
        chunk = raw.recv(65536)
        if not chunk:
            return data
        incoming.write(chunk)
        try:
            while True:
                piece = tls.read(65536)
                if not piece:
                    break
                data += piece
        except ssl.SSLWantReadError:
            continue
        except ssl.SSLZeroReturnError:
            return data


def daemon_install():
    """The directory of a copy of this checkout that DAEMON_USER can run (made on first use,
    removed when this process ends)."""
    if not _install:
        from lab.peers import foreign_user

        stack = contextlib.ExitStack()
        atexit.register(stack.close)
        directory = stack.enter_context(foreign_user.shared_tempdir("osop-api-install-"))
        foreign_user.build(directory)
        _install.append((directory, foreign_user.system_python()))
    return _install[0]


class ApiDaemon:
    """`python -m osop_checks.api.daemon` from this checkout on a free loopback port, with
    ``--node`` the PKI's server name; as DAEMON_USER when run as root, with copies of the
    PKI's files in a folder of that user's (``put`` replaces one of them as an admin would)."""

    def __init__(self, pki, port=None, workers=2, extra=(), env=None, python=sys.executable,
                 crl=None, node=None, policy=""):
        self.pki = pki
        # the text of its api.conf (default: nothing beyond plain options); None: no --config,
        # the daemon's own default file
        self.policy = policy
        self.port = port or free_port()
        self.workers_asked = workers
        self.extra = list(extra)
        self.python = python
        self.sources = {"cert": pki.server.chain_path, "key": pki.server.key_path,
                        "ca": pki.ca_path}
        if crl:
            self.sources["crl"] = crl
        self.node = node or pki.server_name
        self.env = dict(os.environ, **(env or {}))
        self.user = DAEMON_USER if os.geteuid() == 0 else None
        self.folder = None
        self.process = None
        self.returncode = None
        self.banner = ""

    def command(self, listen=True):
        files = {name: self.path(name) for name in self.sources}
        return ([self.python, "-m", "osop_checks.api.daemon"]
                + (["--listen", "127.0.0.1:%d" % self.port, "--listen", "[::1]:%d" % self.port]
                   if listen else [])
                + ["--node", self.node, "--workers", str(self.workers_asked)]
                + ([] if self.policy is None else ["--config", self.config_file])
                # its own state and cache, as StateDirectory= and CacheDirectory= make them
                + ["--state-dir", self.own_dir("state"), "--cache-dir", self.own_dir("cache")]
                + [part for name in sorted(files) for part in ("--" + name, files[name])]
                + self.extra)

    def path(self, name):
        """Where the daemon reads its ``name`` file (cert, key, ca, crl)."""
        return os.path.join(self.folder, name + ".pem") if self.folder else self.sources[name]

    def put(self, name, source):
        """Replace the daemon's ``name`` file by a copy of ``source``, atomically (a new
        inode, as an admin's or a package's replacement)."""
        if not self.folder:
            shutil.copyfile(source, self.sources[name] + ".new")
            os.replace(self.sources[name] + ".new", self.sources[name])
            return
        target = self.path(name)
        fresh = target + ".new"
        shutil.copyfile(source, fresh)
        account = pwd.getpwnam(self.user)
        os.chown(fresh, account.pw_uid, account.pw_gid)
        os.chmod(fresh, 0o600)
        os.replace(fresh, target)

    @property
    def config_file(self):
        return os.path.join(self.folder or self.own_folder(), "api.conf")

    def own_folder(self):
        """A folder of ours for the config file when the daemon runs as ourselves."""
        if not getattr(self, "_own", None):
            self._own = tempfile.mkdtemp(prefix="ifwapi-config-")
        return self._own

    def own_dir(self, name):
        """A directory of the daemon's user in its folder (state, cache)."""
        path = os.path.join(self.folder or self.own_folder(), name)
        if not os.path.isdir(path):
            os.makedirs(path)
            if self.user:
                account = pwd.getpwnam(self.user)
                os.chown(path, account.pw_uid, account.pw_gid)
        return path

    def write_policy(self, text):
        """Its api.conf becomes ``text``, atomically; a running daemon reads it on SIGHUP."""
        fresh = self.config_file + ".new"
        with open(fresh, "w") as handle:
            handle.write(text)
        if self.user:
            account = pwd.getpwnam(self.user)
            os.chown(fresh, account.pw_uid, account.pw_gid)
        os.replace(fresh, self.config_file)

    def popen_options(self):
        """How to start the daemon: as DAEMON_USER from the shared install when root, else as
        ourselves from this checkout."""
        if not self.user:
            return {"env": dict(self.env, PYTHONPATH=ROOT), "cwd": ROOT}
        from lab.peers import foreign_user

        install, python = daemon_install()
        if self.python == sys.executable:
            self.python = python
        account = pwd.getpwnam(self.user)
        self.folder = tempfile.mkdtemp(prefix="ifwapi-files-", dir=foreign_user._shared_root())
        os.chown(self.folder, account.pw_uid, account.pw_gid)
        for name, source in self.sources.items():
            self.put(name, source)
        env = dict(self.env, PYTHONPATH=install, HOME=self.folder)
        return {"env": env, "cwd": install, "user": account.pw_uid, "group": account.pw_gid,
                "extra_groups": []}

    def start(self, pass_fds=(), wrap=(), listen=True):
        """Start it (``wrap``: a command that runs it, ``pass_fds``: inherited sockets, for
        socket activation; ``listen=False``: no --listen)."""
        self.log = tempfile.TemporaryFile(prefix="ifwapi-daemon-")
        options = self.popen_options()
        if self.policy is not None:
            self.write_policy(self.policy)
        self.cmd = list(wrap) + self.command(listen)
        self.process = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=self.log,
                                        start_new_session=True, pass_fds=pass_fds, **options)
        if not wait_for(lambda: "listening on" in self.stderr()
                        or self.process.poll() is not None, timeout=30) \
                or self.process.poll() is not None:
            self.stop()
            raise RuntimeError("osop-checks-api did not start: %s" % self.stderr())
        self.banner = self.stderr().splitlines()[0]
        return self

    def stderr(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def context(self, who="client"):
        """A client context with the PKI's certificate ``who`` (client, other, satellite,
        revoked, revoked_later, ca_itself, stranger)."""
        issued = getattr(self.pki, who)
        return client_context(self.pki.ca_path, issued.chain_path, issued.key_path)

    def call(self, command, arguments, who="client", **kw):
        kw.setdefault("server_name", self.pki.server_name)
        return post(self.port, command, arguments, self.context(who), **kw)

    def workers(self):
        """PIDs of the worker processes (the daemon's children)."""
        with open("/proc/%d/task/%d/children" % (self.process.pid, self.process.pid)) as h:
            return [int(p) for p in h.read().split()]

    def cpu_seconds(self):
        """(CPU s of the parent alone, CPU s of the whole daemon: the parent, each worker with
        what its checks started (a worker leads a process group of its own), and the workers
        it replaced and reaped), user + system."""
        from lab.peers.icinga2 import process_cpu

        parent = self.process.pid
        return (process_cpu(parent), process_cpu(parent, group=True) + sum(
            process_cpu(worker, group=True) for worker in self.workers()))

    def rss(self):
        """{pid: resident set size in bytes} of the parent (first) and each worker."""
        sizes = {}
        for pid in [self.process.pid] + self.workers():
            try:
                with open("/proc/%d/status" % pid) as handle:
                    for line in handle:
                        if line.startswith("VmRSS:"):
                            sizes[pid] = int(line.split()[1]) * 1024
            except OSError:
                pass  # a worker replaced between the listing and the read
        return sizes

    def stop(self):
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.returncode = self.process.returncode
        self.process = None
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def as_a_caller_may_ask(check, argv):
    """(argv, None) of a scenario as a network caller may ask it: without --state-file (the
    daemon keeps its checks' state under its own --state-dir); or (None, why) when the
    scenario needs an option the daemon never takes from a caller (a program, a secret)."""
    import importlib

    from osop_checks.api import policy

    actions = importlib.import_module("osop_checks.checks." + check).build_parser(
        )._option_string_actions
    asked, skip = [], False
    for word in argv:
        if skip:
            skip = False
            continue
        action = actions.get(word.split("=", 1)[0])
        if action is not None and action.kind in policy.NEVER:
            if action.kind == cli.FILE_WRITTEN and "--state-file" in action.option_strings:
                skip = "=" not in word
                continue
            return None, policy.refused_key(actions, word.split("=", 1)[0])
        asked.append(word)
    return asked, None


def policy_allowing(requests):
    """The api.conf text that allows what ``requests`` [(check, argv)] ask beyond plain
    options, and nothing else: the demo's own policy file."""
    sections = allowances(requests)
    text = []
    for section in sorted(sections):
        text.append("[%s]" % section)
        text += ["%s = %s" % (f, " ".join(sorted(v))) for f, v in sections[section].items() if v]
    return "\n".join(text) + "\n"


def asks_beyond_plain(check, argv):
    """Whether ``argv`` names a path, host, port, URL or file: what the built-in policy
    (no api.conf) refuses."""
    return any(any(fields.values()) for fields in allowances([(check, argv)]).values())


def allowances(requests):
    """{"check_x": {field: set of values}}: what ``requests`` [(check, argv)] ask beyond
    plain options, by api.conf field (paths, hosts, ports, urls, files)."""
    import importlib

    from osop_checks.api import policy

    sections = {}
    for check, argv in requests:
        parser = importlib.import_module("osop_checks.checks." + check).build_parser()
        fields = sections.setdefault("check_" + check, {f: set() for f in policy.FIELDS})
        parsed = parser.parse_args(argv)
        for action in parser._actions:
            if action.kind in (cli.PLAIN, None) or action.kind in policy.NEVER:
                continue
            value = getattr(parsed, action.dest, None)
            for one in (value if isinstance(value, list) else [value]):
                if one is None or one is action.default or one is True:
                    continue
                _allow(fields, action.kind, one)
    return sections


def _allow(fields, kind, value):
    from osop_checks.api import policy

    if kind == cli.FILE_READ:
        fields["files"].add(os.path.realpath(str(value)))
    elif kind == cli.URL:
        fields["urls"].add(str(value))
    elif kind == cli.PORT:
        fields["ports"].add(str(int(value)))
    else:
        place = policy.place_of(value)
        host = place.host if place.host is not None or kind != cli.HOST else place.path
        if host is not None:
            fields["hosts"].add(str(host))
        if place.port:
            fields["ports"].add(str(place.port))
        if kind == cli.PATH and place.path and place.path.startswith("/"):
            fields["paths"].add(place.path)


def icinga_body(check, argv):
    """The JSON body Icinga's ifw-api sends for a check's argv through osop_<check>_api: each
    option under its long flag (the commands' argument keys), a switch true, a repeated
    option an array of its values (repeat_key is off in ifw-api)."""
    import importlib

    from lab.peers import icinga2

    parser = importlib.import_module("osop_checks.checks." + check).build_parser()
    by_var = {var: action for action, var in icinga2.generator().var_names(check, parser)
              .items()}
    body = {}
    for var, value in icinga2.argv_to_vars(check, parser, argv).items():
        key = icinga2.generator().key_of(by_var[var])
        if isinstance(value, list) and len(value) == 1:
            value = value[0]  # one value: Icinga sends [key, value], a plain string
        body[key] = value
    return body


parse_output = protocol.parse_output


def perf_items(perfdata):
    return protocol.PERF_ITEM.findall(perfdata)


def wait_for(predicate, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def sessions_kept(files, count=500):
    """Sessions OpenSSL's server cache keeps in the daemon's own TLS context
    (osop_checks.api.daemon.tls_context) after ``count`` mutual-TLS handshakes from new
    client contexts: (kept, count). Every call is a new session, so each one kept is memory
    held for nothing."""
    import socket
    import threading

    from osop_checks.api import daemon

    context = daemon.tls_context(daemon.build_parser().parse_args([
        "--cert", files.server.chain_path, "--key", files.server.key_path,
        "--ca", files.ca_path]))
    client = client_context(files.ca_path, files.client.chain_path,
                                    files.client.key_path)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)

        def connect():
            for _ in range(count):
                with socket.create_connection(server.getsockname()) as raw, \
                        client.wrap_socket(raw, server_hostname=files.server_name) as tls:
                    tls.sendall(b"x")
                    tls.recv(1)

        thread = threading.Thread(target=connect)
        thread.start()
        for _ in range(count):
            conn, _ = server.accept()
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
                tls.sendall(b"y")
        thread.join()
    return context.session_stats()["number"], count
