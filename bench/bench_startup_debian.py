"""Start-up as users get it: the .deb installed in clean Debian 12 and 13 roots, Debian's python3.

This build machine's Python is not what a host runs: its dist-packages hold a .pth site hook
that imports certifi at every interpreter start, and the project's .venv adds an editable
finder; both raise the floor `python -c pass` and so flatter every "x floor" ratio. Here the
package is built from this checkout (`make deb`) and installed with apt into fresh copies of
the cached bookworm and trixie roots the package tests use (lab/peers/debian_root.py), and
every command runs inside the root (hyperfine copied in, run under chroot as nagios, as Icinga
runs a check): Debian's python3 and libraries, no site hook, .pyc files compiled by the
package's postinst. The same commands from this machine's venv are measured in the same run
for comparison.

Each check does a small real job in the root: disk_partitions on /, backup_age on a tree of
100 files, three_copies on two local copies of that tree, os_upgrades' repeat run (answered
from its cache, as most runs are; a first run is apt-get's own simulation, seconds), systemd_units
on systemd 252's recorded answers (a chroot has no systemd: a stand-in systemctl replays them,
its sh and cat counted with the check), tls_expiry's repeat run on an unchanged certificate file
(answered from its cache; the first run after a change imports cryptography), dyndns_match against
a DNS server that refuses (a network check, shown for comparison).

Hyperfine runs ROUNDS times over all the commands of one root (RUNS runs each, after a warm-up),
so a change in the load of this shared machine hits every command; means of wall and CPU time
(user+system) over all runs, each as a ratio to the floor measured in the same rounds.
Target (issue 29): every local check at most 4.5x the clean floor.

Run (as root): .venv/bin/python -m bench.bench_startup_debian   (prints a markdown section)
"""
import contextlib
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASES = (("bookworm", "Debian 12"), ("trixie", "Debian 13"))
# the packages of the roots the package tests install into (tests/integration/
# test_debian_package.py): their cached roots are reused
BASE_PACKAGES = ("icinga2-bin", "icinga2-common", "man-db")
PLUGINS = "/usr/lib/nagios/plugins"
TARGET = 4.5
# 6 rounds of 10 runs, not 3 of 20: the same runs, the commands interleaved twice as often,
# so a drift of this shared machine's speed within a round moves the ratios less.
RUNS = 10
ROUNDS = 6
WORK = "/tmp/bench"   # inside the root
FLOOR = "python3 -c pass (floor)"
BASE = "python3 -c 'import nagiosplugin, argparse'"

# (label, check, argv, local: judged against the target)
CASES = [
    ("check_disk_partitions -p /", "disk_partitions", ["-p", "/"], True),
    ("check_backup_age -p <100 files>", "backup_age", ["-p", WORK + "/backup"], True),
    ("check_three_copies (2 local copies of 100 files, one filesystem: CRITICAL by design)",
     "three_copies", ["--source", WORK + "/copies/source", "--copy",
                      "a=%s/copies/a" % WORK, "--copy", "b=%s/copies/b" % WORK,
                      "--min-copies", "2"], True),
    ("check_os_upgrades (repeat run, from its cache)", "os_upgrades",
     ["--cache-dir", WORK + "/cache"], True),
    ("check_systemd_units (systemd 252's recorded answers)", "systemd_units",
     ["--systemctl", WORK + "/systemctl"], True),
    ("check_tls_expiry --file <leaf + intermediate> (repeat run: the file unchanged, read "
     "from its cache)", "tls_expiry", ["--file", WORK + "/leaf.pem"], True),
    ("check_dyndns_match --server <refused> --expect", "dyndns_match",
     ["-H", "office.dyn.example", "--server", "127.0.0.1:9", "--expect", "192.0.2.1",
      "-t", "5"], False),
]


