"""check_tls_expiry at scale (issue 25, "At scale"): 300 TLS endpoints with revocation on,
checked three ways in the same run: one check_tls_expiry with --endpoint-file, the same
through osop-checks-api (one request), and 300 runs of check_ssl_cert --crl, the way a fleet
of 300 services runs today. Wall time, CPU (user + system, children included) and peak
memory of each.

Run: .venv/bin/python -m bench.bench_tls_scale   (prints a markdown section)
Peers: lab/peers/tls.py's test CA, 300 Python ssl servers on 127.0.0.1, the CA's CRLs over
HTTP on loopback (the leaves and the intermediate name them).
"""
import contextlib
import os
import statistics
import subprocess
import tempfile
import threading
import time

from bench.common import PLUGINS, check

ENDPOINTS = 300
LEAVES = 10            # distinct certificates among the 300 servers (a proxy's SNI names)
ROUNDS = 3             # runs of the one-process and the API variants (the median is shown)
PARALLEL = 8           # check_ssl_cert runs at once, as a scheduler's burst would start them


def run_measured(argv, env=None):
    """(wall s, CPU s of it and its children, peak RSS bytes, exit code, output). The peak
    is GNU time's (%M): a process forked from this large one would carry this one's size
    in its rusage (Linux keeps the high-water mark across exec)."""
    with tempfile.NamedTemporaryFile(prefix="osop-bench-rss-") as rss:
        started = time.perf_counter()
        process = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss.name] + argv,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   env=env)
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        kib = open(rss.name).read().split()
    return (wall, usage.ru_utime + usage.ru_stime, int(kib[-1]) * 1024 if kib else 0,
            process.returncode, output.decode(errors="replace"))


