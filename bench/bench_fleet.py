"""Fleet cost: what a real icinga2 pays, in CPU seconds per 100 checks, to run our checks,
and the same for the Monitoring Plugins doing the same jobs.

One icinga2 (lab/peers/icinga2.py, Debian's icinga2-bin) with the shipped commands,
templates and apply rules watches
- this machine as the example inventory describes a host (the shipped apply rules), and every
  check's demo scenarios on their loopback peers (lab/demo/*.py: TLS servers, dnsmasq,
  sshd, snmpd, a systemd container, as available): "the fleet";
- side by side, N copies of one small job done by our check and N by the Monitoring Plugin
  that an admin would otherwise run (check_disk, check_http -S -C, check_dig, check_snmp,
  check_apt), on the same target.
Active checks are switched off through the API; each group of services is forced for a few
rounds through /v1/actions/reschedule-check and the CPU time of icinga2's process group
(daemon, spawn helper and the checks they reaped: utime+stime+cutime+cstime from /proc) is
read before and after. icinga2's own share (scheduling, the API answering our polls) is
included, as it is in a real fleet; its idle rate while polled is shown apart.

Run (as root): .venv/bin/python -m bench.bench_fleet   (prints a markdown section)
"""
import contextlib
import os
import sys
import tempfile
import time

from bench import bench_startup
from bench.common import compile_sources

ROUNDS = 3
COPIES = 8
HOST = "this-machine"


def comparisons(stack, tmp):
    """[(job, ours (check, argv), theirs (ITL command, vars))] for the jobs both can do."""
    jobs = []
    plugins = "/usr/lib/nagios/plugins"

    def have(name):
        return os.access(os.path.join(plugins, name), os.X_OK)

    if have("check_disk"):
        jobs.append(("disk space of / (check_disk)",
                     ("disk_partitions", ["-p", "/", "-w", "20%", "-c", "10%"]),
                     ("disk", {"disk_partitions": ["/"], "disk_wfree": "20%",
                               "disk_cfree": "10%"})))
    if have("check_http"):
        (label, check, argv), = bench_startup.run_tls_expiry(stack, tmp)
        port = argv[argv.index("-p") + 1]
        jobs.append(("certificate of a TLS server on loopback (check_http -S -C)",
                     (check, argv + ["-w", "21d", "-c", "7d"]),
                     ("http", {"http_vhost": "localhost", "http_address": "127.0.0.1",
                               "http_port": port, "http_ssl": True, "http_sni": True,
                               "http_certificate": "21,7"})))
    if have("check_snmp"):
        try:
            from osop_checks.sources import snmp
            from lab.peers.snmpd import QUIET_ENV, Snmpd

            os.environ.update(QUIET_ENV)  # check_snmp: no complaints about absent MIB files
            agent = stack.enter_context(Snmpd())
            target = snmp.Target("127.0.0.1", agent.port, community=agent.community)
            rows = snmp.table(target, "1.3.6.1.2.1.25.2.3.1", [3])
            index = next(i[0] for i, cells in rows.items() if cells.get(3) == b"/")
            jobs.append(("disk space of / over SNMP v2c, snmpd on loopback (check_snmp, "
                         "2 OIDs)",
                         ("disk_partitions", agent.v2c_args() + ["-p", "/"]),
                         ("snmp", {"snmp_address": "127.0.0.1", "snmp_port": agent.port,
                                   "snmp_version": "2c", "snmp_community": agent.community,
                                   "snmp_oid": ".1.3.6.1.2.1.25.2.3.1.6.%d,"
                                               ".1.3.6.1.2.1.25.2.3.1.5.%d" % (index, index)})))
        except Exception as exc:
            print("note: SNMP comparison not run: %s" % exc, file=sys.stderr)
    if have("check_dig"):
        try:
            (label, check, argv), = bench_startup.run_dyndns_match(stack, tmp)
            server = argv[argv.index("--server") + 1]
            address, _, port = server.rpartition(":")
            theirs = {"dig_server": address.strip("[]") or server, "dig_lookup": argv[1],
                      "dig_record_type": "A", "dig_expected_address": "198.51.100.23"}
            if port.isdigit() and address:
                theirs["dig_port"] = port
            jobs.append(("a DNS name against the expected address (check_dig)",
                         (check, argv), ("dig", theirs)))
        except Exception as exc:
            print("note: dyndns comparison not run: %s" % exc, file=sys.stderr)
    if have("check_apt"):
        cache = os.path.join(tmp, "fleet-upgrades-cache")
        os.makedirs(cache, exist_ok=True)
        jobs.append(("pending upgrades of this machine (check_apt)",
                     ("os_upgrades", ["--cache-dir", cache]), ("apt", {})))
    return jobs


