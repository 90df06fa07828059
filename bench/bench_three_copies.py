"""Benchmark: check_three_copies comparing three copies of a 1,000,000-file tree with their
source, against one `rsync -a --dry-run --itemize-changes --delete` of one copy.

    .venv/bin/python -m bench.bench_three_copies [--files N] [--runs N]

The trees live under /var/cache/osop-checks-bench/copies (built once, reused: a source of
empty and sparse files with old mtimes, and three `cp -a` copies of it). Prints a markdown
section: medians of wall time and peak RSS (the check process and its largest child, from
/usr/bin/time -v style getrusage of children), measured in the same run, and the ratios.
"""
import argparse
import threading
import fcntl
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BASE = os.environ.get("OSOP_BENCH_CACHE", "/var/cache/osop-checks-bench") + "/copies"
COPIES = ("copy1", "copy2", "copy3")
PER_DIR = 1000


def build_tree(root, files):
    """A source tree of ``files`` files in directories of 1000: empty or sparse files (no
    data blocks, so a million of them cost only inodes), mtimes spread over the last year."""
    rng = random.Random(42)
    now = time.time()
    os.makedirs(root)
    for start in range(0, files, PER_DIR):
        directory = os.path.join(root, "d%04d" % (start // PER_DIR))
        os.mkdir(directory)
        for i in range(start, min(files, start + PER_DIR)):
            path = os.path.join(directory, "f%07d.dat" % i)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            if i % 3:
                os.ftruncate(fd, rng.randrange(1, 1 << 20))
            old = now - 7200 - rng.randrange(365 * 86400)
            os.utime(fd, (old, old))
            os.close(fd)
        os.utime(directory, (now - 7200, now - 7200))
    os.utime(root, (now - 7200, now - 7200))


def ensure_trees(files):
    """The source and three copies with ``files`` files; reused when already complete."""
    base = os.path.join(BASE, str(files))
    os.makedirs(BASE, exist_ok=True)
    with open(base + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(base, ".complete")):
            shutil.rmtree(base, ignore_errors=True)
            started = time.monotonic()
            sys.stderr.write("building %s (%d files, once)...\n" % (base, files))
            os.makedirs(base)
            build_tree(os.path.join(base, "source"), files)
            # cp -a keeps mtimes to the nanosecond, as rsync -a does; in parallel.
            copiers = [subprocess.Popen(["cp", "-a", os.path.join(base, "source"),
                                         os.path.join(base, name)]) for name in COPIES]
            for copier in copiers:
                if copier.wait() != 0:
                    raise SystemExit("cp -a failed")
            open(os.path.join(base, ".complete"), "w").close()
            sys.stderr.write("built in %.0f s\n" % (time.monotonic() - started))
    return base


def _tree_rss(root_pid):
    """Sum of the resident memory (bytes) of ``root_pid`` and all its descendants now."""
    from lab.peers.icinga2 import proc_stats

    parents, rss = {}, {}
    for pid, fields in proc_stats():
        parents[pid] = int(fields[1])
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(child for child, parent in parents.items() if parent == pid)
    return total


def measure(argv):
    """Run argv once: (wall seconds, exit code, peak RSS of the largest single process in
    its tree as /usr/bin/time reports it, peak sum of RSS over the tree, sampled)."""
    with tempfile.NamedTemporaryFile("r") as report:
        started = time.monotonic()
        process = subprocess.Popen(["/usr/bin/time", "-o", report.name, "-f", "%M"] + argv,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak_sum = [0]
        done = threading.Event()

        def sample():
            while not done.wait(0.5):
                peak_sum[0] = max(peak_sum[0], _tree_rss(process.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = process.wait()
        elapsed = time.monotonic() - started
        done.set()
        sampler.join()
        lines = [line for line in report.read().splitlines() if line.strip()]
        largest = int(lines[-1]) * 1024 if lines and lines[-1].strip().isdigit() else 0
    return elapsed, code, largest, peak_sum[0]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=1000000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--build-only", action="store_true")
    opts = parser.parse_args()
    base = ensure_trees(opts.files)
    if opts.build_only:
        return
    here = os.path.dirname(sys.executable)
    source = os.path.join(base, "source")
    ours = [os.path.join(here, "check_three_copies"), "-t", "3000", "--source", source,
            "--settle", "0", "--min-copies", "1"]
    for name in COPIES:
        ours += ["--copy", "%s=%s" % (name, os.path.join(base, name))]
    work = tempfile.mkdtemp(prefix="osop-bench-copies-")
    ours += ["--state-file", os.path.join(work, "plain.json")]
    # The same with a state file from a previous run: shrink, churn and one canary judged.
    guarded = [a if not a.endswith("plain.json") else os.path.join(work, "guarded.json")
               for a in ours] + ["--canary", "d0000/f0000001.dat"]
    subprocess.run(guarded, stdout=subprocess.DEVNULL, check=False)  # the baseline
    rsync = ["rsync", "-a", "--dry-run", "--itemize-changes", "--delete", source + "/",
             os.path.join(base, COPIES[0]) + "/"]
    fmt = r"%y\t%s\t%T@\t%P\0"
    find_one = ["find", os.path.join(base, COPIES[0]), "-printf", fmt]
    find_two = ["sh", "-c", 'find "$1" -printf "$3" >/dev/null & find "$2" -printf "$3" '
                '>/dev/null & wait', "sh", os.path.join(base, COPIES[1]),
                os.path.join(base, COPIES[2]), fmt]
    commands = (("rsync, one copy", rsync), ("check_three_copies, three copies", ours),
                ("find, one tree", find_one), ("find, two trees at once", find_two),
                ("check_three_copies, three copies, state + shrink + churn + 1 canary",
                 guarded))
    results = {title: [] for title, _argv in commands}
    for _run in range(opts.runs):  # interleaved, so that drift hits all alike
        for title, argv in commands:
            results[title].append(measure(argv))
    med = {title: (statistics.median(r[0] for r in runs),
                   statistics.median(r[2] for r in runs),
                   statistics.median(r[3] for r in runs)) for title, runs in results.items()}
    mib = 1024 * 1024
    print("## check_three_copies: three copies of %d files vs one rsync --dry-run\n" %
          opts.files)
    print("Trees: %s/{source,copy1,copy2,copy3} (empty and sparse files, all on one "
          "filesystem). Median of %d interleaved runs; peak RSS of the largest single "
          "process (/usr/bin/time %%M) and of the whole process tree summed "
          "(sampled every 0.5 s).\n" % (base, opts.runs))
    print("| command | wall (s) | largest process RSS (MiB) | tree RSS sum (MiB) |")
    print("|---|---:|---:|---:|")
    for title, _argv in commands:
        wall, largest, total = med[title]
        print("| %s | %.2f | %.1f | %.1f |" % (title, wall, largest / mib, total / mib))
    ratio = med[commands[1][0]][0] / med[commands[0][0]][0]
    parallel = med[commands[3][0]][0] / med[commands[2][0]][0]
    print()
    largest = med[commands[1][0]][1] / mib
    print("- wall time ratio check_three_copies / rsync: **%.2fx** (target <= 1.5x): %s"
          % (ratio, "met" if ratio <= 1.5 else "MISSED"))
    print("- largest process: **%.1f MiB** (target < 64 MiB; sort -S 8M bounds each sort): %s"
          % (largest, "met" if largest < 64 else "MISSED"))
    guarded_wall, guarded_largest = med[commands[4][0]][0], med[commands[4][0]][1] / mib
    print("- with the state file, shrink, churn and one canary: wall time ratio / rsync "
          "**%.2fx** (target <= 1.5x): %s; %.2fx the plain check; largest process "
          "**%.1f MiB** (target < 64 MiB): %s" % (
              guarded_wall / med[commands[0][0]][0],
              "met" if guarded_wall / med[commands[0][0]][0] <= 1.5 else "MISSED",
              guarded_wall / med[commands[1][0]][0], guarded_largest,
              "met" if guarded_largest < 64 else "MISSED"))
    print("- two tree walks at once take %.2fx the time of one here (1.0: walks run fully in "
          "parallel, 2.0: not at all); the check walks four trees where rsync walks two."
          % parallel)
    shutil.rmtree(work, True)
    for title, runs in results.items():
        codes = sorted({r[1] for r in runs})
        if title.startswith("check") and codes != [2] and codes != [0]:
            print("- note: %s exited %s" % (title, codes))


if __name__ == "__main__":
    main()
