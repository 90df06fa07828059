"""osop-checks-api on loopback (lab/peers/ifw_api.py): the protocol, bad input, bounds,
isolation between requests, and memory. The Icinga 2.14 side: tests/integration/test_ifw_api.py.
"""
import json
import os
import re
import selectors
import signal
import socket
import ssl
import time

import pytest

from osop_checks.api import policy, pool, protocol
from lab.peers import ifw_api, run_plugin

# the daemon on loopback: a peer (make check leaves it out)
pytestmark = pytest.mark.peer

# what these tests ask beyond plain options (tests/test_api_policy.py: what a caller may ask)
ALLOWED = "[check_disk_partitions]\npaths = / /data2\n"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    base = tmp_path_factory.mktemp("ifwapi-pki")
    pki = ifw_api.api_pki(str(base))
    with ifw_api.ApiDaemon(pki, workers=2, extra=["--request-timeout", "1.5", "-v"],
                           policy=ALLOWED) as daemon:
        yield daemon


def check(module="disk_partitions"):
    return protocol.load_checks(policy.parse(ALLOWED))["check_" + module]


def test_json_arguments_become_the_argv_of_the_checks_parser():
    argv = protocol.to_argv(check(), {"--path": ["/", "/data2"], "-w": "20%", "--verbose": True,
                                      "--ignore-missing": False, "--timeout": 10})
    assert argv == ["--path=/", "--path=/data2", "-w20%", "--verbose", "--timeout=10"]
    assert check().timeout(argv) == 10.0
    assert check().timeout([]) == 30.0
    with pytest.raises(protocol.BadRequest):
        protocol.to_argv(check(), {"/etc/passwd": True})
    with pytest.raises(protocol.BadRequest):
        protocol.to_argv(check(), ["-p", "/"])
    with pytest.raises(protocol.BadRequest):
        protocol.to_argv(check(), {"-p": {"nested": 1}})


def test_the_answer_is_what_icinga_parses_from_the_forked_output():
    output = "DISK OK - fine | 'free /a b'=1B;2;3;0;4 x=5\nlong line\nmore | y=6\n"
    answer = protocol.answer("check_x", 0, output)["check_x"]
    assert answer["checkresult"] == "DISK OK - fine \nlong line\nmore "
    assert answer["perfdata"] == ["'free /a b'=1B;2;3;0;4", "x=5", "y=6"]
    assert protocol.answer("check_x", 2, "X CRITICAL - a|b\n")["check_x"]["checkresult"] \
        == "X CRITICAL - a|b"  # a '|' without perfdata stays text, as in Icinga


def test_a_check_answers_as_on_the_command_line(api):
    status, answer = api.call("check_disk_partitions", {"--path": "/", "-w": "20%"})
    cli = run_plugin("check_disk_partitions", ["--path", "/", "-w", "20%"])
    got = answer["check_disk_partitions"]
    assert status == 200 and got["exitcode"] == cli.exitcode == 0
    assert got["checkresult"].split(" - ")[0] == cli.output.split(" - ")[0]
    assert [p.split("=")[0] for p in got["perfdata"]] == ["'/ inodes'", "'/'"] or \
        sorted(p.split("=")[0] for p in got["perfdata"]) == ["'/ inodes'", "'/'"]


def test_options_that_are_not_the_checks_get_its_usage_line(api):
    status, answer = api.call("check_disk_partitions", {"--bogus": "x"})
    cli = run_plugin("check_disk_partitions", ["--bogus=x"])
    assert status == 200
    assert answer["check_disk_partitions"]["exitcode"] == 3 == cli.exitcode
    assert answer["check_disk_partitions"]["checkresult"] == cli.output.strip()