def peak_rss(pids):
    """The sum of the peak resident sizes (VmHWM) of ``pids``."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as handle:
                for line in handle:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def mib(size):
    return "%.0f MiB" % (size / 1024 / 1024)


def setup(stack, directory):
    """The CA, its CRL server, 300 TLS servers; (endpoint file, CA file, ports)."""
    from lab.peers.tls import FilesOverHTTP, TestCA, TLSServer

    ca = TestCA(os.path.join(directory, "ca"))
    crls = os.path.join(directory, "crls")
    os.makedirs(crls)
    http = stack.enter_context(FilesOverHTTP(crls))
    issuing = ca.make_intermediate("osop Bench Issuing CA", 1000, crl_url=http.url("root.crl"))
    leaves = [ca.issue("bench-%d" % i, issuer=issuing, crl_url=http.url("issuing.crl"))
              for i in range(LEAVES)]
    # a CRL of realistic size: 5000 revoked serials, none of ours
    ca.write_crl("issuing.crl", [_Serial(10 ** 6 + n) for n in range(5000)], issuer=issuing,
                 directory=crls, der=True)
    ca.write_crl("root.crl", [], issuer=(ca.root, ca.root_key), directory=crls, der=True)
    ports = [stack.enter_context(TLSServer(leaves[i % LEAVES].chain_path,
                                           leaves[i % LEAVES].key_path)).port
             for i in range(ENDPOINTS)]
    endpoints = os.path.join(directory, "endpoints.txt")
    with open(endpoints, "w") as handle:
        handle.writelines("localhost@127.0.0.1:%d\n" % port for port in ports)
    subprocess.run(["chmod", "-R", "a+rX", directory], check=True)  # the API runs as nobody
    return endpoints, ca.ca_path, ports


class _Serial:
    """A revoked entry for write_crl: only its serial number counts."""

    def __init__(self, number):
        self.serial_number = number


def one_process(endpoints, ca_path, cache):
    argv = [check("check_tls_expiry"), "--endpoint-file", endpoints, "--ca-file", ca_path,
            "--cache-dir", cache, "-t", "60"]
    results = [run_measured(argv) for _ in range(ROUNDS)]
    return results


def through_api(directory, endpoints, ca_path):
    """ROUNDS requests of the one check to osop-checks-api (as nobody, its own cache): per
    request (wall, CPU of the whole daemon, peak RSS of parent and workers, exit, output)."""
    from lab.peers.ifw_api import ApiDaemon, api_pki, policy_allowing

    arguments = {"--endpoint-file": [endpoints], "--ca-file": ca_path, "-t": "60"}
    argv = ["--endpoint-file", endpoints, "--ca-file", ca_path]
    pki = api_pki(os.path.join(directory, "api-pki"))
    results = []
    with ApiDaemon(pki, policy=policy_allowing([("tls_expiry", argv)]), workers=2) as daemon:
        for _ in range(ROUNDS):
            cpu_before = daemon.cpu_seconds()[1]
            started = time.perf_counter()
            status, answer = daemon.call("check_tls_expiry", arguments, timeout=120)
            wall = time.perf_counter() - started
            cpu = daemon.cpu_seconds()[1] - cpu_before
            result = answer.get("check_tls_expiry", {}) if isinstance(answer, dict) else {}
            results.append((wall, cpu, peak_rss([daemon.process.pid] + daemon.workers()),
                            result.get("exitcode", "HTTP %s" % status),
                            str(result.get("checkresult", answer))))
    return results


def check_ssl_cert_runs(ports, ca_path):
    """300 runs of check_ssl_cert --crl, PARALLEL at a time: (wall s, CPU s, the largest
    process's peak RSS, {exit code: count})."""
    plugin = os.path.join(PLUGINS, "check_ssl_cert")
    todo = list(ports)
    lock = threading.Lock()
    cpu, peak, codes = [0.0], [0], {}

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                port = todo.pop()
            _, used, rss, code, _ = run_measured([
                plugin, "-H", "127.0.0.1", "-p", str(port), "--sni", "localhost",
                "--rootcert-file", ca_path, "--crl", "--ignore-sct", "--ignore-ocsp",
                "-w", "21", "-c", "7"])
            with lock:
                cpu[0] += used
                peak[0] = max(peak[0], rss)
                codes[code] = codes.get(code, 0) + 1

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, cpu[0], peak[0], codes


def main():
    print("## check_tls_expiry at scale: 300 endpoints with revocation\n")
    with contextlib.ExitStack() as stack:
        directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="osop-bench-scale-"))
        endpoints, ca_path, ports = setup(stack, directory)
        cache = os.path.join(directory, "cache")
        os.makedirs(cache, mode=0o700)
        ours = one_process(endpoints, ca_path, cache)
        try:
            api = through_api(directory, endpoints, ca_path)
            api_error = None
        except Exception as exc:  # no root, no nobody: say so, measure the rest
            api, api_error = [], "%s: %s" % (type(exc).__name__, exc)
        if os.path.exists(os.path.join(PLUGINS, "check_ssl_cert")):
            theirs = check_ssl_cert_runs(ports, ca_path)
        else:
            theirs = None
    print("%d TLS servers on 127.0.0.1 (TLS 1.3, %d distinct EC P-256 leaves under one "
          "intermediate), every leaf naming the intermediate's CRL (5000 entries) and the "
          "intermediate the root's, both served over HTTP on loopback. check_tls_expiry "
          "runs with its defaults (`--revocation auto`: both CRLs fetched once per run, for "
          "every endpoint, signatures checked); its first run fetches them, the next use the "
          "cache younger than an hour. check_ssl_cert %s runs with `--crl --ignore-ocsp "
          "--ignore-sct` (it downloads the CRL on every run), %d at a time.\n" % (
              ENDPOINTS, LEAVES, _ssl_cert_version(), PARALLEL))
    rows = []
    for label, results in (("check_tls_expiry --endpoint-file, one process", ours),
                           ("the same through osop-checks-api, one request", api)):
        if not results:
            continue
        walls = [r[0] for r in results]
        rows.append((label + " (median of %d; first run %.2f s)" % (len(results), walls[0]),
                     statistics.median(walls), statistics.median(r[1] for r in results),
                     max(r[2] for r in results), sorted({str(r[3]) for r in results})))
    if theirs:
        wall, cpu, peak, codes = theirs
        rows.append(("300 runs of check_ssl_cert (%d at a time; largest process)" % PARALLEL,
                     wall, cpu, peak, sorted("%s x%d" % (c, n) for c, n in codes.items())))
    print("| what | wall | CPU (user+sys) | peak memory | exit codes |")
    print("|---|---:|---:|---:|---|")
    for label, wall, cpu, peak, codes in rows:
        print("| %s | %.2f s | %.2f s | %s | %s |" % (label, wall, cpu, mib(peak),
                                                      ", ".join(codes)))
    print()
    if ours and theirs:
        print("- 300 runs of check_ssl_cert take %.0fx the wall time and %.0fx the CPU of one "
              "check_tls_expiry run over the same 300 endpoints." % (
                  theirs[0] / rows[0][1], theirs[1] / rows[0][2]))
    if api:
        print("- Through osop-checks-api the same check takes %.2fx the wall time of its own "
              "process (CPU: the daemon's parent and workers)." % (rows[1][1] / rows[0][1]))
    print("- The 300 servers are threads of this benchmark's one Python process, so the wall "
          "time of the one-run variants is bounded by them (and by the machine's load): the "
          "CPU column is the checks' own. Peak memory: check_tls_expiry's one process; the "
          "daemon's parent and workers summed; check_ssl_cert's largest single process "
          "(%d of them run at once)." % PARALLEL)
    if api_error:
        print("- Not measured through osop-checks-api here: %s" % api_error)
    if theirs is None:
        print("- check_ssl_cert is not installed here (Debian: monitoring-plugins-contrib).")
    sample = ours[-1][4].splitlines()[0] if ours else ""
    print("- check_tls_expiry's status line: `%s`" % sample[:200].replace("|", "\\|"))


def _ssl_cert_version():
    try:
        out = subprocess.run([os.path.join(PLUGINS, "check_ssl_cert"), "--version"],
                             capture_output=True, text=True, timeout=30).stdout
        return out.split()[-1] if out.strip() else "(version unknown)"
    except (OSError, subprocess.TimeoutExpired):
        return "(not installed)"


if __name__ == "__main__":
    main()
