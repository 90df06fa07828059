"""A real OpenSSH server on loopback, and a black hole that accepts TCP and never answers.

``Sshd`` runs /usr/sbin/sshd in the foreground (-D -e -f its own config) on an ephemeral
port of 127.0.0.1 and 127.0.0.2 (two names for "two hosts"), with its own ed25519 host key,
key-only login for a generated client key, and a known_hosts file that trusts its host key.
Needs root (sshd changes to the logged-in user) and openssh-server.

Used by tests/integration/test_three_copies*.py, tests/demo/three_copies.py and bench/.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from tests.peers.blackhole import BlackHole  # noqa: F401  (the copies tests import it here)

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


def _wait_listening(address, port, process, limit=15):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if process.poll() is not None:
            return False
        with socket.socket() as sock:
            sock.settimeout(0.5)
            try:
                sock.connect((address, port))
                return True
            except OSError:
                time.sleep(0.05)
    return False


class Sshd:
    """A running sshd; ``options`` are the check's ssh options that reach it."""

    def __init__(self, addresses=ADDRESSES):
        self.addresses = addresses
        self.dir = tempfile.mkdtemp(prefix="osop-sshd-")
        self.host_key = os.path.join(self.dir, "host_key")
        self.client_key = os.path.join(self.dir, "client_key")
        self.known_hosts = os.path.join(self.dir, "known_hosts")
        self.config = os.path.join(self.dir, "sshd_config")
        self.process = None
        self.port = None

    def start(self):
        host_pub = keygen(self.host_key, "osop-test-host")
        client_pub = keygen(self.client_key)
        with open(os.path.join(self.dir, "authorized_keys"), "w") as handle:
            handle.write(client_pub + "\n")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir
        for _attempt in range(5):
            self.port = free_port()
            self._write_config()
            self.process = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", self.config], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "log"), "a"))
            if _wait_listening(self.addresses[0], self.port, self.process):
                break
            self._stop_process()
        else:
            raise RuntimeError("sshd did not start: %s" % self.log())
        self.write_known_hosts(self.known_hosts, host_pub)
        return self

    def write_known_hosts(self, path, public_key=None):
        """A known_hosts file trusting ``public_key`` (default: this server's) for every
        address; with another key it is a host key mismatch."""
        if public_key is None:
            with open(self.host_key + ".pub") as handle:
                public_key = handle.read().strip()
        key = " ".join(public_key.split()[:2])
        with open(path, "w") as handle:
            for address in self.addresses:
                handle.write("[%s]:%d %s\n" % (address, self.port, key))
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
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def stop(self):
        self._stop_process()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()


@pytest.fixture(scope="session")
def sshd():
    """A real sshd on 127.0.0.1/127.0.0.2 for the whole session (skips without root or
    openssh-server; fails in CI)."""
    from tests.peers import need, need_root

    need_root()
    need("sshd", "ssh", "ssh-keygen", "rsync")
    with Sshd() as server:
        yield server


@pytest.fixture
def ssh_black_hole():
    """A TCP port on 127.0.0.1 that accepts and never answers."""
    with BlackHole() as hole:
        yield hole
