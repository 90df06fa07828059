"""A real OpenSSH server on loopback, and a black hole that accepts TCP and never answers.

``Sshd`` runs /usr/sbin/sshd in the foreground (-D -e -f its own config) on an ephemeral
port of 127.0.0.1 and 127.0.0.2 (two names for "two hosts"), with its own ed25519 host key,
key-only login for a generated client key (or for a given one), and a known_hosts file that
trusts its host key. ``Sshd(addresses, netns=NAME, names=...)`` runs it instead inside a network
namespace (lab/peers/netns.py) on port 22 of that host's own addresses, as on a real host.
Needs root (sshd changes to the logged-in user) and openssh-server.

Used by tests/integration/test_three_copies*.py, lab/demo/three_copies.py, bench/ and the
hosts of lab/peers/netns.py.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from lab.peers import Started, end_process
from lab.peers.blackhole import BlackHole  # the copies tests import it from here too

SSHD = "/usr/sbin/sshd"
ADDRESSES = ("127.0.0.1", "127.0.0.2")


def free_port(address="127.0.0.1"):
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def keygen(path, comment="osop-checks-test"):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path],
                   check=True, stdin=subprocess.DEVNULL, timeout=30)
    with open(path + ".pub") as handle:
        return handle.read().strip()


def _connects(address, port):
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as sock:
        sock.settimeout(0.5)
        try:
            sock.connect((address, port))
            return True
        except OSError:
            return False


def _listens(netns, port):
    """Whether something listens on TCP ``port`` inside network namespace ``netns``."""
    result = subprocess.run(["ip", "netns", "exec", netns, "ss", "-Hltn", "sport = :%d" % port],
                            capture_output=True, text=True, timeout=30)
    return bool(result.stdout.strip())


def _wait_listening(address, port, process, limit=15, netns=None):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if process.poll() is not None:
            return False
        if _listens(netns, port) if netns else _connects(address, port):
            return True
        time.sleep(0.05)
    return False


class Sshd(Started):
    """A running sshd; ``options`` are the check's ssh options that reach it."""

    def __init__(self, addresses=ADDRESSES, netns=None, names=(), client_key=None):
        """``netns``: run inside this network namespace, on port 22; ``names``: host names
        the known_hosts file trusts besides the addresses; ``client_key``: the private key
        (with its .pub beside it) allowed to log in, instead of a generated one."""
        self.addresses = tuple(addresses)
        self.netns = netns
        self.names = tuple(names)
        self.dir = tempfile.mkdtemp(prefix="osop-sshd-")
        self.host_key = os.path.join(self.dir, "host_key")
        self.client_key = client_key or os.path.join(self.dir, "client_key")
        self.known_hosts = os.path.join(self.dir, "known_hosts")
        self.config = os.path.join(self.dir, "sshd_config")
        self.process = None
        self.port = None

    def start(self):
        host_pub = keygen(self.host_key, "osop-test-host")
        if os.path.exists(self.client_key):
            with open(self.client_key + ".pub") as handle:
                client_pub = handle.read().strip()
        else:
            client_pub = keygen(self.client_key)
        with open(os.path.join(self.dir, "authorized_keys"), "w") as handle:
            handle.write(client_pub + "\n")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        for _attempt in range(5):
            self.port = 22 if self.netns else free_port()
            self._write_config()
            self.process = subprocess.Popen(
                prefix + [SSHD, "-D", "-e", "-f", self.config], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "log"), "a"))
            if _wait_listening(self.addresses[0], self.port, self.process, netns=self.netns):
                break
            self._stop_process()
        else:
            raise RuntimeError("sshd did not start: %s" % self.log())
        self.write_known_hosts(self.known_hosts, host_pub)
        return self

    def known_hosts_lines(self, public_key=None):
        """known_hosts lines trusting ``public_key`` (default: this server's) for every
        address and name."""
        if public_key is None:
            with open(self.host_key + ".pub") as handle:
                public_key = handle.read().strip()
        key = " ".join(public_key.split()[:2])
        hosts = self.names + self.addresses
        if self.port == 22:  # ssh looks up a host on its default port by its bare name
            return ["%s %s\n" % (host, key) for host in hosts]
        return ["[%s]:%d %s\n" % (host, self.port, key) for host in hosts]

    def write_known_hosts(self, path, public_key=None):
        """A known_hosts file trusting ``public_key`` (default: this server's) for every
        address; with another key it is a host key mismatch."""
        with open(path, "w") as handle:
            handle.writelines(self.known_hosts_lines(public_key))
        return path

    def _write_config(self):
        lines = ["Port %d" % self.port]
        lines += ["ListenAddress %s" % a for a in self.addresses]
        lines += [
            "HostKey %s" % self.host_key,
            "PidFile none",
            "AuthorizedKeysFile %s" % os.path.join(self.dir, "authorized_keys"),
            "StrictModes no",
            "UsePAM no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "MaxStartups 100",
            "MaxSessions 100",
            "LogLevel ERROR",
            # sftp: restic's sftp: repositories (test_backup_age_repos) and an sshfs mount of a
            # host's files (test_disk_partitions: a hung mount)
            "Subsystem sftp internal-sftp",
        ]
        if self.netns:  # a host of lab/peers/netns.py, logged in to many times a test
            lines += [
                # bash, started by sshd for a command, reads the user's ~/.bashrc unless it
                # is a nested shell; this machine's root's may be slow (pyenv init) and is no
                # part of a backup host, so every command starts as a nested shell would
                "SetEnv SHLVL=1",
                # the post-quantum key exchange ssh prefers costs half a second of CPU per
                # login on a loaded machine; a host may offer only curve25519, as these do
                "KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org",
            ]
        with open(self.config, "w") as handle:
            handle.write("\n".join(lines) + "\n")

    def log(self):
        try:
            with open(os.path.join(self.dir, "log")) as handle:
                return handle.read()[-2000:]
        except OSError:
            return ""

    def options(self, known_hosts=None):
        """The check's command-line options that reach this server."""
        return ["--ssh-port", str(self.port), "--ssh-identity", self.client_key,
                "--ssh-known-hosts", known_hosts or self.known_hosts]

    def _stop_process(self):
        end_process(self.process, 10)

    def stop(self):
        self._stop_process()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def sshd():
    """A real sshd on 127.0.0.1/127.0.0.2 for the whole session (skips without root or
    openssh-server; fails in CI)."""
    from lab.peers import need, need_root

    need_root()
    need("sshd", "ssh", "ssh-keygen", "rsync")
    with Sshd() as server:
        yield server


@pytest.fixture
def ssh_black_hole():
    """A TCP port on 127.0.0.1 that accepts and never answers."""
    with BlackHole() as hole:
        yield hole
