"""Start-up cost: each check's whole-process wall time beside `python -c pass`.

Icinga forks every check every few minutes; the target is at most 5x the interpreter floor
for local checks (argparse + nagiosplugin + psutil alone cost about 4.7x).
"""
import os

from bench.common import FLOOR, PLUGINS, check, compile_sources, hyperfine, table


def main():
    compile_sources()
    commands = {
        "python -c pass (floor)": FLOOR,
        "python -c 'import argparse, nagiosplugin, psutil'":
            "%s -c 'import argparse, nagiosplugin, psutil; psutil.disk_partitions()'"
            % FLOOR.split()[0],
        "check_disk_partitions -p /": "%s -p /" % check("check_disk_partitions"),
        "check_disk_partitions (all mounts)": check("check_disk_partitions"),
    }
    if os.path.exists(os.path.join(PLUGINS, "check_disk")):
        commands["Monitoring Plugins check_disk -p /"] = \
            "%s/check_disk -w 10%% -c 5%% -p /" % PLUGINS
    results = hyperfine(commands, runs=40)
    ratio = results["check_disk_partitions -p /"]["median"] / \
        results["python -c pass (floor)"]["median"]
    print("## Start-up: check_disk_partitions\n")
    print(table(results, floor="python -c pass (floor)"))
    print("\ncheck_disk_partitions -p / costs %.2fx the interpreter floor (target: at most 5x): "
          "%s.\n" % (ratio, "met" if ratio <= 5 else "MISSED"))


if __name__ == "__main__":
    main()