def build_deb(tmp):
    """The .deb of this checkout, built as the package tests build it."""
    proc = subprocess.run(["make", "-s", "deb", "DIST=%s/dist" % tmp,
                           "DEBBUILD=%s/build" % tmp], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError("make deb failed: " + (proc.stdout + proc.stderr)[-2000:])
    return glob.glob(os.path.join(tmp, "dist", "osop-checks_*_all.deb"))[0]


@contextlib.contextmanager
def installed_root(release, deb, dest):
    """A fresh copy of the cached ``release`` root with the .deb installed by apt (README's
    `apt-get install -y ./osop-checks_*_all.deb`), hyperfine copied in, /proc mounted."""
    from lab.peers import debian_root

    root = debian_root.fresh_copy(debian_root.apt_root(release, BASE_PACKAGES), dest)
    mounted = False
    try:
        # apt's downloads cached by the package tests, copied (not bind-mounted: a run of the
        # tests holds the shared directory's lock)
        archives = os.path.join(debian_root.CACHE, "apt-archives-" + release)
        for path in glob.glob(os.path.join(archives, "*.deb")):
            shutil.copy(path, os.path.join(root, "var/cache/apt/archives"))
        subprocess.run(["mount", "-t", "proc", "proc", os.path.join(root, "proc")], check=True)
        mounted = True
        shutil.copy(deb, os.path.join(root, "tmp"))
        proc = debian_root.chroot(root, "sh", "-ec",
                                  "cd /tmp && apt-get install -y ./osop-checks_*_all.deb",
                                  timeout=900)
        if proc.returncode != 0:
            raise RuntimeError("apt-get install in %s: %s" % (release, proc.stderr[-2000:]))
        shutil.copy(shutil.which("hyperfine"), os.path.join(root, "usr/local/bin"))
        yield root
    finally:
        if mounted:
            subprocess.run(["umount", "-l", os.path.join(root, "proc")], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def prepare(root):
    """The cases' files under /tmp/bench in the root, readable by nagios; os_upgrades' cache
    filled by a first run."""
    from lab.peers.tls import TestCA

    work = root + WORK
    os.makedirs(work)
    ca = TestCA(os.path.join(work, "ca"))
    shutil.copy(ca.issue("leaf", days=90).chain_path, os.path.join(work, "leaf.pem"))
    for d in range(10):
        os.makedirs(os.path.join(work, "backup", "d%02d" % d))
        for f in range(10):
            with open(os.path.join(work, "backup", "d%02d" % d, "f%02d" % f), "w") as handle:
                handle.write("x" * f)
    for tree in ("source", "a", "b"):
        shutil.copytree(os.path.join(work, "backup"), os.path.join(work, "copies", tree))
    shutil.copy(os.path.join(ROOT, "tests", "fixtures", "systemd",
                             "list-units_running_v252.json"), work)
    with open(os.path.join(work, "systemctl"), "w") as handle:
        handle.write("#!/bin/sh\ncase \"$*\" in\n"
                     "  *list-units*) exec cat %s/list-units_running_v252.json ;;\n"
                     "  *is-system-running*) echo running ;;\n"
                     "  *) exit 1 ;;\nesac\n" % WORK)
    os.chmod(os.path.join(work, "systemctl"), 0o755)
    os.makedirs(os.path.join(work, "cache"))
    subprocess.run(["chmod", "-R", "a+rX", work], check=True)
    subprocess.run(["chroot", root, "chown", "nagios:nagios", WORK + "/cache"], check=True)


BASELINE = os.environ.get("OSOP_BENCH_BASELINE")  # a commit whose checks run beside
BEFORE = "/opt/osop-checks-before"                   # its osop_checks, in the root


def commands():
    """label -> argv inside the root (with BASELINE, each local check from that commit too)."""
    found = {FLOOR: ["python3", "-c", "pass"],
             BASE: ["python3", "-c", "import nagiosplugin, argparse"]}
    for label, check, argv, local in CASES:
        found[label] = ["%s/check_%s" % (PLUGINS, check)] + argv
        if BASELINE and local:
            found[before(label)] = ["python3", "-c", "import sys; sys.path.insert(0, %r); "
                                    "from osop_checks.checks.%s import main; "
                                    "sys.argv[0] = 'check_%s'; sys.exit(main())"
                                    % (BEFORE, check, check)] + argv
    return found


def before(label):
    return "%s, from %s" % (label, BASELINE[:7])


def install_baseline(root):
    """BASELINE's osop_checks under BEFORE in the root, compiled as the package's are."""
    target = root + BEFORE
    os.makedirs(target)
    archive = subprocess.run(["git", "archive", BASELINE, "osop_checks"], cwd=ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", target], input=archive, check=True)
    subprocess.run(["chroot", root, "python3", "-m", "compileall", "-q", BEFORE], check=True,
                   env=CLEAN_ENV)
    subprocess.run(["chmod", "-R", "a+rX", target], check=True)


def quoted(argv):
    import shlex

    return " ".join(shlex.quote(a) for a in argv)


def hyperfine(prefix, cmds, runs, env=None, root="/"):
    """One hyperfine run over ``cmds`` (label -> argv) started through ``prefix`` (chroot
    ``root`` ...). label -> (wall times [s], mean CPU s, exit codes)."""
    names = list(cmds)
    with tempfile.NamedTemporaryFile(suffix=".json", dir=os.path.join(root, "tmp")) as export:
        os.chmod(export.name, 0o666)
        argv = list(prefix) + ["hyperfine", "-N", "--runs", str(runs), "--warmup", "3", "-i",
                               "--style", "none", "--export-json",
                               "/tmp/" + os.path.basename(export.name)]
        for name in names:
            argv += ["-n", name, quoted(cmds[name])]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800, env=env)
        if proc.returncode != 0:
            raise RuntimeError("hyperfine: " + proc.stderr[-2000:])
        data = json.load(open(export.name))
    return {name: (entry["times"], entry["user"] + entry["system"],
                   sorted(set(entry.get("exit_codes") or [])))
            for name, entry in zip(names, data["results"])}


def rounds(prefix, cmds, env=None, root="/"):
    """ROUNDS hyperfine runs: label -> {mean, cpu, ratios of each round, codes}."""
    per_round = [hyperfine(prefix, cmds, RUNS, env, root) for _ in range(ROUNDS)]
    results = {}
    for name in cmds:
        walls = [t for r in per_round for t in r[name][0]]
        cpus = [r[name][1] for r in per_round]
        results[name] = {"mean": statistics.mean(walls), "cpu": statistics.mean(cpus),
                         "codes": sorted({c for r in per_round for c in r[name][2]}),
                         "round_cpu_ratios": [r[name][1] / r[FLOOR][1] for r in per_round],
                         "runs": len(walls)}
    return results


def venv_commands():
    """The same commands from this machine's venv (sys.executable, its site hooks, this
    checkout first on the path), where they do not need the root's files: label -> argv."""
    python = sys.executable
    found = {FLOOR: [python, "-c", "pass"],
             BASE: [python, "-c", "import nagiosplugin, argparse"]}
    for label, check, argv, _local in CASES:
        if check in ("disk_partitions", "dyndns_match"):
            found[label] = [python, "-c", "import sys; from osop_checks.checks.%s import main; "
                            "sys.argv[0] = 'check_%s'; sys.exit(main())" % (check, check)] + argv
    return found


def import_profile(root, argv, repeat=5):
    """``python3 -X importtime`` of ``argv`` (a script and its arguments) in ``root``:
    [(module, median self ms, depth)] in importtime's order."""
    samples, order, depth = {}, [], {}
    for _ in range(repeat):
        proc = subprocess.run(["chroot", "--userspec=nagios:nagios", root, "python3", "-X",
                               "importtime"] + argv, capture_output=True, text=True,
                              env=CLEAN_ENV, timeout=120)
        for line in proc.stderr.splitlines():
            match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
            if match:
                name = match.group(4)
                if name not in samples:
                    order.append(name)
                samples.setdefault(name, []).append(int(match.group(1)) / 1000)
                depth[name] = len(match.group(3)) // 2
    return [(name, statistics.median(samples[name]), depth[name]) for name in order]


def grouped(root, argv, base):
    """{group: ms} of what ``argv`` imports beyond ``base`` (the modules `import nagiosplugin,
    argparse` loads) in ``root``, bench_startup's grouping: by the first module of the chain
    that is not ours. A module of the base counts nothing, whoever imports it first (the
    check's runtime imports logging before nagiosplugin does)."""
    from bench.bench_startup import chains

    lines = [(n, s if n not in base else 0.0, d) for n, s, d in import_profile(root, argv)]
    return {k: v for k, v in chains(lines).items() if v >= 0.05}


def commands_cpu(root, check, argv, repeat=9):
    """Median CPU ms of the commands ``check`` starts (find, sort, systemctl ...), counted in
    its CPU time: the check run in-process (runtime.execute) in ``root``, its children's
    rusage apart from its own."""
    code = ("import resource, sys; from osop_checks import runtime; "
            "from osop_checks.checks import %s as check; "
            "runtime.execute(check.NAME, check.build_parser, check.build_check, sys.argv[1:]); "
            "c = resource.getrusage(resource.RUSAGE_CHILDREN); "
            "print((c.ru_utime + c.ru_stime) * 1000)" % check)
    found = []
    for _ in range(repeat):
        proc = subprocess.run(["chroot", "--userspec=nagios:nagios", root, "python3", "-c",
                               code] + argv, capture_output=True, text=True, env=CLEAN_ENV,
                              timeout=120)
        found.append(float(proc.stdout.split()[-1]))
    return statistics.median(found)


CLEAN_ENV = {"PATH": "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8",
             "HOME": "/nonexistent"}


def measure_root(release, deb, tmp):
    with installed_root(release, deb, os.path.join(tmp, "root-" + release)) as root:
        prepare(root)
        if BASELINE:
            install_baseline(root)
        prefix = ["chroot", "--userspec=nagios:nagios", root]
        cmds = commands()
        outputs = {}
        for label, argv in cmds.items():  # the cache of os_upgrades, any .pyc still missing
            subprocess.run(prefix + argv, capture_output=True, env=CLEAN_ENV, timeout=300)
            outputs[label] = subprocess.run(prefix + argv, capture_output=True, text=True,
                                            env=CLEAN_ENV, timeout=300).stdout
        version = subprocess.run(prefix + ["python3", "-V"], capture_output=True, text=True,
                                 env=CLEAN_ENV).stdout.split()[-1]
        hooks = sorted(os.path.basename(p) for p in glob.glob(
            os.path.join(root, "usr/lib/python3/dist-packages/*.pth")))
        results = rounds(prefix, cmds, env=CLEAN_ENV, root=root)
        base = {n for n, _s, _d in import_profile(root, ["-c", "import nagiosplugin, argparse"])}
        evidence, children = {}, {}
        for label, check, argv, local in CASES:
            r = results[label]
            if local and r["cpu"] / results[FLOOR]["cpu"] > TARGET - 1:
                evidence[label] = grouped(root, ["%s/check_%s" % (PLUGINS, check)] + argv,
                                          base)
                children[label] = commands_cpu(root, check, argv)
        return {"results": results, "python": version, "hooks": hooks,
                "evidence": evidence, "children": children, "outputs": outputs}


def verdict(ratio):
    return "met" if ratio <= TARGET else "MISSED"


def main():
    from bench.common import compile_sources

    missing = [tool for tool in ("debootstrap", "hyperfine", "dpkg-buildpackage", "chroot")
               if not shutil.which(tool)]
    if os.geteuid() != 0 or missing:
        print("## Start-up where users get it: the .deb in clean Debian 12 and 13 roots\n")
        print("Not run: needs root (chroot, apt in the roots) and %s." % (
            ", ".join(missing) or "nothing more"))
        return
    compile_sources()
    measured, notes = {}, []
    with tempfile.TemporaryDirectory(prefix="osop-bench-debian-") as tmp:
        deb = build_deb(tmp)
        for release, name in RELEASES:
            try:
                measured[name] = measure_root(release, deb, tmp)
            except Exception as exc:  # a root that cannot be built here: say so, go on
                notes.append("%s: not measured: %s: %s" % (name, type(exc).__name__, exc))
        env = dict(os.environ, PYTHONPATH=ROOT)
        venv = rounds([], venv_commands(), env=env)
    report(measured, venv, notes)


def report(measured, venv, notes):
    print("## Start-up where users get it: the .deb in clean Debian 12 and 13 roots\n")
    print("The package built from this checkout (`make deb`) and installed with apt into fresh "
          "copies of the cached Debian roots (lab/peers/debian_root.py); every command run "
          "inside the root as nagios (chroot --userspec, hyperfine copied in): Debian's "
          "python3 and libraries, no site hook. %d hyperfine rounds of %d runs per command "
          "(after 3 warm-up runs), all commands of one root in each round; means over all "
          "runs; each ratio is to the floor `python3 -c pass` measured in the same rounds "
          "(the ratio's range over the rounds in brackets). Goal for the local checks "
          "(issue 29): at most %.1fx the clean floor (CPU), i.e. no more than one floor "
          "beyond nagiosplugin and argparse.\n" % (ROUNDS, RUNS, TARGET))
    names = list(measured)
    sources = []
    for name in names:
        m = measured[name]
        sources.append("%s root: Debian's python3 %s, .pth files in dist-packages: %s" % (
            name, m["python"], ", ".join(m["hooks"]) or "none"))
    sources.append("this machine's venv: %s (Python %s), its site hooks (a .pth importing "
                   "certifi, the editable finder) included; only the commands that need "
                   "no file of the roots" % (sys.executable, sys.version.split()[0]))
    print("Where each figure comes from:\n\n" + "\n".join("- " + s for s in sources) + "\n")
    header = "| command |"
    rule = "|---|"
    for name in names + ["this machine's venv"]:
        header += " %s: mean wall | CPU | CPU × floor |" % name
        rule += "---:|---:|---:|"
    header += " target ≤ %.1fx |" % TARGET
    rule += "---|"
    print(header)
    print(rule)
    labels = [FLOOR, BASE]
    for label, _check, _argv, is_local in CASES:
        labels.append(label)
        if BASELINE and is_local:
            labels.append(before(label))
    local = {c[0]: c[3] for c in CASES}
    for label in labels:
        row = "| %s |" % label
        judged = []
        for name, results in [(n, measured[n]["results"]) for n in names] + [
                ("this machine's venv", venv)]:
            r = results.get(label)
            if r is None:
                row += " | | |"
                continue
            floor = results[FLOOR]
            ratio = r["cpu"] / floor["cpu"]
            codes = "" if r["codes"] in ([0], []) else " (exit %s)" % ",".join(
                map(str, r["codes"]))
            spread = "" if label == FLOOR else " (%.2f–%.2f)" % (
                min(r["round_cpu_ratios"]), max(r["round_cpu_ratios"]))
            row += " %.1f ms%s | %.1f ms | **%.2f**%s |" % (
                r["mean"] * 1000, codes, r["cpu"] * 1000, ratio, spread)
            if name in measured and local.get(label):
                judged.append("%s %s" % (name.split()[-1], verdict(round(ratio, 2))))
        row += " %s |" % ("Debian " + ", ".join(judged) if judged else
                          ("(network check)" if label in local else
                           "(before this branch's changes)" if label not in (FLOOR, BASE)
                           else ""))
        print(row)
    print()
    for name in names:
        results = measured[name]["results"]
        floor = results[FLOOR]
        base = results[BASE]
        for label, _check, _argv, is_local in CASES:
            if not is_local:
                continue
            r = results[label]
            ratio = round(r["cpu"] / floor["cpu"], 2)
            beyond = (r["cpu"] - base["cpu"]) / floor["cpu"]
            line = ("- %s root, %s: %.2fx the clean floor's CPU (%.1f ms against %.1f ms; "
                    "wall %.2fx) (target ≤ %.1fx): %s; %.2f floors beyond nagiosplugin + "
                    "argparse (%.2fx), where the goal's own words allow one" % (
                        name, label, ratio, r["cpu"] * 1000, floor["cpu"] * 1000,
                        r["mean"] / floor["mean"], TARGET, verdict(ratio), beyond,
                        base["cpu"] / floor["cpu"]))
            groups = measured[name]["evidence"].get(label)
            if ratio > TARGET and groups:
                parts = sorted(((k, v) for k, v in groups.items()
                                if k not in ("nagiosplugin", "argparse")),
                               key=lambda kv: -kv[1])
                line += (". Why: nagiosplugin + argparse alone cost %.2fx; beyond them it "
                         "imports %s (importtime ms)" % (
                             base["cpu"] / floor["cpu"],
                             ", ".join("%s %.1f" % kv for kv in parts[:6])))
                spent = measured[name]["children"].get(label)
                if spent and spent >= 1:
                    line += "; the commands it starts take %.1f ms (%.2fx) of its CPU" % (
                        spent, spent / 1000 / floor["cpu"])
            print(line + ".")
    print()
    for name in names:
        groups = measured[name]["evidence"]
        if groups:
            print("Imports beyond nagiosplugin and argparse in the %s root (`python3 -X "
                  "importtime`, median self ms grouped by the first module of the chain that "
                  "is not ours; checks within one floor of the goal):\n" % name)
            print("| check run | imports beyond nagiosplugin, argparse | biggest parts (ms) |")
            print("|---|---:|---|")
            for label, parts in groups.items():
                top = sorted(parts.items(), key=lambda kv: -kv[1])[:8]
                print("| %s | %.1f ms | %s |" % (label, sum(parts.values()),
                                                ", ".join("%s %.1f" % kv for kv in top)))
            print()
    print("Earlier runs of this benchmark, before and after each round of start-up work, and "
          "what each round changed: [STARTUP-HISTORY.md](STARTUP-HISTORY.md) (written by "
          "hand; a new run of this benchmark rewrites only this section).\n")
    print("What each check said (the first line, in each root):\n")
    for label, _check, _argv, _local in CASES:
        for name in names:
            first = (measured[name]["outputs"].get(label) or "").split("\n")[0]
            print("- %s, %s: `%s`" % (name, label, first.split(" | ")[0][:160]))
    print()
    if notes:
        print("Notes: " + " ".join(notes) + "\n")


if __name__ == "__main__":
    main()
