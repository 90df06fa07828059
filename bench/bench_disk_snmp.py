"""check_disk_partitions in SNMP mode: whole-process time beside Monitoring Plugins' check_snmp
on the same real snmpd (127.0.0.1), what pysnmp's import costs, and proof that local mode does
not import pysnmp at all.

check_snmp GETs two known OIDs (hrStorageUsed and hrStorageSize of /) in C; our check walks
hrStorageTable and dskTable (GETBULK) in Python, finds / by name and judges it with inodes.
"""
import os
import re
import subprocess
import sys

from bench.common import FLOOR, PLUGINS, check, hyperfine, table

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from osop_checks.sources import snmp
from lab.peers.snmpd import QUIET_ENV, Snmpd

PYSNMP = "pysnmp.hlapi.v3arch.asyncio"


def import_times(statement):
    """(module, cumulative microseconds) of the top-level imports python -X importtime shows."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", statement],
                          capture_output=True, text=True, check=True)
    rows = []
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\s*)(\S+)", line)
        if match:
            rows.append((match.group(3), int(match.group(1)), len(match.group(2))))
    return rows, proc.stderr


def root_index(agent):
    target = snmp.Target("127.0.0.1", agent.port, community=agent.community)
    rows = snmp.table(target, "1.3.6.1.2.1.25.2.3.1", [3])
    return next(index[0] for index, cells in rows.items() if cells.get(3) == b"/")


def main():
    os.environ.update(QUIET_ENV)  # check_snmp: no complaints about MIB files nobody needs
    with Snmpd() as agent:
        index = root_index(agent)
        v2c = " ".join(agent.v2c_args())
        v3 = " ".join(agent.v3_args())
        commands = {
            "python -c pass (floor)": FLOOR,
            "local: check_disk_partitions -p /": "%s -p /" % check("check_disk_partitions"),
            "SNMP v2c: check_disk_partitions -p /":
                "%s %s -p /" % (check("check_disk_partitions"), v2c),
            "SNMP v3 authPriv: check_disk_partitions -p /":
                "%s %s -p /" % (check("check_disk_partitions"), v3),
            "python -c 'import %s'" % PYSNMP: "%s -c 'import %s'" % (sys.executable, PYSNMP),
        }
        oids = "-o .1.3.6.1.2.1.25.2.3.1.6.%d,.1.3.6.1.2.1.25.2.3.1.5.%d" % (index, index)
        plugin = os.path.join(PLUGINS, "check_snmp")
        have_check_snmp = os.path.exists(plugin)
        if have_check_snmp:
            commands["Monitoring Plugins check_snmp v2c (2 OIDs)"] = (
                "%s -H 127.0.0.1 -p %d -P 2c -C %s %s" % (plugin, agent.port, agent.community,
                                                          oids))
            commands["Monitoring Plugins check_snmp v3 authPriv (2 OIDs)"] = (
                "%s -H 127.0.0.1 -p %d -P 3 -L authPriv -U %s -a SHA -A %s -x AES -X %s %s" % (
                    plugin, agent.port, agent.user, agent.auth_key, agent.priv_key, oids))
        results = hyperfine(commands, runs=30)
        bad = {n: r["exit_codes"] for n, r in results.items() if set(r["exit_codes"]) - {0}}

    print("## check_disk_partitions over SNMP\n")
    print("Whole-process wall time against one real Net-SNMP snmpd on 127.0.0.1, all commands "
          "in the same hyperfine run (30 runs each).\n")
    reference = "Monitoring Plugins check_snmp v2c (2 OIDs)" if have_check_snmp else None
    print(table(results, floor="python -c pass (floor)", reference=reference))
    if bad:
        print("\nNon-zero exit codes seen: %s" % bad)
    med = {n: r["median"] for n, r in results.items()}
    floor = med["python -c pass (floor)"]
    ours = med["SNMP v2c: check_disk_partitions -p /"]
    local = med["local: check_disk_partitions -p /"]
    pysnmp_import = med["python -c 'import %s'" % PYSNMP] - floor
    cpu = {n: r["cpu"] for n, r in results.items()}
    print("\n- SNMP v2c mode costs %.2fx local mode in wall time, %.2fx in CPU time (CPU is "
          "the steadier measure on a busy machine)." % (
              ours / local, cpu["SNMP v2c: check_disk_partitions -p /"] /
              cpu["local: check_disk_partitions -p /"]))
    print("- Importing pysnmp alone costs %.0f ms wall, %.0f ms CPU over the floor." % (
        1000 * pysnmp_import, 1000 * (cpu["python -c 'import %s'" % PYSNMP] -
                                      cpu["python -c pass (floor)"])))
    if have_check_snmp:
        print("- Against check_snmp (C, two GETs): v2c %.2fx, v3 %.2fx wall; %.2fx, %.2fx CPU."
              % (ours / med[reference],
                 med["SNMP v3 authPriv: check_disk_partitions -p /"] /
                 med["Monitoring Plugins check_snmp v3 authPriv (2 OIDs)"],
                 cpu["SNMP v2c: check_disk_partitions -p /"] / cpu[reference],
                 cpu["SNMP v3 authPriv: check_disk_partitions -p /"] /
                 cpu["Monitoring Plugins check_snmp v3 authPriv (2 OIDs)"]))

    baseline = {r[0] for r in import_times("pass")[0] if r[2] == 0}

    def cost(statement):
        rows = import_times(statement)[0]
        top = [r for r in rows if r[2] == 0 and r[0] not in baseline]
        return sum(r[1] for r in top), rows

    check_total, _ = cost("import osop_checks.checks.disk_partitions")
    both_total, rows = cost("import osop_checks.checks.disk_partitions, %s" % PYSNMP)
    pysnmp_total = both_total - check_total
    deps = {}
    for name, micros, _ in rows:
        package = name.split(".")[0]
        if package in ("pyasn1", "cryptography", "asyncio", "pysnmp"):
            deps[package] = max(deps.get(package, 0), micros)
    print("\n### Import cost (python -X importtime, cumulative, one run)\n")
    print("| import | cumulative | × disk_partitions module |")
    print("|---|---:|---:|")
    print("| osop_checks.checks.disk_partitions (every run, local or SNMP) | %.1f ms | 1.00 |"
          % (check_total / 1000))
    print("| + %s (SNMP mode only) | %.1f ms | %.2f |" % (PYSNMP, pysnmp_total / 1000,
                                                        pysnmp_total / check_total))
    for name, micros in sorted(deps.items(), key=lambda kv: -kv[1]):
        print("| · largest single %s import | %.1f ms | %.2f |" % (
            name, micros / 1000, micros / check_total))

    # Local mode: run the check with -X importtime and look for pysnmp among the imports.
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c",
                           "from osop_checks.checks import disk_partitions as d; "
                           "d.main(['-p', '/'])"], capture_output=True, text=True)
    loaded = sorted({m for m in re.findall(r"\| +(\S+)$", proc.stderr, re.M)
                     if m.split(".")[0] in ("pysnmp", "pyasn1")})
    print("\nLocal mode (`check_disk_partitions -p /`, exit %d) imports pysnmp/pyasn1: %s." % (
        proc.returncode, "no" if not loaded else "YES: " + ", ".join(loaded[:5])))


if __name__ == "__main__":
    main()