def test_unknown_command_and_malformed_bodies_are_refused_in_words(api):
    status, answer = api.call("check_nothing", {})
    assert status == 404 and answer["check_nothing"]["exitcode"] == 3
    assert "no check named 'check_nothing'" in answer["check_nothing"]["checkresult"]
    for body, words in ((b"[1, 2]", "not a JSON object"), (b"{nope", "not JSON"),
                        (b'"text"', "not a JSON object"), (b'{"x": 1}', "is not an option")):
        status, answer = api.call("check_disk_partitions", body)
        assert status == 400, body
        line = answer["check_disk_partitions"]["checkresult"]
        assert line.startswith("DISK_PARTITIONS UNKNOWN - ") and words in line, line
    status, answer = api.call("", b"", raw=b"GET /v1/checker?command=check_disk_partitions "
                                             b"HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 405


def test_10_mb_of_json_is_refused_from_its_head_without_reading_it(api):
    body = b'{"-p": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    head = ("POST /v1/checker?command=check_disk_partitions HTTP/1.1\r\nHost: x\r\n"
            "Content-Length: %d\r\n\r\n" % len(body)).encode()
    start = time.monotonic()
    status, answer = api.call("", b"", raw=head + body[:1000])
    assert status == 413 and "over the limit" in answer["check_disk_partitions"]["checkresult"]
    assert time.monotonic() - start < 3


def test_a_client_that_never_finishes_is_cut_off_and_holds_no_worker(api):
    context = api.context()
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=ifw_api.SERVER_NAME) as sock:
            sock.sendall(b"POST /v1/checker?command=check_disk_partitions HTTP/1.1\r\n"
                         b"Content-Length: 100\r\n\r\n{")
            # meanwhile the daemon serves others
            status, answer = api.call("check_disk_partitions", {"-p": "/"})
            assert status == 200 and answer["check_disk_partitions"]["exitcode"] == 0
            start = time.monotonic()
            data = b""
            try:
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except (ssl.SSLError, OSError):
                pass
            assert time.monotonic() - start < 3
            assert b" 408 " in data.split(b"\r\n")[0] or data == b""
    # and one that sends nothing at all, not even a TLS hello
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as silent:
        start = time.monotonic()
        assert silent.recv(10) == b""
        assert time.monotonic() - start < 3


def test_a_client_without_a_certificate_of_the_ca_is_refused(api):
    for who in ("stranger", None):
        if who is None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.load_verify_locations(api.pki.ca_path)
        else:
            context = api.context(who)
        with pytest.raises((ssl.SSLError, OSError)):
            status, answer = ifw_api.post(api.port, "check_disk_partitions", {}, context)
            assert status == 0 and not answer  # TLS 1.3: the refusal arrives after the hello
            raise OSError("no answer")


def test_ipv6_loopback_is_served(api):
    status, answer = api.call("check_disk_partitions", {"-p": "/"}, host="::1")
    assert status == 200 and answer["check_disk_partitions"]["exitcode"] == 0