def service_text(name, template, variables, command=None):
    from lab.peers.icinga2 import quote

    lines = ["object Service %s {" % quote(name)]
    if template:
        lines.append("\timport %s" % quote(template))
    else:
        lines.append("\tcheck_command = %s" % quote(command))
        lines.append("\tcheck_timeout = 60s")
    lines += ["\thost_name = %s" % quote(HOST), "\tcheck_interval = 1h",
              "\tenable_active_checks = false"]
    for key, value in variables.items():
        lines.append("\tvars.%s = %s" % (key, quote(value)))
    lines.append("}")
    return "\n".join(lines) + "\n"


def ours_vars(check, argv):
    import importlib

    from lab.peers.icinga2 import argv_to_vars

    parser = importlib.import_module("osop_checks.checks." + check).build_parser()
    return argv_to_vars(check, parser, argv)


def force_group(instance, names, rounds):
    """Force the named services ``rounds`` times; (CPU s, checks run, wall s, pending)."""
    filter_ = "service.__name in %s" % ("[ %s ]" % ", ".join(
        '"%s"' % n.replace('"', '\\"') for n in names))
    cpu0, wall0, checks, pending = instance.cpu_seconds(), time.monotonic(), 0, []
    for _ in range(rounds):
        since = time.time()
        instance.api("POST", "/v1/actions/reschedule-check", {
            "type": "Service", "filter": filter_, "force": True,
            "next_check": since}).raise_for_status()
        done, pending = instance.wait_for_results(since, names=set(names), timeout=180)
        checks += len(done) - len(pending)
    return instance.cpu_seconds() - cpu0, checks, time.monotonic() - wall0, pending


def main():
    print("## Fleet cost: icinga2 running the checks\n")
    if os.geteuid() != 0:
        print("Not run: icinga2 runs as root here (ICINGA2_USER=root).")
        return
    from lab.peers import icinga2

    try:
        icinga2.ensure_installed()
    except RuntimeError as exc:
        print("Not run: %s" % exc)
        return
    compile_sources()
    problems = {}
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="osop-bench-fleet-"))
        scenarios = icinga2.scenario_services(stack, problems=problems)
        text = icinga2.local_inventory(HOST) + icinga2.service_objects(HOST, scenarios)
        jobs = comparisons(stack, tmp)
        groups = []
        for number, (job, (check, argv), (command, theirs)) in enumerate(jobs):
            ours_names, their_names = [], []
            variables = ours_vars(check, argv)
            for copy in range(COPIES):
                name = "bench ours %d.%d" % (number, copy)
                text += service_text(name, "osop-" + check.replace("_", "-"), variables)
                ours_names.append(HOST + "!" + name)
                name = "bench theirs %d.%d" % (number, copy)
                text += service_text(name, None, theirs, command=command)
                their_names.append(HOST + "!" + name)
            groups.append((job, check, command, ours_names, their_names))
        base = stack.enter_context(tempfile.TemporaryDirectory(prefix="osop-bench-icinga2-"))
        instance = stack.enter_context(icinga2.running(base, text))
        # Only forced checks from here on: no scheduled check may land in a measurement.
        for kind in ("Service", "Host"):
            instance.api("POST", "/v1/objects/%ss" % kind.lower(), {
                "filter": "true", "attrs": {"enable_active_checks": False}}).raise_for_status()
        time.sleep(5)  # let checks started before the switch finish
        services, _ = instance.wait_for_results(0, timeout=1)
        fleet = sorted(name for name, attrs in services.items()
                       if not attrs["name"].startswith("bench ")
                       and icinga2.check_of(attrs) is not None)
        fleet_names = set(fleet)
        by_command = {}
        for n in fleet:
            by_command[services[n]["check_command"]] = by_command.get(
                services[n]["check_command"], 0) + 1

        # icinga2 idle, polled the way the measurements poll it.
        cpu0, wall0 = instance.cpu_seconds(), time.monotonic()
        while time.monotonic() - wall0 < 10:
            instance.wait_for_results(0, names=set(), timeout=0)
            time.sleep(0.5)
        idle_rate = (instance.cpu_seconds() - cpu0) / (time.monotonic() - wall0)

        force_group(instance, sorted(fleet_names), 1)  # warm-up round (caches, first runs)
        fleet_cpu, fleet_checks, fleet_wall, fleet_pending = force_group(
            instance, sorted(fleet_names), ROUNDS)
        compared = []
        for job, check, command, ours_names, their_names in groups:
            force_group(instance, ours_names[:2], 1)
            force_group(instance, their_names[:2], 1)
            a = force_group(instance, ours_names, ROUNDS)
            b = force_group(instance, their_names, ROUNDS)
            compared.append((job, check, command, a, b))

    report(fleet_cpu, fleet_checks, fleet_wall, fleet_pending, by_command, idle_rate, compared,
           problems)


