"""check_os_upgrades beside Monitoring Plugins' check_apt on this machine, measured with hyperfine.

    .venv/bin/python -m bench.bench_os_upgrades [--runs N]

Prints a markdown section: medians of check_apt, of our first run (result cache cleared
before every run) and of our repeat run (cache warm), and the ratios, all measured in the same
run. Two apt setups: this machine as configured, and with apt's binary package cache
(pkgcache.bin) enabled in a temporary place, as on a stock Debian host (Docker-style images
switch it off, which makes every apt-get run rebuild it).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

CHECK_APT = "/usr/lib/nagios/plugins/check_apt"


def hyperfine(command, runs, prepare=None, warmup=1):
    """(wall times in seconds, mean CPU seconds user+system) of ``runs`` runs of ``command``."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        argv = ["hyperfine", "-N", "-i", "--style", "none", "--runs", str(runs),
                "--warmup", str(warmup), "--export-json", out.name]
        if prepare:
            argv += ["--prepare", prepare]
        subprocess.run(argv + [command], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        with open(out.name) as handle:
            result = json.load(handle)["results"][0]
    return result["times"], result["user"] + result["system"]


def fmt(seconds):
    return "%.0f ms" % (seconds * 1000) if seconds < 10 else "%.1f s" % seconds


def scenario(title, ours, theirs, runs, rounds, tmp, tag):
    """check_apt, our first run (result cache emptied before each run) and our repeat run
    (cache warm), measured in ``rounds`` interleaved rounds so that a change of the machine's
    load hits all three alike; medians over all runs."""
    cache = os.path.join(tmp, "cache-" + tag)
    os.makedirs(cache, exist_ok=True)  # --cache-dir must exist; the first run empties it
    mine = "%s --cache-dir %s" % (ours, cache)
    kinds = {"theirs": ([], []), "first": ([], []), "repeat": ([], [])}
    per_round = max(1, runs // rounds)
    for _ in range(rounds):
        for kind, command, prepare, count, warmup in (
                ("theirs", theirs, None, per_round, 1),
                ("first", mine, "find %s -mindepth 1 -delete" % cache, per_round, 0),
                ("repeat", mine, None, per_round * 3, 2)):
            times, cpu = hyperfine(command, count, prepare, warmup)
            kinds[kind][0].extend(times)
            kinds[kind][1].append(cpu)
    wall = {k: statistics.median(v[0]) for k, v in kinds.items()}
    cpu = {k: statistics.mean(v[1]) for k, v in kinds.items()}
    rows = [
        ("Monitoring Plugins check_apt", theirs, "theirs", "1", "1"),
        ("check_os_upgrades, first run (cache cleared)", mine, "first",
         "%.2fx the time" % (wall["first"] / wall["theirs"]),
         "%.2fx" % (cpu["first"] / cpu["theirs"])),
        ("check_os_upgrades, repeat run (cache warm)", mine, "repeat",
         "**%.1fx faster**" % (wall["theirs"] / wall["repeat"]),
         "%.1fx less" % (cpu["theirs"] / cpu["repeat"])),
    ]
    lines = ["", "### %s" % title, "",
             "| run | command | median wall time | vs check_apt | CPU (user+sys) | vs check_apt |",
             "|---|---|---|---|---|---|"]
    for name, command, kind, ratio, cpu_ratio in rows:
        shown = command.replace(tmp, "$TMP").replace(
            os.path.dirname(sys.executable) + "/", "")
        lines.append("| %s | `%s` | %s | %s | %s | %s |" % (
            name, shown, fmt(wall[kind]), ratio, fmt(cpu[kind]), cpu_ratio))
    return lines, wall["theirs"] / wall["repeat"], wall["first"] / wall["theirs"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="runs per median (default 9)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds the runs are spread over (default 3)")
    args = parser.parse_args()
    for tool in ("hyperfine", "apt-get"):
        if not shutil.which(tool):
            sys.exit("needs %s" % tool)
    if not os.path.exists(CHECK_APT):
        sys.exit("needs %s (monitoring-plugins-basic)" % CHECK_APT)
    ours = os.path.join(os.path.dirname(sys.executable), "check_os_upgrades")
    tmp = tempfile.mkdtemp(prefix="osop-bench-upgrades-")
    try:
        upgrades = subprocess.run(
            [ours, "--no-cache", "--max-list-age", "0"], capture_output=True,
            text=True).stdout.split("\n", 1)[0]
        out = ["## check_os_upgrades vs check_apt", "",
               "Same machine, same apt state, both in dist-upgrade mode; %d runs per median "
               "(repeat runs: 3x as many) in %d interleaved rounds; CPU is the mean user+system "
               "time, which other load on the machine disturbs less than wall time. "
               "This machine: `%s`, load average %s before the run."
               % (args.runs, args.rounds, upgrades.split(" | ")[0],
                  " ".join("%.1f" % x for x in os.getloadavg()))]
        table, speedup, first_ratio = scenario(
            "apt as configured here", ours + " --max-list-age 0",
            CHECK_APT + " -d", args.runs, args.rounds, tmp, "a")
        out += table
        bins = os.path.join(tmp, "aptcache")
        os.makedirs(bins)
        opts = "-o Dir::Cache::pkgcache=%s/pkgcache.bin -o Dir::Cache::srcpkgcache=%s/src.bin" \
            % (bins, bins)
        subprocess.run(["apt-get", "-s", "-qq", "-o", "Debug::NoLocking=1"] + opts.split()
                       + ["dist-upgrade"], stdout=subprocess.DEVNULL, check=True)
        table2, speedup2, first_ratio2 = scenario(
            "apt with its binary package cache (pkgcache.bin) enabled, as on a stock host",
            "%s --max-list-age 0 --apt-get '%s'" % (ours, "apt-get " + opts),
            "%s '--dist-upgrade=-o Debug::NoLocking=true -s -qq %s'" % (CHECK_APT, opts),
            args.runs, args.rounds, tmp, "b")
        out += table2
        verdict = lambda ok: "met" if ok else "MISSED"  # noqa: E731
        out += ["", "Repeat run: %.1fx / %.1fx faster than check_apt (target 20x): %s; first run: "
                    "%.2fx / %.2fx check_apt's time (target: no slower): %s. The repeat run is "
                    "Python's start-up plus a stat() of the dpkg status, the lists and the apt "
                    "configuration; the first run is apt-get's own simulation plus that."
                % (speedup, speedup2, verdict(min(speedup, speedup2) >= 20), first_ratio,
                   first_ratio2, verdict(max(first_ratio, first_ratio2) <= 1))]
        print("\n".join(out))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
