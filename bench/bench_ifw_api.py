"""ifw-api cost: what a real Icinga 2.14 pays per 100 checks when its built-in ifw-api sends
them to osop-checks-api, beside forking our checks and beside the Monitoring Plugins' C
programs on the same jobs; where the daemon's time per request goes; its memory over 10,000
requests.

One run, one icinga2: Debian 13's icinga2 2.14 in a chroot (lab/peers/icinga2.py,
trixie_root), its CA and node certificate from `icinga2 pki` (RSA-4096), and on loopback two
osop-checks-api daemons from this checkout (lab/peers/ifw_api.py): one presenting Icinga's
RSA-4096 node certificate (Icinga presents its own, the default), one with ECDSA P-256
certificates signed by the same CA with `icinga2 pki sign-csr` (Icinga's side pointed at one
through ifw_api_cert/ifw_api_key). Two jobs: disk space of / and the certificate of a TLS
server on loopback (lab/peers/tls.py), each as COPIES services per path:
- ifw-api, RSA-4096 (osop_<check>_api, Icinga's certificates),
- ifw-api, ECDSA P-256 (osop_<check>_api, ifw_api_cert/key),
- forked: osop_<check> (a new Python process per check),
- the C plugins: check_disk, check_http -S -C (ITL disk, http).
A chrooted icinga2 cannot start this machine's programs itself: forked checks go through the
peer's wrapper (`sh -c 'exec chroot /mnt PROGRAM'`, icinga2.host_programs). Its own cost is
measured as a /bin/true service through the wrapper minus /bin/true started directly, and
subtracted from both forking paths.

CPU is everything these checks cost: icinga2's process group (daemon, spawn helper, and the
processes it reaped) plus both API daemons' process groups (parent, workers), user+system from
/proc, read before and after each group is forced (active checks off; rounds interleaved over
the groups after a warm-up round). The daemons run with -v: their per-request timing lines
give where a request's time goes. Then 10,000 requests straight at a fresh daemon (no Icinga),
its parent's and workers' RSS sampled at 0, 1k, 5k and 10k.

Run (as root): .venv/bin/python -m bench.bench_ifw_api   (prints a markdown section)
"""
import contextlib
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time

from bench.common import compile_sources

COPIES = 20
ROUNDS = 5
# services forced at once: the daemon answers more than 2 x --workers running and 2 per
# worker waiting with 503 (and takes 16 handshakes per source at a time), so a round is forced
# in batches it accepts whole, every path alike
BATCH = 10
WORKERS = 2
DIRECT = 150          # sequential requests per job and daemon, for where the time goes
MEMORY = (1000, 5000, 10000)
CLIENTS = 2           # threads sending the 10,000 requests
MIX = 10              # of which one in MIX is tls_expiry, the others disk_partitions
HOST = "this-machine"
MIB = 1024.0 * 1024
LIMIT_MIB = 64
FLAT_MIB = 2.0        # "flat": no process grows more than this from 1k to 10k requests
PLUGINS = "/usr/lib/nagios/plugins"
TIMING = re.compile(r"osop-checks-api: \S+ \S+ (\S+) exit \d+: handshake ([\d.]+) ms, "
                    r"request ([\d.]+) ms, check ([\d.]+) ms, answered ([\d.]+) ms")


def jobs(stack, tmp):
    """[(key, title, check, argv, ITL command, its vars)]: the two jobs both sides can do."""
    from lab.peers.tls import start_scenarios

    valid = start_scenarios(stack, os.path.join(tmp, "tls"), only=["valid"])["valid"]
    # the daemon runs as nobody: it must be able to read the CA file the policy allows
    subprocess.run(["chmod", "-R", "a+rX", tmp], check=True)
    return [
        ("disk_partitions", "disk space of / (check_disk)", "disk_partitions",
         ["-p", "/", "-w", "20%", "-c", "10%"], "disk",
         {"disk_partitions": ["/"], "disk_wfree": "20%", "disk_cfree": "10%"}),
        ("tls_expiry", "certificate of a TLS server on loopback (check_http -S -C)",
         "tls_expiry", valid.args + ["-w", "21d", "-c", "7d"], "http",
         {"http_vhost": "localhost", "http_address": "127.0.0.1", "http_port": valid.port,
          "http_ssl": True, "http_sni": True, "http_certificate": "21,7"}),
    ]


