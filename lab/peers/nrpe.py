"""A real NRPE daemon (Debian nagios-nrpe-server) on 127.0.0.1 with the shipped commands.

NRPE refuses to run as root, so it runs as the user nagios (as on a real host), from a
temporary directory that nagios can read, on an ephemeral port, with SSL as it defaults to
and allowed_hosts=127.0.0.1. The command definitions are icinga2-conf/nrpe/osop_checks.cfg
with /usr/lib/nagios/plugins replaced by a plugin directory nagios can reach
(foreign_install, lab/peers/foreign_user.py).
Ask it with ``ask(server, command)``, which runs Debian's check_nrpe.
"""
import contextlib
import os
import pwd
import socket
import subprocess
import time

import pytest

from lab.peers import ROOT, need, need_root
from lab.peers.foreign_user import USER, shared_tempdir

NRPE = "/usr/sbin/nrpe"
CHECK_NRPE = "/usr/lib/nagios/plugins/check_nrpe"
SHIPPED = os.path.join(ROOT, "icinga2-conf", "nrpe", "osop_checks.cfg")


def shipped_commands(plugin_dir):
    """osop_checks.cfg as shipped, pointing at ``plugin_dir``."""
    with open(SHIPPED) as handle:
        return handle.read().replace("/usr/lib/nagios/plugins/check_", plugin_dir + "/check_")


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, port, directory, process):
        self.host = "127.0.0.1"
        self.port = port
        self.directory = directory
        self.process = process


@contextlib.contextmanager
def nrpe_server(plugin_dir, commands=None, port=None):
    """Run nrpe as nagios with ``commands`` (default: the shipped ones, calling the plugins
    in ``plugin_dir``); yields a Server."""
    with shared_tempdir("osop-nrpe-") as directory:
        user = pwd.getpwnam(USER)
        os.chown(directory, user.pw_uid, user.pw_gid)  # nrpe writes its pid file here
        with _running(directory, plugin_dir, commands, port) as server:
            yield server


@contextlib.contextmanager
def _running(directory, plugin_dir, commands, port):
    port = port or _free_port()
    commands_path = os.path.join(directory, "osop_checks.cfg")
    with open(commands_path, "w") as handle:
        handle.write(shipped_commands(plugin_dir) if commands is None else commands)
    config = os.path.join(directory, "nrpe.cfg")
    with open(config, "w") as handle:
        handle.write("\n".join([
            "log_facility=daemon",
            "debug=0",
            "pid_file=%s/nrpe.pid" % directory,
            "server_address=127.0.0.1",
            "server_port=%d" % port,
            "nrpe_user=%s" % USER,
            "nrpe_group=%s" % USER,
            "allowed_hosts=127.0.0.1",
            "dont_blame_nrpe=0",
            "allow_bash_command_substitution=0",
            "command_timeout=60",
            "connection_timeout=300",
            "include=%s" % commands_path,
        ]) + "\n")
    for path in (commands_path, config):
        os.chmod(path, 0o644)
    process = subprocess.Popen(["runuser", "-u", USER, "--", NRPE, "-c", config, "-f"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            if process.poll() is not None:
                raise RuntimeError("nrpe exited with %s: %s" % (
                    process.returncode, process.stdout.read().decode(errors="replace")))
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError as err:
                if time.monotonic() > deadline:
                    raise RuntimeError("nrpe did not listen on 127.0.0.1:%d" % port) from err
                time.sleep(0.1)
        yield Server(port, directory, process)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 15)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()


def ask(server, command, timeout=60):
    """check_nrpe -H 127.0.0.1 -p PORT -c COMMAND: (exit code, output)."""
    proc = subprocess.run([CHECK_NRPE, "-H", server.host, "-p", str(server.port), "-c", command,
                           "-t", str(timeout)], capture_output=True, text=True,
                          timeout=timeout + 10)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def osop_nrpe(foreign_install):
    """The real nrpe with the shipped osop_checks.cfg (module scope)."""
    need("nrpe", "check_nrpe")
    need_root()
    with nrpe_server(foreign_install.bin) as server:
        yield server
