"""osop-checks-api tried as an attacker would, on loopback (issue 24): who may call (own node,
other node, allowed satellite, revoked before and after a CRL change, the CA itself), SIGHUP,
running as root, crashes and exhaustion (reset and idle connections, hostile targets and JSON,
black-holed checks), TLS like Icinga's, forged log lines, socket activation.
The daemon runs as an unprivileged user from lab/peers/ifw_api.py's ApiDaemon.
"""
import copy
import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time

import pytest

from osop_checks.api import protocol
from lab.peers import ROOT, ifw_api, need_root
from lab.peers.blackhole import BlackHole
from lab.peers.tls import free_port

# the daemon on loopback: a peer (make check leaves it out)
pytestmark = pytest.mark.peer

CA_NAME = "osop Test Root CA"
DISK = "check_disk_partitions"
# what the calls below ask beyond plain options: the disk of /, TLS on loopback
POLICY = "[check_disk_partitions]\npaths = /\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return ifw_api.api_pki(str(tmp_path_factory.mktemp("ifwapi-attack-pki")))


@pytest.fixture(scope="module")
def api(pki):
    """A daemon that admits the satellite and, to show that a CA is refused for being one,
    the root CA's own name."""
    with ifw_api.ApiDaemon(pki, workers=2, policy=POLICY, extra=[
            "--allow-client", ifw_api.SATELLITE, "--allow-client", CA_NAME,
            "--request-timeout", "10", "-v"]) as daemon:
        yield daemon


def answered(daemon, who="client", **kw):
    """(status, answer) of a plain disk check called with ``who``'s certificate; status 0 when
    the daemon closed the connection without an answer."""
    try:
        status, answer = daemon.call(DISK, {"-p": "/"}, who=who, timeout=10, **kw)
    except (ssl.SSLError, OSError):
        return 0, None
    return (status, answer) if status else (0, None)


def serves(daemon, who="client", **kw):
    status, answer = answered(daemon, who, **kw)
    return status == 200 and answer[DISK]["exitcode"] == 0


def lines(daemon):
    return daemon.stderr().splitlines()


# -- who may call ---------------------------------------------------------------------------

def test_only_the_node_itself_and_allowed_clients_may_call_never_a_ca(api):
    assert serves(api, "client")  # the local icinga2, with the node's own certificate
    assert serves(api, "satellite")  # --allow-client
    for who, why in (("other", "neither this node"), ("ca_itself", "CA certificate")):
        assert answered(api, who) == (0, None), who
        assert ifw_api.wait_for(lambda why=why: any(
            line.startswith("osop-checks-api: refused ") and why in line
            for line in lines(api)), timeout=5), (who, api.stderr())
    assert answered(api, "stranger") == (0, None)
    assert serves(api, "client")


def test_a_revoked_client_is_refused_also_when_revoked_after_the_start(pki):
    with ifw_api.ApiDaemon(pki, crl=pki.crl_path, policy=POLICY) as daemon:
        pid = daemon.process.pid
        assert answered(daemon, "revoked") == (0, None)
        assert serves(daemon, "client")
        assert serves(daemon, "revoked_later")
        daemon.put("crl", pki.ca.write_crl("crl-later.pem", [pki.revoked, pki.revoked_later]))
        assert ifw_api.wait_for(lambda: answered(daemon, "revoked_later") == (0, None))
        assert serves(daemon, "client")
        assert daemon.process.pid == pid and daemon.process.poll() is None


