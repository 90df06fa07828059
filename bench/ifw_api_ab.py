"""The daemon's own CPU per request, this checkout against an earlier commit, in one run.

CPU figures of two bench_ifw_api runs days apart are not comparable on this shared VM (the
forked path's figure moved by a third between two runs of unchanged code). This measures the
daemon alone, both versions side by side: two osop-checks-api daemons (ECDSA P-256 keys, 2
workers each, both as the unprivileged user the lab's daemons run as, same interpreter), one
from this checkout with the policy bench_ifw_api gives it, one from ``git archive COMMIT``
started with that commit's options; the same client (a new TLS context and connection per
call, as Icinga's IfwApiCheckTask) sends the two jobs of bench_ifw_api to each in interleaved
batches. CPU per request of each daemon's parent (TLS, HTTP, admission, policy) and of its
workers (the check), from /proc.

Run (as root, not part of `make bench`):
    .venv/bin/python -m bench.ifw_api_ab COMMIT [ROUNDS]   (prints a markdown table)
"""
import contextlib
import os
import subprocess
import sys
import tempfile

from bench.common import compile_sources

BATCH = 25       # requests per job and daemon in a row
ROUNDS = 8


def baseline_daemon_class():
    from lab.peers import ifw_api

    class Baseline(ifw_api.ApiDaemon):
        """A daemon from an exported earlier tree ``source``, with the options it knew."""

        source = None

        def command(self, listen=True):
            files = {name: self.path(name) for name in self.sources}
            return ([self.python, "-m", "osop_checks.api.daemon",
                     "--listen", "127.0.0.1:%d" % self.port, "--node", self.node,
                     "--workers", str(self.workers_asked)]
                    + [part for name in sorted(files) for part in ("--" + name, files[name])]
                    + self.extra)

        def popen_options(self):
            options = super().popen_options()
            options["env"] = dict(options["env"], PYTHONPATH=self.source)
            options["cwd"] = self.source
            return options

    return Baseline


def export(commit, directory):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    archive = subprocess.run(["git", "archive", commit, "osop_checks"], cwd=root, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", directory], input=archive, check=True)
    subprocess.run(["chmod", "-R", "a+rX", directory], check=True)
    subprocess.run([sys.executable, "-m", "compileall", "-q", directory], check=True)


def main(commit, rounds=ROUNDS):
    from bench.bench_ifw_api import jobs
    from lab.peers import ifw_api

    compile_sources()
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="ifwab-"))
        os.chmod(tmp, 0o755)
        job_list = jobs(stack, tmp)
        policy = ifw_api.policy_allowing([(c, a) for _k, _t, c, a, *_ in job_list])
        pki = ifw_api.api_pki(os.path.join(tmp, "pki"))
        subprocess.run(["chmod", "-R", "a+rX", tmp], check=True)
        source = os.path.join(tmp, "baseline")
        os.makedirs(source)
        export(commit, source)
        Baseline = baseline_daemon_class()
        Baseline.source = source
        extra = ["--max-jobs", "100000"]
        daemons = {"before (%s)" % commit[:7]: stack.enter_context(
                       Baseline(pki, workers=2, extra=extra, policy=None)),
                   "now": stack.enter_context(
                       ifw_api.ApiDaemon(pki, workers=2, extra=extra, policy=policy))}
        bodies = [("check_" + check, ifw_api.icinga_body(check, argv))
                  for _k, _t, check, argv, _i, _v in job_list]
        totals = {(d, c): [0.0, 0.0, 0, 0] for d in daemons for c, _b in bodies}
        for daemon in daemons.values():  # warm-up: the workers' first imports
            for command, body in bodies:
                daemon.call(command, body)
        for _ in range(rounds):
            for name, daemon in daemons.items():
                for command, body in bodies:
                    parent0, whole0 = daemon.cpu_seconds()
                    failed = 0
                    for _ in range(BATCH):
                        status, answer = daemon.call(command, body)
                        if status != 200 or answer[command]["exitcode"] != 0:
                            failed += 1
                    parent1, whole1 = daemon.cpu_seconds()
                    entry = totals[(name, command)]
                    entry[0] += parent1 - parent0
                    entry[1] += (whole1 - parent1) - (whole0 - parent0)
                    entry[2] += BATCH
                    entry[3] += failed
    report(daemons, bodies, totals, rounds)


def report(daemons, bodies, totals, rounds):
    names = list(daemons)
    print("| check | daemon | requests (not OK) | parent CPU / request | workers CPU / request "
          "| daemon CPU / request | × before |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for command, _body in bodies:
        base = None
        for name in names:
            parent, workers, count, failed = totals[(name, command)]
            whole = (parent + workers) / count * 1000
            base = whole if base is None else base
            print("| %s | %s | %d (%d) | %.2f ms | %.2f ms | %.2f ms | %.2f |" % (
                command, name, count, failed, parent / count * 1000, workers / count * 1000,
                whole, whole / base))
    print("\n%d interleaved rounds of %d requests per job and daemon." % (rounds, BATCH))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else ROUNDS)
