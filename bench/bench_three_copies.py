"""Benchmark: check_three_copies comparing three copies of a 1,000,000-file tree with their
source, against one `rsync -a --dry-run --itemize-changes --delete` of one copy.

    .venv/bin/python -m bench.bench_three_copies [--files N] [--runs N]

The trees live under /var/cache/osop-checks-bench/copies (built once, reused: a source of
empty and sparse files with old mtimes, and three `cp -a` copies of it). Prints a markdown
section: medians of wall time and peak RSS (the check process and its largest child, from
/usr/bin/time -v style getrusage of children), measured in the same run, and the ratios.
"""
import argparse
import fcntl
import os
import random
import shutil
import statistics
import subprocess
import sys
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=1000000)
    parser.add_argument("--build-only", action="store_true")
    opts = parser.parse_args()
    ensure_trees(opts.files)
