"""A real Net-SNMP snmpd on 127.0.0.1 with its own config, for tests, `make demo` and bench/.

    with Snmpd() as agent:
        agent.port, agent.community, agent.user, agent.auth_key, agent.priv_key

The agent runs in the foreground (-f) from a private config (-C -c CONF) and persistent dir,
on an ephemeral UDP port, with a random v2c community (read-only, loopback only), a v3
authPriv user (SHA/AES unless told otherwise) and UCD-SNMP-MIB dskTable rows for every
mounted disk (includeAllDisks). ``private_mounts`` starts it in a mount namespace of its own
(unshare -m) with a tmpfs on each given path, so a filesystem the host never sees can come
and go between restarts.
"""
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

SNMPD = shutil.which("snmpd", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") or \
    "/usr/sbin/snmpd"
# Net-SNMP reads no MIB files: without the (non-free) MIB packages it only complains.
QUIET_ENV = {"MIBS": "", "MIBDIRS": "/nonexistent"}


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Snmpd:
    def __init__(self, community=None, user="osop", auth_proto="SHA", auth_key=None,
                 priv_proto="AES", priv_key=None, disks=(), private_mounts=(), port=None,
                 extra_users=(), address="127.0.0.1", netns=None):
        """``netns``: run inside this network namespace (lab/peers/netns.py, ipv6.py) on
        UDP port 161 of ``address`` (an IPv6 one listens as udp6 and answers the community
        from anywhere in that namespace's network)."""
        self.community = community or "c-" + secrets.token_hex(8)
        self.user = user
        self.auth_proto = auth_proto
        self.auth_key = auth_key or "a-" + secrets.token_hex(8)
        self.priv_proto = priv_proto
        self.priv_key = priv_key or "p-" + secrets.token_hex(8)
        self.disks = list(disks)
        self.private_mounts = list(private_mounts)
        self.port = port
        # (user, auth proto, auth key, priv proto, priv key): more v3 users, authPriv each
        self.extra_users = list(extra_users)
        self.address, self.netns = address, netns
        if netns:
            self.port = 161
        self.process = None
        self.dir = None
        self.log_path = None

    # -- config --------------------------------------------------------------------------
    def config(self):
        lines = [
            # loopback only here; in a test network from any of its hosts
            "rocommunity%s %s %s" % ("6" if ":" in self.address else "", self.community,
                                     "default" if self.netns else "127.0.0.1"),
            "rouser %s priv" % self.user,
            # createUser is read from the main config: with -C the persistent snmpd.conf is
            # not read at start, only written at exit.
            'createUser %s %s "%s" %s "%s"' % (self.user, self.auth_proto, self.auth_key,
                                               self.priv_proto, self.priv_key),
            "includeAllDisks 10%",
            "dontLogTCPWrappersConnects yes",
            "sysName osop-test-agent",
        ]
        for user, auth, auth_key, priv, priv_key in self.extra_users:
            lines += ["rouser %s priv" % user,
                      'createUser %s %s "%s" %s "%s"' % (user, auth, auth_key, priv, priv_key)]
        lines += ["disk %s" % path for path in self.disks]
        return "\n".join(lines) + "\n"

    # -- life cycle ----------------------------------------------------------------------
    def start(self, private_mounts=None, attempts=5):
        if private_mounts is not None:
            self.private_mounts = list(private_mounts)
        if self.dir is None:
            self.dir = tempfile.mkdtemp(prefix="osop-snmpd-")
            os.makedirs(os.path.join(self.dir, "persist"), mode=0o700)
        for attempt in range(attempts):
            if not self.netns and (self.port is None or attempt):
                self.port = free_udp_port()
            if self._start_once():
                return self
        raise RuntimeError("snmpd did not start: %s" % self.log_tail())

    def _start_once(self):
        conf = os.path.join(self.dir, "snmpd.conf")
        with open(conf, "w") as handle:
            handle.write(self.config())
        os.chmod(conf, 0o600)
        self.log_path = os.path.join(self.dir, "snmpd.log")
        pidfile = os.path.join(self.dir, "snmpd.pid")
        # -I -smux: no SMUX listener on the fixed TCP port 199 (tests run side by side).
        argv = [SNMPD, "-C", "-c", conf, "-f", "-Lf", self.log_path, "-p", pidfile, "-I", "-smux",
                ("udp6:[%s]:%d" if ":" in self.address else "udp:%s:%d") % (
                    self.address, self.port)]
        if self.private_mounts:
            script = "".join('mount -t tmpfs -o size=8m osop-test "%s" && ' % p
                             for p in self.private_mounts) + 'exec "$@"'
            argv = ["unshare", "--mount", "--propagation", "private", "--",
                    "sh", "-c", script, "snmpd"] + argv
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns] + argv
        env = dict(os.environ, SNMP_PERSISTENT_DIR=os.path.join(self.dir, "persist"),
                   **QUIET_ENV)
        open(self.log_path, "w").close()
        self.process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        limit = time.monotonic() + 10
        while time.monotonic() < limit:
            if self.process.poll() is not None:
                return False  # most likely the port was taken meanwhile: try another
            if "NET-SNMP version" in self.log_tail():
                return True
            time.sleep(0.05)
        self.stop()
        return False

    def log_tail(self, lines=20):
        try:
            with open(self.log_path, errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except (OSError, TypeError):
            return ""

    def stop(self):
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def restart(self, private_mounts=None):
        """Stop and start again on the same port (the state of the mounts may differ)."""
        self.stop()
        if private_mounts is not None:
            self.private_mounts = list(private_mounts)
        if not self._start_once():
            raise RuntimeError("snmpd did not restart: %s" % self.log_tail())
        return self

    def close(self):
        self.stop()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.close()  # a failed start leaves no process and no directory behind
            raise

    def __exit__(self, *exc):
        self.close()

    # -- how a check is told to ask it ----------------------------------------------------
    def write_secret(self, name, value):
        path = os.path.join(self.dir, name)
        with open(path, "w") as handle:
            handle.write(value + "\n")
        os.chmod(path, 0o600)
        return path

    def v2c_args(self):
        return ["-H", "127.0.0.1", "--snmp", "--snmp-port", str(self.port),
                "--community-file", self.write_secret("community", self.community)]

    def v3_args(self):
        return ["-H", "127.0.0.1", "--snmp", "--snmp-port", str(self.port),
                "--snmp-version", "3", "--snmp-user", self.user,
                "--auth-proto", self.auth_proto,
                "--auth-key-file", self.write_secret("auth", self.auth_key),
                "--priv-proto", self.priv_proto,
                "--priv-key-file", self.write_secret("priv", self.priv_key)]


@pytest.fixture(scope="session")
def snmpd():
    """One agent for the whole session (read-only: tests must not change it)."""
    from lab.peers import need

    need("snmpd")
    with Snmpd() as agent:
        yield agent


# -- recorded walks ------------------------------------------------------------------------
def load_walk(name):
    """A walk recorded with Net-SNMP's ``snmpwalk -On`` (tests/fixtures/snmp/NAME) as the
    [(oid tuple, value)] that snmp.walk returns: integers as int, strings as bytes, OIDs as
    dotted text."""
    import re

    rows = []
    from lab.peers import FIXTURES

    with open(os.path.join(FIXTURES, "snmp", name), encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            name_part, _, value_part = line.partition(" = ")
            key = tuple(int(x) for x in name_part.strip().lstrip(".").split("."))
            match = re.match(r"^([\w-]+): ?(.*)$", value_part)
            kind, raw = (match.group(1), match.group(2)) if match else ("STRING", value_part)
            if kind in ("INTEGER", "Gauge32", "Counter32", "Counter64", "Unsigned32"):
                value = int(re.match(r"-?\d+", raw.split("(")[-1].strip()).group(0))
            elif kind == "OID":
                value = raw.strip().lstrip(".")
            elif kind == "IpAddress":
                value = raw.strip()
            elif kind == "Hex-STRING":
                value = bytes.fromhex(raw.replace(" ", ""))
            else:
                value = raw[1:-1].encode() if raw.startswith('"') else raw.encode()
            rows.append((key, value))
    return rows


def as_table(rows, entry, columns=None):
    """Walk rows of one table entry in snmp.table's shape: {index: {column: value}}."""
    from osop_checks.sources import snmp

    entry = snmp.oid(entry)
    table = {}
    for key, value in rows:
        if snmp.under(key, entry) and len(key) > len(entry) + 1:
            column = key[len(entry)]
            if columns is None or column in columns:
                table.setdefault(key[len(entry) + 1:], {})[column] = value
    return table
