"""Run every demo scenario and print each check's real Nagios output."""
import contextlib
import importlib
import pkgutil
import sys

from tests import demo
from tests.peers import run_plugin


def main():
    failures = 0
    with contextlib.ExitStack() as stack:
        for info in sorted(pkgutil.iter_modules(demo.__path__), key=lambda i: i.name):
            if info.name.startswith("_"):
                continue
            module = importlib.import_module("tests.demo." + info.name)
            try:
                scenarios = module.scenarios(stack)
            except Exception as exc:  # a peer that cannot start here: say so, go on
                print("== %s: skipped, %s\n" % (info.name, exc))
                continue
            for title, argv in scenarios:
                print("== %s\n$ %s" % (title, " ".join(argv)))
                outcome = run_plugin(argv[0], argv[1:])
                print(outcome.output.rstrip())
                print("(exit %d)\n" % outcome.exitcode)
                sys.stdout.flush()
                if outcome.exitcode not in (0, 1, 2, 3) or "Traceback" in outcome.output:
                    failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
