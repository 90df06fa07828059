"""`make bench`: run every bench/bench_*.py and write bench/RESULTS.md.

Each benchmark prints its own markdown section with medians and ratios measured in the same
run; a benchmark that cannot run here (a missing peer, no root) says so in its section. The
start-up and fleet sections come first, then one section per check. At the top, every sentence
that states a target (met or MISSED) is gathered with a link to its section. A marker line
before each section names its benchmark, date and duration, so a run of some benchmarks
replaces only their sections and keeps the others.

    .venv/bin/python -m bench.run [name ...]   # only the benchmarks whose name contains one
"""
import datetime
import os
import pkgutil
import platform
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FIRST = ["bench_startup", "bench_startup_debian", "bench_fleet"]


def order(names):
    return [n for n in FIRST if n in names] + sorted(n for n in names if n not in FIRST)


def anchor(heading):
    """GitHub's anchor for a markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return "#" + text.replace(" ", "-")


def verdicts(body):
    """(section heading, line) for each sentence of ``body`` (outside tables) that states a
    target: its verdict (met / MISSED) or, when it gives none, the sentence flagged so."""
    heading, found = None, []
    for line in body.splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
            continue
        if line.startswith(("|", "#")) or not line.strip():
            continue
        has_verdict = re.search(r"\b(met|MISSED)\b", line)
        if re.search(r"\btarget", line, re.I) and has_verdict:
            found.append((heading, line.strip()))
        elif re.search(r"\btarget\b", line, re.I) and re.search(r"\d", line):
            found.append((heading, line.strip() + " *(no met/MISSED stated)*"))
    return found


MARK = re.compile(r"^<!-- (bench_\w+): (\S+), (\d+) s, load ([\d.]+) -->$", re.M)


def kept_sections(path):
    """{name: (marker line, body)} of the sections an earlier run wrote to ``path``."""
    try:
        text = open(path).read()
    except OSError:
        return {}
    marks = list(MARK.finditer(text))
    return {m.group(1): (m.group(0), text[m.end():marks[i + 1].start() if i + 1 < len(marks)
                                          else len(text)].strip())
            for i, m in enumerate(marks)}


def main(selected=()):
    names = order([m.name for m in pkgutil.iter_modules([HERE])
                   if m.name.startswith("bench_")])
    results_path = os.path.join(HERE, "RESULTS.md")
    # a run of some benchmarks keeps the other sections of the last results, with their dates
    sections = {n: s for n, s in kept_sections(results_path).items() if n in names} \
        if selected else {}
    run = [n for n in names if any(s in n for s in selected)] if selected else names
    load = os.getloadavg()[0]
    for name in run:
        print("running %s ..." % name, file=sys.stderr, flush=True)
        start = time.monotonic()
        try:
            proc = subprocess.run([sys.executable, "-m", "bench." + name], capture_output=True,
                                  text=True, cwd=os.path.dirname(HERE), timeout=3600)
            out, err, code = proc.stdout, proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (
                exc.stdout or "")
            err, code = "timed out after %d s" % exc.timeout, "timeout"
        body = out.strip() or "## %s\n\n(no output)" % name
        if code != 0:
            body += "\n\n%s did not finish: exit %s\n\n```\n%s\n```" % (
                name, code, err.strip()[-2000:])
        sections[name] = ("<!-- %s: %s, %d s, load %.1f -->" % (
            name, datetime.date.today(), time.monotonic() - start, load), body)
        load = os.getloadavg()[0]
    bodies = [sections[n][1] for n in names if n in sections]
    summary = []
    for body in bodies:
        for heading, line in verdicts(body):
            summary.append("- [%s](%s): %s" % (heading, anchor(heading or ""),
                                                line.lstrip("-* ")))
    runs = ", ".join("%s (%s, %s s, load %s)" % MARK.match(sections[n][0]).groups()
                     for n in names if n in sections)
    header = ("# Benchmark results\n\nMeasured by `make bench` (%s, %d cores, Python %s); "
              "`bench.run NAME` runs again only the benchmarks named and keeps the other "
              "sections. Every ratio compares commands measured in the same run; absolute "
              "times are for orientation only. Benchmarks (date, duration, load average when "
              "it started): %s.\n" % (platform.machine(), os.cpu_count(),
                                      platform.python_version(), runs))
    if summary:
        header += "\n## Targets at a glance\n\n" + "\n".join(summary) + "\n"
    with open(results_path, "w") as out:
        out.write(header + "\n" + "\n\n".join(
            "%s\n%s" % sections[n] for n in names if n in sections) + "\n")
    print(open(results_path).read())


if __name__ == "__main__":
    main(sys.argv[1:])