def test_sighup_reloads_without_dropping_the_listener_and_a_bad_file_keeps_the_old(pki):
    with ifw_api.ApiDaemon(pki, crl=pki.crl_path, policy=POLICY) as daemon:
        daemon.process.send_signal(signal.SIGHUP)
        assert ifw_api.wait_for(lambda: "loaded again (SIGHUP)" in daemon.stderr())
        assert daemon.process.poll() is None
        assert serves(daemon, "client")
        broken = os.path.join(os.path.dirname(pki.crl_path), "broken-crl.pem")
        with open(broken, "w") as handle:
            handle.write("-----BEGIN X509 CRL-----\nnot one\n-----END X509 CRL-----\n")
        daemon.put("crl", broken)
        daemon.process.send_signal(signal.SIGHUP)
        assert ifw_api.wait_for(lambda: "stay in use (SIGHUP)" in daemon.stderr())
        (line,) = [line for line in lines(daemon) if "stay in use (SIGHUP)" in line]
        assert daemon.path("crl") in line
        assert daemon.process.poll() is None
        assert serves(daemon, "client")
        assert answered(daemon, "revoked") == (0, None)  # the CRL loaded before holds


def test_it_refuses_to_run_as_root(pki):
    need_root()
    process = subprocess.Popen(
        [sys.executable, "-m", "osop_checks.api.daemon", "--listen", "127.0.0.1:%d"
         % free_port(), "--node", pki.server_name, "--cert", pki.server.chain_path,
         "--key", pki.server.key_path, "--ca", pki.ca_path],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    try:
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 2
    (line,) = err.splitlines()
    assert "root" in line and "system user of its own" in line


# -- staying up -----------------------------------------------------------------------------

def reset(sock):
    """Close ``sock`` with a TCP reset instead of a FIN (SO_LINGER 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_a_burst_of_connections_reset_before_and_in_the_handshake_kills_nothing(api):
    hello = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = api.context().wrap_bio(*hello, server_hostname=api.pki.server_name)
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    client_hello = hello[1].read()
    for number in range(200):
        sock = socket.create_connection(("127.0.0.1", api.port), timeout=10)
        if number % 2:
            sock.sendall(client_hello)
        reset(sock)
    assert serves(api)
    assert api.process.poll() is None


def test_malformed_request_targets_are_answered_400(api):
    for target in ("//[", "//[::1/v1/checker?command=%s" % DISK, "http://[/v1/checker"):
        raw = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}" % target).encode()
        status, _ = api.call("", b"", raw=raw)
        assert status == 400, target
    assert serves(api)


@pytest.mark.parametrize("body", [b'{"-w": Infinity}', b'{"-w": NaN}', b'{"-w": -Infinity}',
                                  b'{"-w": 1e999}', b"[" * 10000 + b"]" * 10000,
                                  b'{"-w": ' + b"[" * 10000 + b"]" * 10000 + b"}"],
                         ids=["Infinity", "NaN", "-Infinity", "1e999", "deep", "deep-value"])
def test_non_finite_numbers_and_deep_nesting_are_bad_json(api, body):
    status, answer = api.call(DISK, body)
    assert status == 400
    assert "is not JSON" in answer[DISK]["checkresult"]
    assert serves(api)


def test_a_duplicate_content_length_is_refused(api):
    body = b'{"-p": "/"}'
    for second in (len(body), 0):
        raw = (b"POST /v1/checker?command=%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
               b"Content-Length: %d\r\n\r\n" % (DISK.encode(), len(body), second)) + body
        status, answer = api.call("", b"", raw=raw)
        assert status == 400 and "given twice" in answer[DISK]["checkresult"], answer


def test_an_error_is_answered_under_the_command_asked(api):
    status, answer = api.call("", b"", raw=b"GET /v1/checker?command=%s HTTP/1.1\r\n"
                                           b"Host: x\r\n\r\n" % DISK.encode())
    assert status == 405 and answer[DISK]["exitcode"] == 3
    status, answer = api.call(DISK, {"-p": [["/"]]})
    assert status == 400 and list(answer) == [DISK]
    assert answer[DISK]["checkresult"].startswith("DISK_PARTITIONS UNKNOWN - the value of -p")


def test_250_idle_connections_do_not_keep_a_call_waiting(api):
    idle = []
    try:
        for _ in range(250):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", api.port))
            idle.append(sock)
        start = time.monotonic()
        # the attacker is elsewhere: the call comes from another address than the idle ones
        assert serves(api, source="127.0.0.2")
        assert time.monotonic() - start < 2
    finally:
        for sock in idle:
            sock.close()
    assert serves(api)


def test_a_burst_of_calls_from_one_source_is_served_in_turn(api):
    """Icinga starts a round's checks at once, all from the local icinga2's address: more
    handshakes than one source may do at once wait their turn, none is turned away."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(max_workers=100) as pool:
        served = list(pool.map(lambda _: serves(api), range(100)))
    assert served.count(True) == 100, served.count(False)


def slow_call(daemon, delay):
    """(status, answer) of a disk check whose client sends its last handshake flight ``delay``
    after the daemon's (a busy icinga2 forking a round's plugins on the same cores), its
    request right behind; status 0 when the daemon closed or reset the connection."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = daemon.context().wrap_bio(incoming, outgoing, server_hostname=daemon.pki.server_name)
    body = b'{"-p": "/"}'
    request = (b"POST /v1/checker?command=%s HTTP/1.1\r\nHost: x\r\nContent-Type: "
               b"application/json\r\nContent-Length: %d\r\n\r\n" % (DISK.encode(), len(body))
               + body)
    try:
        with socket.create_connection(("127.0.0.1", daemon.port), timeout=30) as raw:
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                raw.sendall(outgoing.read())  # the ClientHello, at once
            while True:  # the daemon's flight (it comes when the daemon starts the handshake)
                chunk = raw.recv(65536)
                if not chunk:
                    return 0, None
                incoming.write(chunk)
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    raw.sendall(outgoing.read())
            time.sleep(delay)
            tls.write(request)
            raw.sendall(outgoing.read())
            data = ifw_api.read_until_closed(raw, tls, incoming)
    except (ssl.SSLError, OSError):
        return 0, None
    head, _, rest = data.partition(b"\r\n\r\n")
    return (int(head.split(b" ", 2)[1]), json.loads(rest)) if head else (0, None)


def test_calls_waiting_for_a_handshake_slot_are_not_cut_off_for_the_time_they_waited(pki):
    """Three rounds of one source's handshakes, each slower than half --request-timeout: the
    third round waits longer than --request-timeout for its slots, and its clients are still
    answered, each in its own time (they were reset unread: "TLS handshake with IfW API ...
    failed: Connection reset by peer" in a busy Icinga's burst of calls)."""
    import concurrent.futures

    from osop_checks.api import daemon as api_daemon

    count = 2 * api_daemon.HANDSHAKES_PER_SOURCE + 8
    with ifw_api.ApiDaemon(pki, workers=2, policy=POLICY,
                           extra=["--request-timeout", "2", "-v"]) as daemon:
        with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
            calls = list(pool.map(lambda _: slow_call(daemon, 1.2), range(count)))
        statuses = [status for status, _answer in calls]
        assert statuses == [200] * count, (statuses, daemon.stderr()[-3000:])
        assert all(answer[DISK]["exitcode"] == 0 for _status, answer in calls)


def test_a_caller_cannot_ask_for_more_than_60_s_or_hide_its_timeout():
    disk = protocol.load_checks()[DISK]
    for asked in ({"-t": "86400"}, {"--timeout": 86400}, {"--time": "86400"}):
        argv = protocol.cap_timeout(disk, protocol.to_argv(disk, asked))
        assert argv == ["--timeout=60"], asked
        assert disk.timeout(argv) == 60
    assert protocol.cap_timeout(disk, ["-t5"]) == ["-t5"]
    with pytest.raises(protocol.BadRequest):
        protocol.to_argv(disk, {"-vt86400": True})


def test_black_holed_checks_do_not_starve_a_call_and_are_killed_when_their_caller_leaves(pki):
    with BlackHole() as hole, ifw_api.ApiDaemon(pki, workers=2, policy=POLICY + (
            "[check_tls_expiry]\nhosts = 127.0.0.1\nports = %d\n" % hole.port)) as daemon:
        assert ifw_api.wait_for(lambda: len(daemon.workers()) == 2)
        pinned = set(daemon.workers())
        callers = []
        for _ in range(2):
            raw = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
            sock = daemon.context().wrap_socket(raw, server_hostname=pki.server_name)
            body = ('{"-H": "127.0.0.1", "-p": "%d", "-t": "86400"}' % hole.port).encode()
            sock.sendall(b"POST /v1/checker?command=check_tls_expiry HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body) + body)
            callers.append(sock)
        assert ifw_api.wait_for(lambda: len(hole.connections) >= 2), daemon.stderr()
        start = time.monotonic()
        assert serves(daemon)
        assert time.monotonic() - start < 5
        for sock in callers:
            sock.close()
        assert ifw_api.wait_for(lambda: not pinned & set(daemon.workers()), timeout=3)
        assert serves(daemon)


# -- TLS and logs -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rsa_api(pki):
    """The daemon with an RSA key, where static RSA and CBC suites could be chosen."""
    rsa = copy.copy(pki)
    rsa.server = pki.ca.issue("server-rsa", names=(ifw_api.SERVER_NAME,), ips=("127.0.0.1",),
                              key_kind="rsa2048")
    with ifw_api.ApiDaemon(rsa, workers=1, policy=POLICY) as daemon:
        yield daemon


def tls12_context(daemon, ciphers):
    context = daemon.context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(ciphers + ":@SECLEVEL=0")
    return context


def test_tls_is_icingas_no_static_rsa_no_cbc_sha1(rsa_api):
    good = tls12_context(rsa_api, "ECDHE-RSA-AES128-GCM-SHA256")
    assert ifw_api.post(rsa_api.port, DISK, {"-p": "/"}, good)[0] == 200
    for ciphers in ("AES128-SHA256", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA",
                    "AES128-SHA"):
        with pytest.raises(ssl.SSLError):
            ifw_api.post(rsa_api.port, DISK, {"-p": "/"}, tls12_context(rsa_api, ciphers))


def test_a_client_cannot_renegotiate(pki):
    """The option itself: openssl s_client's R, the one client that asks for a TLS 1.2
    renegotiation, sends it only from a terminal, so no loopback test drives it here."""
    from osop_checks.api import daemon

    context = daemon.tls_context(daemon.build_parser().parse_args([
        "--cert", pki.server.chain_path, "--key", pki.server.key_path, "--ca", pki.ca_path]))
    assert context.options & ssl.OP_NO_RENEGOTIATION


def test_a_client_name_cannot_forge_a_log_line(api, pki):
    forger = pki.ca.issue("forger", names=("evil\nosop-checks-api: forged line",), ips=())
    context = ifw_api.client_context(pki.ca_path, forger.chain_path, forger.key_path)
    try:
        ifw_api.post(api.port, DISK, {"-p": "/"}, context, timeout=10)
    except (ssl.SSLError, OSError):
        pass
    assert ifw_api.wait_for(lambda: "evil\\x0aosop-checks-api: forged line" in api.stderr(),
                            timeout=5), api.stderr()
    assert not any(line.startswith("osop-checks-api: forged line") for line in lines(api))


# -- socket activation ------------------------------------------------------------------------

ACTIVATE = ("import os, sys\n"
            "os.dup2(int(sys.argv[1]), 3)\n"
            "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1')\n"
            "os.execvp(sys.argv[2], sys.argv[2:])\n")


def test_listeners_passed_by_systemd_are_used_and_listen_ignored(pki):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        daemon = ifw_api.ApiDaemon(pki, port=listener.getsockname()[1], policy=POLICY)
        wrapper = [ifw_api.daemon_install()[1] if os.geteuid() == 0 else sys.executable,
                   "-c", ACTIVATE, str(listener.fileno())]
        daemon.start(pass_fds=(listener.fileno(),), wrap=wrapper, listen=False)
        try:
            assert "127.0.0.1:%d" % daemon.port in daemon.banner
            assert serves(daemon)
        finally:
            daemon.stop()
