"""`make bench`: run every bench/bench_*.py and write bench/RESULTS.md.

Each benchmark prints its own markdown section with medians and ratios measured in the same
run; a benchmark that cannot run here (a missing peer) says so in its section.
"""
import datetime
import os
import pkgutil
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main(selected=()):
    names = sorted(m.name for m in pkgutil.iter_modules([HERE]) if m.name.startswith("bench_"))
    if selected:
        names = [n for n in names if any(s in n for s in selected)]
    sections = []
    for name in names:
        print("running %s ..." % name, file=sys.stderr, flush=True)
        proc = subprocess.run([sys.executable, "-m", "bench." + name], capture_output=True,
                              text=True, cwd=os.path.dirname(HERE), timeout=3600)
        body = proc.stdout.strip() or "## %s\n\n(no output)" % name
        if proc.returncode != 0:
            body += "\n\n%s did not finish: exit %d\n\n```\n%s\n```" % (
                name, proc.returncode, proc.stderr.strip()[-2000:])
        sections.append(body)
    header = ("# Benchmark results\n\nMeasured by `make bench` on %s (%s, %d cores, Python %s). "
              "Every ratio compares commands measured in the same run; absolute times are for "
              "orientation only.\n" % (datetime.date.today(), platform.machine(), os.cpu_count(),
                                       platform.python_version()))
    with open(os.path.join(HERE, "RESULTS.md"), "w") as out:
        out.write(header + "\n" + "\n\n".join(sections) + "\n")
    print(open(os.path.join(HERE, "RESULTS.md")).read())


if __name__ == "__main__":
    main(sys.argv[1:])