def test_a_stuck_worker_is_killed_at_the_checks_timeout_and_replaced(api):
    before = api.workers()
    for pid in before:
        os.kill(pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        status, answer = api.call("check_disk_partitions", {"-p": "/", "-t": "1"})
        took = time.monotonic() - start
    finally:
        for pid in before:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    got = answer["check_disk_partitions"]
    assert got["exitcode"] == 3 and "--timeout of 1 s: the check was killed" in \
        got["checkresult"]
    assert 1 < took < 1 + pool.GRACE + 2
    assert ifw_api.wait_for(lambda: len(set(api.workers()) - set(before)) >= 1)
    status, answer = api.call("check_disk_partitions", {"-p": "/"})
    assert answer["check_disk_partitions"]["exitcode"] == 0


def test_nothing_of_one_request_leaks_into_the_next(api):
    plain = api.call("check_disk_partitions", {"-p": "/"})[1]["check_disk_partitions"]
    for _ in range(4):  # reaches both workers
        loud = api.call("check_disk_partitions", {"-p": "/", "-v": 3, "-t": "2"})[1]
        assert loud["check_disk_partitions"]["exitcode"] == 0
    for _ in range(4):
        again = api.call("check_disk_partitions", {"-p": "/"})[1]["check_disk_partitions"]
        assert again["checkresult"].count("\n") == plain["checkresult"].count("\n")


def test_in_process_runs_keep_memory_flat():
    checks = protocol.load_checks()
    snapshot = pool.Snapshot()
    job = {"command": "check_disk_partitions", "argv": ["--path=/", "-w20%"]}
    for _ in range(200):
        pool.run(checks, job)
        snapshot.restore()
    start = pool.rss()
    for _ in range(2000):
        code, output = pool.run(checks, job)
        snapshot.restore()
    assert code == 0, output
    assert pool.rss() - start < 4 * 1024 * 1024


def test_the_daemon_and_its_workers_stay_under_64_mib(api):
    for _ in range(50):
        api.call("check_disk_partitions", {"-p": "/"})
    for pid in [api.process.pid] + api.workers():
        assert 0 < pool.rss(pid) < 64 * 1024 * 1024, pid


def test_no_tls_session_is_kept_for_a_call_that_never_resumes(tmp_path):
    """ifw-api opens a new TLS connection with a new context for every check: a session the
    server cached would be memory held for nothing (the parent grew ~11 KiB a call)."""
    pki = ifw_api.api_pki(str(tmp_path))
    kept, count = ifw_api.sessions_kept(pki, count=50)
    assert (kept, count) == (0, 50)



def in_process_server(tmp_path, *extra):
    """(pki, a daemon.Server run in this process, its listener on 127.0.0.1): the test turns its
    loop, and shifts its clock by passing a later ``now``, instead of waiting."""
    from osop_checks.api import daemon

    pki = ifw_api.api_pki(str(tmp_path))
    args = daemon.build_parser().parse_args([
        "--cert", pki.server.chain_path, "--key", pki.server.key_path, "--ca", pki.ca_path,
        "--node", pki.server_name, "--request-timeout", "10", *extra])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.setblocking(False)
    server = daemon.Server(args, protocol.load_checks(), daemon.tls_context(args), [listener],
                           policy.parse(ALLOWED))
    return pki, server, listener


class HeldCall:
    """A client of an in-process server that sends its request at once behind its last
    handshake flight, as Icinga's does under TLS 1.3, and reads the answer."""

    BODY = b'{"--path":"/"}'
    REQUEST = (b"POST /v1/checker?command=check_disk_partitions HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY)
               + BODY)

    def __init__(self, pki, server, listener):
        import select

        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        client = ifw_api.client_context(pki.ca_path, pki.client.chain_path, pki.client.key_path)
        self.tls = client.wrap_bio(self.incoming, self.outgoing, server_hostname=pki.server_name)
        self.raw = socket.create_connection(listener.getsockname(), timeout=10)
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            self.raw.sendall(self.outgoing.read())  # the ClientHello
        assert select.select([listener], [], [], 10)[0]
        server.accept(listener)
        (self.conn,) = server.connections.values()
        while True:  # the handshake up to the client's last flight, which stays with it
            ready = select.select([self.conn.sock, self.raw], [], [], 10)[0]
            assert ready
            if self.conn.sock in ready:
                server.event(self.conn, 0)
            if self.raw in ready:
                self.incoming.write(self.raw.recv(65536))
                try:
                    self.tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    self.raw.sendall(self.outgoing.read())
        self.tls.write(self.REQUEST)
        self.raw.sendall(self.outgoing.read())  # certificate, finished and request: all unread
        assert select.select([self.conn.sock], [], [], 10)[0]

    def answer(self):
        """The answer's JSON, read until the server closes."""
        data = ifw_api.read_until_closed(self.raw, self.tls, self.incoming)
        self.raw.close()
        return json.loads(data.partition(b"\r\n\r\n")[2])


def test_a_request_that_waits_on_the_busy_daemon_is_served_not_cut_off(tmp_path):
    """Icinga starts a round's checks at once: with ~50 handshakes to do on a loaded machine
    the daemon's loop took 7 s for one batch of accepts, while the clients' certificates and
    requests waited unread, and the deadline then cut those clients off (Icinga: "Connection
    reset by peer"). The deadline judges the client: what it has sent is taken first."""
    from osop_checks.api import daemon

    pki, server, listener = in_process_server(tmp_path)
    with listener:
        call = HeldCall(pki, server, listener)
        conn = call.conn
        assert conn.state == daemon.Connection.HANDSHAKE
        server.expire(time.monotonic() + 60)  # the deadline passed while the loop was busy
        assert not conn.closed, conn.result
        assert conn.state == daemon.Connection.QUEUED
        assert conn.argv == ["--path=/"]
        call.raw.close()
        server.shutdown()


def test_an_answer_that_came_while_the_loop_was_busy_is_taken_not_killed(tmp_path):
    """A worker's answer that arrives while the loop is in a long turn (a burst of
    handshakes) waits unread; the check's deadline passing meanwhile is the loop's delay, not
    the check's: the answer is taken, the worker not killed (seen once: a -t 3 scenario
    killed 2 s past its --timeout in a full run)."""
    import subprocess

    pki, server, listener = in_process_server(tmp_path, "--workers", "1")
    # the worker is this test, on the other end of its channel; its pid one to kill
    stand_in = subprocess.Popen(["sleep", "60"], start_new_session=True)
    parent_end, worker_end = socket.socketpair()
    parent_end.setblocking(False)
    worker = pool.Worker(stand_in.pid, parent_end)
    server.workers.append(worker)
    server.selector.register(parent_end, selectors.EVENT_READ, ("worker", worker))
    with listener, worker_end:
        call = HeldCall(pki, server, listener)
        server.event(call.conn, 0)  # the request: to the worker
        job = json.loads(worker_end.makefile("rb").readline())
        assert job["command"] == "check_disk_partitions" and worker.deadline is not None
        worker_end.sendall(json.dumps({"exitcode": 0, "output": "DISK_PARTITIONS OK - all "
                                       "fine\n", "last": False}).encode() + b"\n")
        server.expire(worker.deadline + 1)  # the loop's turn ended past the check's deadline
        answer = call.answer()["check_disk_partitions"]
        assert (answer["exitcode"], answer["checkresult"]) == (0, "DISK_PARTITIONS OK - all fine")
        assert worker in server.workers and stand_in.poll() is None
        server.shutdown()  # kills the stand-in
    assert stand_in.wait(10) is not None


def test_a_connection_waiting_for_a_handshake_slot_keeps_its_time_until_its_client_leaves(
        tmp_path, capsys):
    """More handshakes than one source may do at once: the others wait their turn, and the
    wait is the daemon's, not the client's (Icinga's calls were reset past --request-timeout
    while a busy icinga2 finished the handshakes before them). The flood bound: at most
    WAITING_PER_SOURCE wait (one more is closed at once), a waiting connection is closed when
    its client hangs up, and after WAITING_TIMEOUT: none holds its descriptor for ever."""
    import select

    from osop_checks.api import daemon

    pki, server, listener = in_process_server(tmp_path, "--request-timeout", "2")
    clients = []
    with listener:
        for _ in range(daemon.HANDSHAKES_PER_SOURCE + daemon.WAITING_PER_SOURCE + 1):
            clients.append(socket.create_connection(listener.getsockname(), timeout=10))
            assert select.select([listener], [], [], 10)[0]
            server.accept(listener)
        waiting = server.waiting["127.0.0.1"]
        assert (len(server.connections), len(waiting)) == (daemon.HANDSHAKES_PER_SOURCE,
                                                           daemon.WAITING_PER_SOURCE)
        assert gone(clients.pop())  # the one too many
        assert "1 from 127.0.0.1" in capsys.readouterr().err
        now = time.monotonic()
        server.start_waiting(now + 2 + 1)  # past --request-timeout, its turn not come
        assert len(waiting) == daemon.WAITING_PER_SOURCE
        clients.pop().close()  # this one gave up: its connection is closed
        server.turn()
        assert len(waiting) == daemon.WAITING_PER_SOURCE - 1
        server.start_waiting(now + daemon.WAITING_TIMEOUT + 1)  # a flood's, or a lost client's
        assert not server.waiting and gone(clients[-1])
        for client in clients:
            client.close()
        server.shutdown()


def gone(client):
    """Whether the server closed (or reset) the connection of ``client``, a plain socket."""
    try:
        return client.recv(10) == b""
    except ConnectionResetError:
        return True


def test_each_tls_start_up_error_names_the_one_file_and_the_user(tmp_path):
    """OpenSSL says "[Errno 2]", "[SSL] PEM lib" or "key values mismatch" for two files at
    once; the daemon's line names the file at fault and the user it runs as."""
    from lab.peers.tls import TestCA
    from osop_checks.api import daemon

    ca = TestCA(str(tmp_path / "ca"))
    mine, other = ca.issue("mine"), ca.issue("other")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a PEM file\n")

    def trouble(cert, key, ca_file=ca.ca_path):
        args = daemon.build_parser().parse_args(["--cert", cert, "--key", key, "--ca", ca_file])
        with pytest.raises(daemon.TLSFileError) as caught:
            daemon.tls_context(args)
        return str(caught.value)

    missing = str(tmp_path / "api.key")
    assert trouble(mine.chain_path, missing) == \
        "cannot read the key %s: No such file or directory (as user %s)" % (
            missing, daemon.running_as())
    assert trouble(str(garbage), mine.key_path).startswith(
        "the certificate %s is not a PEM certificate: " % garbage)
    assert trouble(mine.chain_path, str(garbage)).startswith(
        "the key %s is not a PEM private key without a passphrase: " % garbage)
    assert trouble(mine.chain_path, other.key_path).startswith(
        "the key %s does not belong to the certificate %s: " % (other.key_path,
                                                                 mine.chain_path))
    assert trouble(mine.chain_path, mine.key_path, str(garbage)).startswith(
        "cannot load the CA %s: " % garbage)


def test_a_start_up_error_says_the_user_once(capsys):
    from osop_checks.api import daemon

    assert daemon.start_failed("cannot read the config file /x: Permission denied", 2) == 2
    assert daemon.start_failed("cannot read the key /k: No (as user someone)", 1,
                               user_named=True) == 1
    assert capsys.readouterr().err.splitlines() == [
        "osop-checks-api: cannot read the config file /x: Permission denied (as user %s)"
        % daemon.running_as(),
        "osop-checks-api: cannot read the key /k: No (as user someone)"]


def test_health_tells_the_daemon_is_there_or_what_is_missing(api):
    """The osop_api_health service's command line: as the node's own client it is OK; with
    nothing on the port, or the socket accepting and closing (systemd when the daemon cannot
    start), it is CRITICAL saying which; a client not admitted is a WARNING."""
    import subprocess
    import sys

    from lab.peers.tls import free_port

    def health(port, who="client"):
        issued = getattr(api.pki, who)
        ran = subprocess.run([sys.executable, "-m", "osop_checks.api.daemon", "--health",
                              "--listen", "127.0.0.1:%d" % port, "--node", api.node,
                              "--cert", issued.chain_path, "--key", issued.key_path,
                              "--ca", api.pki.ca_path], capture_output=True, text=True,
                             timeout=30)
        assert ran.stderr == "", ran.stderr
        return ran.returncode, ran.stdout.strip()

    code, line = health(api.port)
    assert code == 0 and line.startswith(
        "OSOP_CHECKS_API OK - osop-checks-api answers on 127.0.0.1:%d in " % api.port), line
    nobody = free_port()
    assert health(nobody) == (2, "OSOP_CHECKS_API CRITICAL - nothing listens on 127.0.0.1:%d: "
                              "osop-checks-api.socket is not enabled (systemctl enable --now "
                              "osop-checks-api.socket, docs/api-security.md)" % nobody)
    with socket.socket() as closer:  # accepts, then closes: a unit that fails to start
        closer.bind(("127.0.0.1", 0))
        closer.listen(4)
        port = closer.getsockname()[1]
        import threading

        def close_each():
            for _ in range(2):
                conn, _ = closer.accept()
                conn.close()

        threading.Thread(target=close_each, daemon=True).start()
        code, line = health(port)
    assert code == 2 and "accepted the connection but osop-checks-api never answered: the " \
        "daemon does not start (journalctl -u osop-checks-api.service" in line, line
    code, line = health(api.port, who="other")
    assert code == 1 and "refuses this client" in line, line


def test_the_request_after_the_handshake_is_not_held_by_a_delayed_ack(api):
    """A client with Nagle's algorithm on (Icinga's ifw-api client, and this one) sends its
    request after its last handshake flight only once that is acknowledged; Linux delays
    that ACK by at least 40 ms while the daemon has nothing to send, which was most of each
    call's time (-v: "request" ~40 ms after "handshake"). The daemon ACKs at once."""
    import statistics

    gaps = []
    for _ in range(9):
        status, _answer = api.call("check_disk_partitions", {"-p": "/"})
        assert status == 200
    time.sleep(0.2)
    for line in api.stderr().splitlines()[-30:]:
        found = re.search(r"handshake ([\d.]+) ms, request ([\d.]+) ms", line)
        if found:
            gaps.append(float(found.group(2)) - float(found.group(1)))
    assert len(gaps) >= 9, gaps
    assert statistics.median(gaps[-9:]) < 30, gaps
