"""Benchmark: check_backup_age on a tree of 1,000,000 files against find.

Builds the tree once under /var/cache/osop-checks-bench/backup-age-1m (reused while its
complete.json is there), then times whole processes with hyperfine, in the same run:
  find -printf '%T@\\n'            every mtime printed (what the check's walk must beat)
  find ... | sort -n | tail -1     the shell way to get the newest one
  check_backup_age                 the whole plugin (default --workers)
  check_backup_age --workers 1     the same walk in one process
  plain os.scandir walk, 1 and 2 threads   the reference walks the design was chosen against
                                   (python -m bench.bench_backup_age --walk-threads N ROOT)
interleaved (each round runs every command once), and prints a markdown section with medians
and per-round ratios to find, plus the check's peak memory.

    .venv/bin/python -m bench.bench_backup_age [--runs 5] [--files 1000000]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from bench.common import compile_sources
from lab.peers import BIN, ROOT, trees

CACHE = os.environ.get("OSOP_BENCH_CACHE", "/var/cache/osop-checks-bench")


def build(files):
    """The tree: 10 x 100 directories of files/1000 files each (0-256 bytes, mtimes over the
    past year, the newest one hour before the build). Returns its complete.json."""
    root = os.path.join(CACHE, "backup-age-%s" % ("1m" if files == 1000000 else files))
    stamp = os.path.join(root, "complete.json")
    if os.path.exists(stamp):
        with open(stamp) as handle:
            info = json.load(handle)
        if info.get("files") == files:
            info["root"] = os.path.join(root, "data")
            return info
    shutil.rmtree(root, ignore_errors=True)
    print("building %d files under %s (once) ..." % (files, root), file=sys.stderr)
    started = time.time()
    info = trees.make_wide_tree(os.path.join(root, "data"), fanout=(10, 100),
                                files_per_dir=max(1, files // 1000), size=(0, 256),
                                age=(3600, 365 * 86400), seed=42)
    info["built"] = time.time()
    info["build_seconds"] = round(time.time() - started, 1)
    with open(stamp, "w") as handle:
        json.dump(info, handle)
    info["root"] = os.path.join(root, "data")
    return info


def threaded_walk(root, threads):
    """The textbook walk: os.scandir by path, entry.stat() per file, ``threads`` threads
    sharing a queue of directories. Prints the newest mtime. Kept as a reference: stat()
    releases the GIL, but each one hands it over and back, so threads do not help here."""
    import queue
    import threading

    todo = queue.Queue()
    todo.put(root)
    pending = [1]
    lock = threading.Lock()
    done = threading.Event()
    bests = []

    def work():
        best = -1.0
        while not done.is_set():
            try:
                path = todo.get(timeout=0.01)
            except queue.Empty:
                continue
            subdirs = []
            with os.scandir(path) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        subdirs.append(entry.path)
                    else:
                        best = max(best, entry.stat(follow_symlinks=False).st_mtime)
            for sub in subdirs:
                todo.put(sub)
            with lock:
                pending[0] += len(subdirs) - 1
                if pending[0] == 0:
                    done.set()
        bests.append(best)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print(max(bests))


def hyperfine(commands, runs):
    """Time every command ``runs`` times with hyperfine, interleaved: each round runs every
    command once (in a rotating order), so a load that comes and goes on a shared machine
    hits all of them alike. Returns {name: [wall seconds per round]} and {name: [CPU seconds
    (user + system, children included) per round]}."""
    times = {name: [] for name, _ in commands}
    cpu = {name: [] for name, _ in commands}
    for round_no in range(runs + 1):  # round 0 warms the page cache and is not counted
        shift = round_no % len(commands)
        ordered = commands[shift:] + commands[:shift]
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            argv = ["hyperfine", "-N", "--style", "none", "--runs", "1",
                    "--export-json", out.name]
            for name, command in ordered:
                argv += ["-n", name, command]
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
            with open(out.name) as handle:
                results = json.load(handle)["results"]
        if round_no:
            for result in results:
                times[result["command"]].extend(result["times"])
                cpu[result["command"]].append(result["user"] + result["system"])
    return times, cpu


def peak_rss_kib(argv):
    """Peak resident memory of a command (GNU time's %M: the largest of it and its children)."""
    proc = subprocess.run(["/usr/bin/time", "-f", "%M"] + argv, capture_output=True,
                          text=True)
    return int(proc.stderr.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=1000000)
    parser.add_argument("--walk-threads", nargs=2, metavar=("N", "ROOT"),
                        help="only run the reference threaded walk (used by the benchmark)")
    opts = parser.parse_args(argv)
    if opts.walk_threads:
        threaded_walk(opts.walk_threads[1], int(opts.walk_threads[0]))
        return 0
    compile_sources()
    info = build(opts.files)
    root = info["root"]
    check = os.path.join(BIN, "check_backup_age")
    age = ["-w", "400d", "-c", "400d"]
    quote = " ".join
    commands = [
        ("find -printf", quote(["find", root, "-printf", "'%T@\\n'"])),
        ("find | sort | tail -1",
         "bash -c \"find %s -printf '%%T@\\n' | sort -n | tail -1\"" % root),
        ("check_backup_age", quote([check, "-p", root] + age)),
        ("check_backup_age --workers 1", quote([check, "-p", root, "--workers", "1"] + age)),
    ] + [("os.scandir walk, %d thread%s" % (n, "" if n == 1 else "s"), quote(
        [sys.executable, "-m", "bench.bench_backup_age", "--walk-threads", str(n), root]))
        for n in (1, 2)]
    # Correctness first: the check must name the newest file the builder planted.
    out = subprocess.run([check, "-p", root] + age, capture_output=True, text=True)
    if info["newest"] not in out.stdout or "files=%d;" % info["files"] not in out.stdout:
        print("check_backup_age did not find the newest file:\n" + out.stdout)
        return 1
    times, cpu = hyperfine(commands, opts.runs)
    base = times["find -printf"]
    rss = peak_rss_kib([check, "-p", root] + age)
    rss1 = peak_rss_kib([check, "-p", root, "--workers", "1"] + age)
    cpus = len(os.sched_getaffinity(0))
    load = os.getloadavg()[0]
    print("## check_backup_age: newest of %s files\n" % format(info["files"], ","))
    print("Tree: %s (10 x 100 directories, %d files each); warm page cache; %d CPUs, load "
          "average %.1f at the start; hyperfine, %d rounds, each running every command once "
          "(interleaved, so load from elsewhere hits all alike); whole processes. The ratio is "
          "the median over rounds of (command / find -printf in the same round).\n"
          % (root, info["files"] // 1000, cpus, load, opts.runs))
    print("| command | median | min | max | ratio to find -printf | CPU (user+sys), median "
          "| CPU ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    ratios = {}
    for name, _ in commands:
        mine = times[name]
        ratio = ratios[name] = statistics.median(t / b for t, b in zip(mine, base))
        cpu_ratio = statistics.median(t / b for t, b in zip(cpu[name], cpu["find -printf"]))
        print("| `%s` | %.2f s | %.2f s | %.2f s | %.2f | %.2f s | %.2f |" % (
            name.replace("|", "\\|"), statistics.median(mine), min(mine), max(mine), ratio,
            statistics.median(cpu[name]), cpu_ratio))
    print("\nPeak memory (GNU time %%M, largest process): check_backup_age %.1f MiB, with "
          "--workers 1 %.1f MiB." % (rss / 1024, rss1 / 1024))
    print("Status line: `%s`" % out.stdout.splitlines()[0].split(" | ")[0])
    ours = ratios["check_backup_age"]
    print("\n- check_backup_age takes %.2fx the time of find -printf (target: no slower, "
          "at most 1.00x): %s." % (ours, "met" if ours <= 1.0 else "MISSED"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
