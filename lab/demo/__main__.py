"""Run every demo scenario and print each check's real Nagios output.

A module's ``scenarios(stack)`` returns (title, argv) pairs, or (title, argv, prepare, wrap):
``prepare()`` is called just before the run (what happens between two runs: a night's sync,
a deletion), ``wrap`` a command that runs the check (a namespace, a shifted clock).
The modules of demo.LAST (icinga2) take a second argument: what the others returned, their
peers still up, so Icinga watches the same peers and no group starts twice.
``python -m lab.demo practice three_copies`` runs only the modules named.
A group that cannot start here fails the demo (exit 1), named in the last line."""
import contextlib
import importlib
import shlex
import sys

from lab import demo
from lab.peers import run_plugin


def main(only=()):
    """Run the scenarios of every demo module, or of those named in ``only``; 0 when every
    group started and every run answered as a plugin does."""
    failures = 0
    started = {}  # module name: its scenarios, or the exception its start raised
    with contextlib.ExitStack() as stack:
        for name in demo.module_names():
            if only and name not in only:
                continue
            module = importlib.import_module("lab.demo." + name)
            try:
                if name in demo.LAST:
                    scenarios = module.scenarios(stack, started)
                else:
                    scenarios = module.scenarios(stack)
            except Exception as exc:  # a peer that cannot start here: say so, go on
                print("== %s: FAILED to start: %s\n" % (name, exc))
                started[name] = exc
                continue
            started[name] = scenarios
            for scenario in scenarios:
                title, argv, prepare, wrap = (tuple(scenario) + (None, ())[len(scenario) - 2:])[:4]
                if prepare:
                    prepare()
                print("== %s\n$ %s" % (title, " ".join([shlex.quote(w) for w in wrap] + argv)))
                outcome = run_plugin(argv[0], argv[1:], wrap=wrap)
                print(outcome.output.rstrip())
                print("(exit %d)\n" % outcome.exitcode)
                sys.stdout.flush()
                if outcome.exitcode not in (0, 1, 2, 3) or "Traceback" in outcome.output:
                    failures += 1
    broken = sorted(name for name, got in started.items() if isinstance(got, Exception))
    if broken:
        print("make demo FAILED: %s did not start (see above)" % ", ".join(broken))
    elif failures:
        print("make demo FAILED: %d run%s did not answer as a plugin does" % (
            failures, "" if failures == 1 else "s"))
    return 1 if failures or broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
