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