def service(name, variables, template=None, command=None):
    from lab.peers.icinga2 import quote

    lines = ["object Service %s {" % quote(name)]
    if template:
        lines.append("\timport %s" % quote(template))
    if command:
        lines.append("\tcheck_command = %s" % quote(command))
    lines += ["\thost_name = %s" % quote(HOST), "\tcheck_interval = 1h", "\tcheck_timeout = 60s",
              "\tenable_active_checks = false"]
    lines += ["\tvars.%s = %s" % (k, quote(v)) for k, v in variables.items()]
    return "\n".join(lines + ["}"]) + "\n"


def configuration(job_list, wrappers, rsa, ecdsa, ecdsa_client, inside):
    """(icinga2 text, [(path, job key, [service names])])."""
    import importlib

    from lab.peers.icinga2 import argv_to_vars, quote

    text = ["const BenchPluginDir = %s" % quote(inside(wrappers)),
            'object Host "%s" { check_command = "dummy"; enable_active_checks = false }' % HOST,
            'object CheckCommand "bench-true" { command = [ "/bin/true" ] }',
            'object CheckCommand "bench-true-wrapped" { command = [ BenchPluginDir + "/true" ] }',
            'object CheckCommand "bench-disk" {\n\timport "disk"\n'
            '\tcommand = [ BenchPluginDir + "/check_disk" ]\n}',
            'object CheckCommand "bench-http" {\n\timport "http"\n'
            '\tcommand = [ BenchPluginDir + "/check_http" ]\n}']
    groups = []

    def group(path, key, make):
        names = []
        for copy in range(COPIES):
            name = "bench %s %s %d" % (path, key, copy)
            text.append(make(name))
            names.append("%s!%s" % (HOST, name))
        groups.append((path, key, names))

    for key, _title, check, argv, itl, theirs in job_list:
        parser = importlib.import_module("osop_checks.checks." + check).build_parser()
        ours = argv_to_vars(check, parser, argv)
        template = "osop-" + check.replace("_", "-")
        api = "osop_%s_api" % check
        # group() calls make at once: the defaults only bind this job's values by name
        group("api-rsa", key, lambda n, ours=ours, template=template, api=api: service(
            n, dict(ours, ifw_api_port=rsa.port), template, api))
        group("api-ecdsa", key, lambda n, ours=ours, template=template, api=api: service(
            n, dict(ours, ifw_api_port=ecdsa.port, ifw_api_cert=inside(ecdsa_client[0]),
                    ifw_api_key=inside(ecdsa_client[1])), template, api))
        group("fork", key, lambda n, ours=ours, template=template: service(n, ours, template))
        group("C", key, lambda n, theirs=theirs, itl=itl: service(
            n, theirs, command="bench-" + itl))
    group("true", "direct", lambda n: service(n, {}, command="bench-true"))
    group("true", "wrapped", lambda n: service(n, {}, command="bench-true-wrapped"))
    return "\n".join(text) + "\n", groups


class Meter:
    """CPU seconds of everything the checks cost: icinga2 and both daemons (process groups)."""

    def __init__(self, instance, daemons):
        self.instance = instance
        self.daemons = daemons

    def read(self):
        """(total, {daemon label: (parent alone, whole daemon)})."""
        daemons = {label: d.cpu_seconds() for label, d in self.daemons.items()}
        return self.instance.cpu_seconds() + sum(g for _, g in daemons.values()), daemons


def force(instance, names, timeout=120):
    """Force ``names`` once, BATCH at a time, and wait for all their results:
    {name: last_check_result}."""
    results = {}
    for first in range(0, len(names), BATCH):
        results.update(force_batch(instance, names[first:first + BATCH], timeout))
    return results


