"""check_tls_expiry: whole-process time beside check_http -S -C and check_ssl_cert on the same
loopback server, and 50 endpoints in one run against the slowest single endpoint.

Run: .venv/bin/python -m bench.bench_tls_expiry   (prints a markdown section)
Servers are lab/peers/tls.py's (a test CA, Python ssl servers on 127.0.0.1).
"""
import contextlib
import os
import re
import subprocess
import sys
import tempfile

from bench.common import FLOOR, PLUGINS, check, hyperfine, table
from lab.peers.tls import TestCA, TLSServer, start_scenarios

ENDPOINTS = 50
# Each of the 50 servers waits before it answers, as a remote server's round trips would;
# the slowest waits longest. Concurrency shows as: 50 endpoints ≈ the slowest one alone.
SLOWEST_DELAY = 0.30


def import_costs():
    """Cumulative import time (ms) of what a run loads, from python -X importtime."""
    code = "import nagiosplugin, osop_checks.checks.tls_expiry, ssl, cryptography.x509"
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code],
                          capture_output=True, text=True, check=True)
    costs = {}
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\s*)(\S+)", line)
        if match and match.group(2) == "":  # top-level imports only
            costs[match.group(3)] = int(match.group(1)) / 1000
    return costs


def main():
    plugin = check("check_tls_expiry")
    with contextlib.ExitStack() as stack:
        directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="osop-bench-tls-"))
        valid = start_scenarios(stack, directory, only=["valid"])["valid"]
        port, ca = valid.port, valid.ca.ca_path
        single = {
            "python -c pass (floor)": FLOOR,
            "check_tls_expiry --version (start-up only)": "%s --version" % plugin,
            "check_tls_expiry": "%s -H 127.0.0.1 -p %d --sni localhost --ca-file %s" % (
                plugin, port, ca),
        }
        if os.path.exists(os.path.join(PLUGINS, "check_http")):
            single["check_http -S -C 30,14"] = (
                "%s/check_http -H localhost -I 127.0.0.1 -p %d -S --sni -C 30,14" % (
                    PLUGINS, port))
        if os.path.exists(os.path.join(PLUGINS, "check_ssl_cert")):
            single["check_ssl_cert"] = (
                "%s/check_ssl_cert -H 127.0.0.1 -p %d --sni localhost --rootcert-file %s "
                "--ignore-sct -w 21 -c 7" % (PLUGINS, port, ca))
        one = hyperfine(single, runs=20, warmup=2)

        # 50 servers, each answering after its own delay up to SLOWEST_DELAY.
        many_ca = TestCA(os.path.join(directory, "many"))
        leaf = many_ca.issue("many", days=90)
        servers = []
        for i in range(ENDPOINTS):
            delay = SLOWEST_DELAY * (i + 1) / ENDPOINTS
            servers.append(stack.enter_context(TLSServer(leaf.chain_path, leaf.key_path,
                                                         delay=delay)))
        all_args = " ".join("--endpoint localhost@127.0.0.1:%d" % s.port for s in servers)
        concurrent = {
            "slowest single endpoint": "%s --ca-file %s --endpoint localhost@127.0.0.1:%d" % (
                plugin, many_ca.ca_path, servers[-1].port),
            "%d endpoints in one run" % ENDPOINTS: "%s --ca-file %s %s" % (
                plugin, many_ca.ca_path, all_args),
        }
        many = hyperfine(concurrent, runs=10, warmup=1)

    ours = one["check_tls_expiry"]["median"]
    print("## check_tls_expiry\n")
    print("One endpoint (TLS 1.3, EC P-256 leaf + intermediate, --ca-file), whole process as "
          "Icinga runs it; exit codes: %s.\n" % ", ".join(
              "%s %s" % (name, r["exit_codes"]) for name, r in one.items()
              if "floor" not in name))
    print(table(one, floor="python -c pass (floor)", reference="check_tls_expiry"))
    print()
    for other in ("check_ssl_cert", "check_http -S -C 30,14"):
        if other in one:
            factor = one[other]["median"] / ours
            print("- %s takes %.1fx the time of check_tls_expiry%s." % (
                other, factor, (" (target: at least 5x): %s" % ("met" if factor >= 5 else
                                                                "MISSED"))
                if other == "check_ssl_cert" else ""))
    costs = import_costs()
    start = one["check_tls_expiry --version (start-up only)"]["median"]
    print("- Of check_tls_expiry's %.0f ms, start-up (interpreter, nagiosplugin, the check "
          "module; `--version`) is %.0f ms; `python -X importtime` puts cryptography.x509 at "
          "%.0f ms and ssl at %.0f ms (both loaded only once a certificate is read / a "
          "connection made; cryptography is imported in a thread while the first handshake "
          "is on the wire)." % (ours * 1000, start * 1000,
                                costs.get("cryptography.x509", float("nan")),
                                costs.get("ssl", float("nan"))))
    print("\n%d endpoints, each server answering after 6 to %d ms, checked in one run against "
          "the slowest endpoint alone:\n" % (ENDPOINTS, SLOWEST_DELAY * 1000))
    print(table(many, reference="slowest single endpoint"))
    ratio = many["%d endpoints in one run" % ENDPOINTS]["median"] / \
        many["slowest single endpoint"]["median"]
    print("\n- %d endpoints take %.2fx the slowest single endpoint (sequentially they would "
          "wait about %.1f s for the servers alone)." % (
              ENDPOINTS, ratio, sum(SLOWEST_DELAY * (i + 1) / ENDPOINTS
                                    for i in range(ENDPOINTS))))


if __name__ == "__main__":
    main()