def per100(cpu, checks):
    return cpu / checks * 100 if checks else float("nan")


def report(fleet_cpu, fleet_checks, fleet_wall, pending, by_command, idle_rate, compared,
           problems):
    print("A real icinga2 (Debian icinga2-bin %s) with the shipped icinga2-conf, active checks "
          "off, each group forced for %d rounds after a warm-up round. CPU is icinga2's "
          "process group with the checks it reaped (user+system); icinga2 idles at %.3f CPU "
          "s per s while the benchmark polls its API. Our checks run from the project's "
          "editable .venv (OsopPluginDir), whose interpreter start costs about twice a "
          "regular install's (see the start-up section).\n" % (
              icinga2_version(), ROUNDS, idle_rate))
    print("### The fleet: this machine and the demo peers\n")
    print("%d services (%s) forced %d times: %d check results in %.1f s wall, %.2f CPU s: "
          "**%.2f CPU s per 100 checks** (%.0f ms per check, icinga2 included).%s\n" % (
              sum(by_command.values()),
              ", ".join("%d %s" % (n, c) for c, n in sorted(by_command.items())), ROUNDS,
              fleet_checks, fleet_wall, fleet_cpu, per100(fleet_cpu, fleet_checks),
              per100(fleet_cpu, fleet_checks) * 10,
              " %d still pending at the end." % len(pending) if pending else ""))
    if problems:
        print("Demo peers that did not start here: %s.\n" % "; ".join(
            "%s (%s)" % (k, v) for k, v in sorted(problems.items())))
    if not compared:
        print("No Monitoring Plugin to compare with here.")
        return
    print("### The same job, ours beside the Monitoring Plugin\n")
    print("%d services each, forced %d times.\n" % (COPIES, ROUNDS))
    print("| job | ours: CPU s / 100 checks | Monitoring Plugin: CPU s / 100 checks | "
          "ours ÷ theirs |")
    print("|---|---:|---:|---:|")
    for job, check, command, (acpu, achecks, _aw, _ap), (bcpu, bchecks, _bw, _bp) in compared:
        a, b = per100(acpu, achecks), per100(bcpu, bchecks)
        ratio = a / b if b else float("nan")
        print("| %s | check_%s: %.2f (%d checks) | %s: %.2f (%d checks) | %s |" % (
            job, check, a, achecks, command, b, bchecks,
            ("%.1fx" if ratio >= 1 else "%.2fx") % ratio))
    print("\nOur checks are Python processes (interpreter, nagiosplugin, argparse: see the "
          "start-up section); check_disk, check_http, check_snmp and check_dig are small C "
          "programs, so most of the difference is the interpreter's start, paid once per "
          "check. check_apt runs apt-get's simulation every time; check_os_upgrades answers "
          "from its cache until dpkg's status or the package lists change.")


def icinga2_version():
    import subprocess

    from lab.peers.icinga2 import icinga2_binary

    try:
        out = subprocess.run([icinga2_binary(), "--version"], capture_output=True, text=True,
                             timeout=30).stdout
    except OSError:
        return "?"
    for word in out.split():
        if word.startswith("(version:"):
            continue
        if word[:1] == "r" and word[1:2].isdigit():
            return word.rstrip(")")
    return out.splitlines()[0] if out else "?"


if __name__ == "__main__":
    main()