def force_batch(instance, names, timeout):
    filter_ = "service.__name in [ %s ]" % ", ".join(
        '"%s"' % n.replace('"', '\\"') for n in names)
    since = time.time()
    instance.api("POST", "/v1/actions/reschedule-check", {
        "type": "Service", "filter": filter_, "force": True,
        "next_check": since}).raise_for_status()
    deadline = time.monotonic() + timeout
    while True:
        time.sleep(0.2)
        found = instance.api_get_with_body("/v1/objects/services", {
            "filter": filter_, "attrs": ["last_check_result"]}).json()["results"]
        results = {s["name"]: s["attrs"]["last_check_result"] for s in found}
        if all(r and r["execution_end"] >= since for r in results.values()) \
                or time.monotonic() > deadline:
            return {n: r for n, r in results.items() if r and r["execution_end"] >= since}


def measure(meter, instance, groups):
    """Per group: CPU s, checks, {state: n}, a sample output, and the daemons' CPU split."""
    totals = {(p, k): {"cpu": 0.0, "checks": 0, "states": {}, "split": {}, "sample": "",
                       "wall": 0.0} for p, k, _ in groups}
    for _p, _k, names in groups:  # warm-up: first runs, caches, the workers' first imports
        force(instance, names)
    for _ in range(ROUNDS):
        for path, key, names in groups:
            before, split0 = meter.read()
            wall = time.monotonic()
            results = force(instance, names)
            after, split1 = meter.read()
            entry = totals[(path, key)]
            entry["wall"] += time.monotonic() - wall
            entry["cpu"] += after - before
            entry["checks"] += len(results)
            for label in split1:
                parent, whole = entry["split"].get(label, (0.0, 0.0))
                entry["split"][label] = (parent + split1[label][0] - split0[label][0],
                                         whole + split1[label][1] - split0[label][1])
            for r in results.values():
                state = {0: "OK", 1: "WARNING", 2: "CRITICAL"}.get(int(r["exit_status"]),
                                                                   "UNKNOWN")
                entry["states"][state] = entry["states"].get(state, 0) + 1
                entry["sample"] = (r["output"] or "").splitlines()[0][:90] if r["output"] \
                    else ""
    return totals


def idle_rate(meter, instance, names, seconds=5):
    """CPU s per s of icinga2 and the daemons while nothing runs and one group is polled
    the way force() polls."""
    filter_ = "service.__name in [ %s ]" % ", ".join('"%s"' % n for n in names)
    cpu0, wall0 = meter.read()[0], time.monotonic()
    while time.monotonic() - wall0 < seconds:
        instance.api_get_with_body("/v1/objects/services", {
            "filter": filter_, "attrs": ["last_check_result"]})
        time.sleep(0.2)
    return (meter.read()[0] - cpu0) / (time.monotonic() - wall0)


def timings(text):
    """{command: [(handshake, request, check, answer) ms per request]} from -v lines; each
    phase from the end of the one before (the log gives times since the accept)."""
    found = {}
    for match in TIMING.finditer(text):
        hand, req, chk, ans = (float(x) for x in match.groups()[1:])
        found.setdefault(match.group(1), []).append((hand, req - hand, chk - req, ans - chk))
    return found


def direct(daemon, job_list, count):
    """``count`` sequential requests per job, each a new TLS context and connection as
    Icinga's IfwApiCheckTask makes them: ({command: (phase medians, parent CPU ms per
    request, workers' CPU ms per request)}, failures)."""
    from lab.peers import ifw_api

    found, failures = {}, 0
    for _k, _t, check, argv, _i, _v in job_list:
        command, body = "check_" + check, ifw_api.icinga_body(check, argv)
        offset = len(daemon.stderr())
        parent0, whole0 = daemon.cpu_seconds()
        for _ in range(count):
            status, answer = daemon.call(command, body)
            if status != 200 or answer[command]["exitcode"] != 0:
                failures += 1
        parent1, whole1 = daemon.cpu_seconds()
        rows = timings(daemon.stderr()[offset:]).get(command, [])
        found[command] = ([statistics.median(r[i] for r in rows) for i in range(4)]
                          if rows else [float("nan")] * 4,
                          (parent1 - parent0) / count * 1000,
                          ((whole1 - parent1) - (whole0 - parent0)) / count * 1000)
    return found, failures


