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


def hyperfine(commands, runs, prepare=None, warmup=1):
    """{command: median seconds} for each command, via hyperfine's JSON export."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        argv = ["hyperfine", "-N", "-i", "--style", "none", "--runs", str(runs),
                "--warmup", str(warmup), "--export-json", out.name]
        if prepare:
            argv += ["--prepare", prepare]
        subprocess.run(argv + commands, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        with open(out.name) as handle:
            results = json.load(handle)["results"]
    return {r["command"]: statistics.median(r["times"]) for r in results}


def fmt(seconds):
    return "%.0f ms" % (seconds * 1000) if seconds < 10 else "%.1f s" % seconds


def scenario(title, ours, theirs, runs, tmp, tag):
    cache = os.path.join(tmp, "cache-" + tag)
    first_cmd = "%s --cache-dir %s" % (ours, cache)
    reference = hyperfine([theirs], runs)[theirs]
    # First run: the result cache is emptied before every timed run.
    first = hyperfine([first_cmd], runs, prepare="rm -rf %s" % cache, warmup=0)[first_cmd]
    # Repeat run: the cache holds the answer (filled by the warm-up).
    repeat = hyperfine([first_cmd], max(runs * 3, 20), warmup=2)[first_cmd]
    rows = [
        ("Monitoring Plugins check_apt", theirs, reference, "1"),
        ("check_os_upgrades, first run (cache cleared)", first_cmd, first,
         "%.2fx the time" % (first / reference)),
        ("check_os_upgrades, repeat run (cache warm)", first_cmd, repeat,
         "**%.1fx faster**" % (reference / repeat)),
    ]
    lines = ["", "### %s" % title, "",
             "| run | command | median | vs check_apt |", "|---|---|---|---|"]
    for name, command, median, ratio in rows:
        shown = command.replace(tmp, "$TMP").replace(
            os.path.dirname(sys.executable) + "/", "")
        lines.append("| %s | `%s` | %s | %s |" % (name, shown, fmt(median), ratio))
    return lines, reference / repeat, first / reference


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
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
               "(repeat runs: more). This machine: %s" % (args.runs, upgrades.split(" | ")[0])]
        table, speedup, first_ratio = scenario(
            "apt as configured here", ours + " --max-list-age 0",
            CHECK_APT + " -d", args.runs, tmp, "a")
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
            args.runs, tmp, "b")
        out += table2
        out += ["", "Repeat run: %.1fx / %.1fx faster than check_apt (target 20x); first run: "
                    "%.2fx / %.2fx check_apt's time (target: no slower). The repeat run is "
                    "Python's start-up plus a stat() of the dpkg status, the lists and the apt "
                    "configuration; the first run is apt-get's own simulation plus that."
                % (speedup, speedup2, first_ratio, first_ratio2)]
        print("\n".join(out))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
