"""Shared benchmark helpers: whole-process timings with hyperfine, reported as ratios.

Absolute times on a shared 2-core machine are noise; every table compares commands measured
in the same run, against `python -c pass` on the same interpreter (the floor).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

BIN = os.path.dirname(sys.executable)
PLUGINS = "/usr/lib/nagios/plugins"
FLOOR = "%s -c pass" % sys.executable


def compile_sources():
    """Write the .pyc files an installed package has (pip compiles on install): without them,
    and with PYTHONDONTWRITEBYTECODE set, every start would compile our modules again."""
    import compileall

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    compileall.compile_dir(os.path.join(root, "osop_checks"), quiet=1)


def check(name):
    return os.path.join(BIN, name)


def hyperfine(commands, runs=30, warmup=3):
    """Time each command (name -> shell command line) in one hyperfine run.

    Returns name -> {"median": s, "cpu": mean user+system s, "exit_codes": set}.
    """
    if not shutil.which("hyperfine"):
        raise SystemExit("hyperfine is not installed (apt-get install hyperfine)")
    with tempfile.NamedTemporaryFile(suffix=".json") as export:
        argv = ["hyperfine", "-N", "--runs", str(runs), "--warmup", str(warmup), "-i",
                "--style", "none", "--export-json", export.name]
        names = list(commands)
        for name in names:
            argv += ["-n", name, commands[name]]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        data = json.load(open(export.name))
    results = {}
    for name, entry in zip(names, data["results"]):
        results[name] = {"median": entry["median"], "cpu": entry["user"] + entry["system"],
                         "exit_codes": sorted(set(entry.get("exit_codes") or []))}
    return results


def interleaved(commands, runs=40, warmup=3, env=None):
    """Time each command (name -> command line, split like a shell would, no shell) in
    interleaved rounds: run 1 of every command, then run 2 of every command ... so a change
    in the load of this shared machine hits every command alike, not just one of them.

    Each run is one posix_spawn + wait4: wall time from perf_counter, CPU time (user + system
    of the process and its children) from the kernel's rusage.
    Returns name -> {"median": s, "cpu": median CPU s, "exit_codes": [...], "runs": n}.
    """
    import shlex
    import statistics
    import time

    argvs = {name: shlex.split(line) for name, line in commands.items()}
    full_env = dict(os.environ, **(env or {}))
    samples = {name: ([], [], set()) for name in argvs}
    null = os.open(os.devnull, os.O_RDWR)
    try:
        actions = [(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1),
                   (os.POSIX_SPAWN_DUP2, null, 2)]
        for number in range(warmup + runs):
            for name, argv in argvs.items():
                start = time.perf_counter()
                pid = os.posix_spawn(argv[0], argv, full_env, file_actions=actions)
                _, status, usage = os.wait4(pid, 0)
                wall = time.perf_counter() - start
                if number >= warmup:
                    walls, cpus, codes = samples[name]
                    walls.append(wall)
                    cpus.append(usage.ru_utime + usage.ru_stime)
                    codes.add(os.waitstatus_to_exitcode(status))
    finally:
        os.close(null)
    return {name: {"median": statistics.median(walls), "cpu": statistics.median(cpus),
                   "exit_codes": sorted(codes), "runs": len(walls)}
            for name, (walls, cpus, codes) in samples.items()}


def table(results, floor=None, reference=None):
    """A markdown table: median wall time and CPU time, each as a ratio to ``floor`` (and to
    ``reference`` when given), the absolute medians only for orientation."""
    header = "| command | median wall | CPU (user+sys) | × floor |"
    rule = "|---|---:|---:|---:|"
    if reference:
        header += " × %s |" % reference
        rule += "---:|"
    lines = [header, rule]
    base = results[floor]["median"] if floor else None
    ref = results[reference]["median"] if reference else None
    for name, r in results.items():
        row = "| %s | %.1f ms | %.1f ms | %s |" % (
            name, r["median"] * 1000, r["cpu"] * 1000,
            "%.2f" % (r["median"] / base) if base else "")
        if reference:
            row += " %.2f |" % (r["median"] / ref)
        lines.append(row)
    return "\n".join(lines)


def import_profile(argv, repeat=15, env=None):
    """What a process imports, from ``python -X importtime``, repeated: module -> (median
    self ms, median cumulative ms, nesting depth). ``argv`` is run with this interpreter
    (a script path or -c/-m arguments); its own output is discarded."""
    import re
    import statistics

    samples = {}
    depth = {}
    for _ in range(repeat):
        proc = subprocess.run([sys.executable, "-X", "importtime"] + list(argv),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env=env)
        for line in proc.stderr.splitlines():
            match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
            if match:
                name = match.group(4)
                samples.setdefault(name, []).append((int(match.group(1)),
                                                     int(match.group(2))))
                depth[name] = len(match.group(3)) // 2
    return {name: (statistics.median(s for s, _ in values) / 1000,
                   statistics.median(c for _, c in values) / 1000, depth[name])
            for name, values in samples.items()}


def import_costs_beyond(profile, floor):
    """Modules of ``profile`` that the floor does not import, by median self time, with
    the total: (total ms, [(module, self ms), ...] biggest first)."""
    extra = {k: v[0] for k, v in profile.items() if k not in floor}
    return sum(extra.values()), sorted(extra.items(), key=lambda kv: -kv[1])