def memory(daemon, job_list):
    """10,000 requests (one in MIX tls_expiry, the others disk_partitions) from CLIENTS threads,
    one TLS context each and a new connection and full handshake per request; RSS of parent
    and workers at 0 and each mark.
    Returns ([(requests, {pid: bytes})], failures, daemon CPU ms per request, seconds)."""
    from lab.peers import ifw_api

    disk, tls = [("check_" + check, ifw_api.icinga_body(check, argv))
                 for _k, _t, check, argv, _i, _v in job_list]
    bodies = [disk] * (MIX - 1) + [tls]
    ifw_api.wait_for(lambda: len(daemon.workers()) == WORKERS)
    samples = [(0, daemon.rss())]
    failures = [0]
    lock = threading.Lock()

    def client(first, count):
        context = daemon.context()
        for number in range(first, first + count):
            command, body = bodies[number % len(bodies)]
            try:
                status, answer = ifw_api.post(daemon.port, command, body, context,
                                              server_name=daemon.pki.server_name)
                ok = status == 200 and answer[command]["exitcode"] == 0
            except (OSError, KeyError, TypeError):
                ok = False
            if not ok:
                with lock:
                    failures[0] += 1

    cpu0, wall0, done = daemon.cpu_seconds()[1], time.monotonic(), 0
    for mark in MEMORY:
        share = (mark - done) // CLIENTS
        threads = [threading.Thread(target=client, args=(done + i * share, share))
                   for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        done = mark
        samples.append((mark, daemon.rss()))
    return (samples, failures[0], (daemon.cpu_seconds()[1] - cpu0) / done * 1000,
            time.monotonic() - wall0)


def main():
    print("## ifw-api: checks without a process, in Icinga 2.14\n")
    if os.geteuid() != 0:
        print("Not run: the chrooted icinga2 needs root.")
        return
    import shutil

    from lab.peers import BIN, icinga2, ifw_api

    missing = [p for p in ("check_disk", "check_http")
               if not os.access(os.path.join(PLUGINS, p), os.X_OK)]
    if not shutil.which("debootstrap") or missing:
        print("Not run: needs debootstrap (for Debian 13's icinga2) and the Monitoring Plugins "
              "(%s missing)." % (", ".join(missing) or "none"))
        return
    try:
        from lab.peers.ifw_api import ICINGA_NODE as NODE
        from lab.peers.ifw_api import IcingaPki as Files
        from lab.peers.ifw_api import ecdsa_pair
    except ImportError as exc:
        print("Not run: %s" % exc)
        return
    compile_sources()
    root = icinga2.trixie_root()
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="apibench-"))
        job_list = jobs(stack, tmp)
        wrappers = icinga2.host_programs(os.path.join(tmp, "plugins"), [
            os.path.join(BIN, "check_" + check) for _k, _t, check, *_ in job_list] + [
            os.path.join(PLUGINS, "check_disk"), os.path.join(PLUGINS, "check_http"),
            "/bin/true"])
        instance = icinga2.Icinga2(os.path.join(tmp, "icinga2"), node=NODE, root=root,
                                   plugin_dir=wrappers)
        instance.install_pki()
        certs = os.path.join(instance.dirs["DataDir"], "certs")
        ca = os.path.join(certs, "ca.crt")
        verbose = ["-v", "--max-jobs", "100000"]
        # the daemon allows what the jobs ask (a path, a loopback TLS peer), as a host would
        policy = ifw_api.policy_allowing([(check, argv) for _k, _t, check, argv, *_ in job_list])
        rsa = stack.enter_context(ifw_api.ApiDaemon(Files(
            ca, os.path.join(certs, NODE + ".crt"), os.path.join(certs, NODE + ".key")),
            workers=WORKERS, extra=verbose, policy=policy))
        ec_cert, ec_key = ecdsa_pair(instance, "daemon")
        ec_client = ecdsa_pair(instance, "icinga")
        ecdsa = stack.enter_context(ifw_api.ApiDaemon(Files(ca, ec_cert, ec_key),
                                                      workers=WORKERS, extra=verbose,
                                                      policy=policy))
        text, groups = configuration(job_list, wrappers, rsa, ecdsa, ec_client,
                                     instance.inside)
        includes = icinga2.shipped_includes()
        includes.insert(1, os.path.join(icinga2.CONF, "commands-api.conf"))
        instance.write_config(includes, text, api=True, checker=True)
        stack.enter_context(instance)
        instance.start()
        version = instance.run("--version").stdout.split("(version:")[-1].split(")")[0].strip()
        meter = Meter(instance, {"rsa": rsa, "ecdsa": ecdsa})
        for kind in ("Service", "Host"):  # only forced checks from here on
            instance.api("POST", "/v1/objects/%ss" % kind.lower(), {
                "filter": "true", "attrs": {"enable_active_checks": False}}).raise_for_status()
        idle = idle_rate(meter, instance, groups[0][2])
        log_rsa, log_ecdsa = len(rsa.stderr()), len(ecdsa.stderr())
        totals = measure(meter, instance, groups)
        from_icinga = {"rsa": timings(rsa.stderr()[log_rsa:]),
                       "ecdsa": timings(ecdsa.stderr()[log_ecdsa:])}
        icinga_seconds = time.monotonic() - started
        phases = {"rsa": direct(rsa, job_list, DIRECT), "ecdsa": direct(ecdsa, job_list, DIRECT)}
        instance.stop()
        fresh = stack.enter_context(ifw_api.ApiDaemon(Files(ca, ec_cert, ec_key),
                                                      workers=WORKERS, extra=verbose,
                                                      policy=policy))
        mem = memory(fresh, job_list) + (ifw_api.sessions_kept(Files(ca, ec_cert, ec_key)),)
    report(version, job_list, totals, idle, from_icinga, phases, mem, icinga_seconds)


