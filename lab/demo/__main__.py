"""Run every demo scenario and print each check's real Nagios output.

A module's ``scenarios(stack)`` returns (title, argv) pairs, or (title, argv, prepare, wrap):
``prepare()`` is called just before the run (what happens between two runs: a night's sync,
a deletion), ``wrap`` a command that runs the check (a namespace, a shifted clock).
``python -m lab.demo practice three_copies`` runs only the modules named."""
import contextlib
import importlib
import shlex
import sys

from lab import demo
from lab.peers import run_plugin


def main(only=()):
    """Run the scenarios of every demo module, or of those named in ``only``."""
    failures = 0
    with contextlib.ExitStack() as stack:
        for name in demo.module_names():
            if only and name not in only:
                continue
            module = importlib.import_module("lab.demo." + name)
            try:
                scenarios = module.scenarios(stack)
            except Exception as exc:  # a peer that cannot start here: say so, go on
                print("== %s: skipped, %s\n" % (name, exc))
                continue
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
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