def per100(entry):
    return entry["cpu"] / entry["checks"] * 100 if entry["checks"] else float("nan")


def ratio(a, b):
    r = a / b if b else float("nan")
    return ("%.1fx" if r >= 10 else "%.2fx") % r


def shares(entry):
    """ms of CPU per check: (icinga2 and the polled idle, the daemons' parents, workers)."""
    n = entry["checks"] or 1
    parent = sum(p for p, _w in entry["split"].values())
    whole = sum(w for _p, w in entry["split"].values())
    return ((entry["cpu"] - whole) / n * 1000, parent / n * 1000, (whole - parent) / n * 1000)


def states(entry):
    return ", ".join("%d %s" % (n, s) for s, n in sorted(entry["states"].items()))


PATHS = [("api-rsa", "ifw-api, RSA-4096 certificates (Icinga's default PKI)"),
         ("api-ecdsa", "ifw-api, ECDSA P-256 certificates on both sides"),
         ("fork", "forked: osop_* commands, a Python process per check"),
         ("C", "forked: the C plugins (check_disk; check_http -S -C)")]


def report(version, job_list, totals, idle, from_icinga, phases, mem, icinga_seconds):
    keys = [k for k, *_ in job_list]
    true_direct, true_wrapped = totals[("true", "direct")], totals[("true", "wrapped")]
    wrapper = per100(true_wrapped) - per100(true_direct)
    figure = {}
    for path, _ in PATHS:
        for key in keys:
            raw = per100(totals[(path, key)])
            figure[(path, key)] = raw - wrapper if path in ("fork", "C") else raw
    print("Debian 13's icinga2 %s in a chroot on this machine, with the shipped commands "
          "(commands.conf, commands-api.conf); two osop-checks-api daemons from this checkout "
          "on loopback, %d workers each, -v, as the unprivileged user `nobody` with a policy "
          "file allowing the two jobs' path, host, port and CA file. %d services per path and "
          "job, forced %d rounds (interleaved over the groups, %d services at once) after a "
          "warm-up round. CPU is user+system of "
          "icinga2's process group with the processes it reaped plus both daemons' process "
          "groups (parent and workers): everything the checks cost. All of it idles at %.3f "
          "CPU s per s while polled as the rounds poll. Our checks run from the project's "
          "editable .venv.\n" % (version, WORKERS, COPIES, ROUNDS, BATCH, idle))
    print("The chrooted icinga2 starts this machine's programs through a wrapper, `sh` + "
          "`chroot /mnt` (lab/peers/icinga2.py, host_programs). Its own cost, a /bin/true "
          "service through it (%.2f CPU s per 100) minus /bin/true started directly (%.2f), "
          "is **%.2f CPU s per 100 checks**, subtracted from both forking paths below (the "
          "raw figures are in the last table).\n" % (
              per100(true_wrapped), per100(true_direct), wrapper))
    print("### CPU seconds per 100 checks\n")
    print("| path | " + " | ".join("%s: CPU s / 100 | × C plugins" % k for k in keys)
          + " | results |")
    print("|---|" + "---:|---:|" * len(keys) + "---|")
    for path, label in PATHS:
        cells = []
        for key in keys:
            cells += ["%.2f" % figure[(path, key)],
                      ratio(figure[(path, key)], figure[("C", key)])]
        print("| %s | %s | %s |" % (label, " | ".join(cells), "; ".join(
            "%s: %s" % (k, states(totals[(path, k)])) for k in keys)))
    print()
    c = {k: figure[("C", k)] for k in keys}
    for path, label in PATHS[:2]:
        for key in keys:
            ours = figure[(path, key)]
            icinga, parent, workers = shares(totals[(path, key)])
            why = "" if ours < c[key] else (
                " Why: per check, icinga2's own side of the call costs %.1f ms (%s the C "
                "plugin's whole check, %.1f ms with icinga2's fork and reap), the daemon's "
                "parent %.1f ms (TLS, HTTP), its worker %.1f ms (the check)." % (
                    icinga, ratio(icinga, c[key] * 10), c[key] * 10, parent, workers))
            print("- %s, %s: %.2f CPU s per 100 checks, %s the C plugin's %.2f (target: below "
                  "the C plugins' figure): %s.%s" % (
                      label.split(" (")[0], key, ours, ratio(ours, c[key]), c[key],
                      "met" if ours < c[key] else "MISSED", why))
    for key in keys:
        print("- forked %s: %.2f CPU s per 100 checks, %s the ifw-api path's (ECDSA) and %s "
              "the C plugin's." % (key, figure[("fork", key)],
                                   ratio(figure[("fork", key)], figure[("api-ecdsa", key)]),
                                   ratio(figure[("fork", key)], c[key])))
    print()

    print("### Who pays: ms of CPU per check through ifw-api\n")
    print("icinga2 (scheduling, its TLS client, the HTTP call, the result) against the "
          "daemon's parent (TLS server, HTTP, dispatch) and its workers (the check).\n")
    print("| path | job | icinga2 | daemon parent | daemon workers | total |")
    print("|---|---|---:|---:|---:|---:|")
    for path, label in PATHS[:2]:
        for key in keys:
            entry = totals[(path, key)]
            print("| %s | %s | %.2f | %.2f | %.2f | %.2f |" % (
                (label.split(" (")[0], key) + shares(entry)
                + (entry["cpu"] / (entry["checks"] or 1) * 1000,)))
    print()

    print("### Where a request's time goes in the daemon (its -v timing lines)\n")
    print("Medians in ms of wall time: the handshake (accept to its end, the client's share "
          "and the round trips included), the request read, the check (queued for a worker "
          "and run), the answer written. *Direct*: %d sequential requests per job and daemon "
          "from a Python client that makes a new TLS context and connection per call, as "
          "Icinga does, with the daemon's CPU per request split into its parent and its "
          "workers. *From Icinga*: the forced rounds above (%d at once against %d workers: "
          "the check phase includes the wait for a worker).\n" % (DIRECT, BATCH, WORKERS))
    print("| certificates | source | check | handshake | request | check | answer | "
          "parent CPU / request | workers CPU / request |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for daemon, label in (("rsa", "RSA-4096"), ("ecdsa", "ECDSA P-256")):
        found, failures = phases[daemon]
        for command, (med, parent, workers) in sorted(found.items()):
            print("| %s | direct | %s | %.2f | %.2f | %.2f | %.2f | %.2f ms | %.2f ms |" % (
                label, command, med[0], med[1], med[2], med[3], parent, workers))
        for command, rows in sorted(from_icinga[daemon].items()):
            med = [statistics.median(r[i] for r in rows) for i in range(4)]
            print("| %s | from Icinga | %s | %.2f | %.2f | %.2f | %.2f | | |" % (
                label, command, med[0], med[1], med[2], med[3]))
        if failures:
            print("\n%d direct requests to the %s daemon did not answer OK." % (failures, label))
    parents = {d: statistics.median(p for _m, p, _w in phases[d][0].values())
               for d in phases}
    print("\nThe parent's CPU per request is the TLS handshake and the HTTP around the check: "
          "%.2f ms with RSA-4096, %.2f ms with ECDSA P-256 (%s); the workers' is the check "
          "itself in a loaded interpreter, with the worker's reset between jobs.\n" % (
              parents["rsa"], parents["ecdsa"], ratio(parents["rsa"], parents["ecdsa"])))

    samples, failures, cpu_ms, seconds, (kept, handshakes) = mem
    print("### Daemon memory over 10,000 requests\n")
    print("A fresh daemon (ECDSA P-256 certificates, %d workers, --max-jobs 100000 so the same "
          "workers serve every request and a leak is not hidden by their replacement), "
          "10,000 requests straight at it from %d client threads (disk_partitions, every %dth "
          "one tls_expiry), each request a new connection and a full mutual-TLS handshake; "
          "%d failed; %.0f s; "
          "%.2f ms daemon CPU per request (parent and workers). Resident set size (VmRSS) "
          "in MiB:\n" % (WORKERS, CLIENTS, MIX, failures, seconds, cpu_ms))
    pids = list(samples[0][1]) + sorted(
        {p for _c, sizes in samples for p in sizes} - set(samples[0][1]))
    names = ["parent"] + ["worker %d" % i for i in range(1, len(pids))]
    print("| requests | " + " | ".join(names) + " |")
    print("|---:|" + "---:|" * len(names))
    for count, sizes in samples:
        print("| %s | %s |" % (format(count, ","), " | ".join(
            "%.1f" % (sizes[p] / MIB) if p in sizes else "-" for p in pids)))
    largest = max(s / MIB for _c, sizes in samples for s in sizes.values())
    growth = max((samples[-1][1].get(p, 0) - samples[1][1].get(p, 0)) / MIB for p in pids)
    same = all(set(sizes) == set(pids) for _c, sizes in samples)
    met = largest < LIMIT_MIB and growth <= FLAT_MIB and same
    print("\n- Daemon memory: largest process %.1f MiB, growth from 1k to 10k requests at most "
          "%.2f MiB%s (target: under %d MiB RSS for the parent and each worker, flat over "
          "10,000 checks, i.e. growing at most %.0f MiB after the first 1k): %s.\n" % (
              largest, growth, "" if same else ", a worker was replaced", LIMIT_MIB, FLAT_MIB,
              "met" if met else "MISSED"))
    print("OpenSSL's server session cache in the daemon's TLS context "
          "(osop_checks.api.daemon.tls_context, driven in this process): %d of %d sessions "
          "kept after %d handshakes from new client contexts.%s\n" % (
              kept, handshakes, handshakes,
              " Icinga never resumes one (a new TLS context per check), so each is memory "
              "held for nothing: OP_NO_TICKET stops TLS 1.2 tickets, yet TLS 1.3 still issues "
              "stateful tickets and caches the session (up to OpenSSL's 20,480) unless the "
              "context has `num_tickets = 0`; that is the parent's growth above." if kept
              else ""))

    print("### Raw figures\n")
    print("CPU s / 100 checks includes what everything idles at while the group's rounds "
          "last (the polled share, %.3f CPU s per s × the group's wall time).\n" % idle)
    print("| group | checks | wall s | CPU s | CPU s / 100 checks | of which polled idle | "
          "results | a result |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    for (path, key), entry in totals.items():
        print("| %s %s | %d | %.1f | %.2f | %.2f | %.2f | %s | %s |" % (
            path, key, entry["checks"], entry["wall"], entry["cpu"], per100(entry),
            idle * entry["wall"] / (entry["checks"] or 1) * 100, states(entry),
            entry["sample"].replace("|", "\\|")))
    print("\nThe Icinga part took %.0f s." % icinga_seconds)


if __name__ == "__main__":
    main()
