"""Everything written from the checks' parsers, in one step: `make regen`.

- the --help blocks of README.md and docs/**/*.md (tests/readme.py);
- icinga2-conf/commands.conf, commands-api.conf and the Director basket
  icinga2-conf/director/osop-checks.json (icinga2-conf/generate.py);
- the graphs: icingaweb2-module-graphite templates icinga2-conf/graphite/ and Grafana
  dashboards icinga2-conf/grafana/ (icinga2-conf/graphs.py, from tests/perfdata-labels.txt);
- the example inventory, icinga2-conf/example/hosts.conf and zones.conf
  (icinga2-conf/example/generate_inventory.py).

``python -m tests.regen`` rewrites the files that differ from what the generators make of
the parsers today; ``--check`` only names them and exits 1. tests/test_regen.py holds the tree
to it: on a clean tree `make regen` leaves no diff.
"""
import argparse
import os
import sys

from lab.peers import icinga2
from tests import readme

ROOT = readme.ROOT


def docs():
    """{path: text} of README.md and docs/**/*.md with today's --help blocks."""
    result = {}
    for path in readme.files():
        with open(path, encoding="utf-8") as handle:
            result[path] = readme.render(handle.read())
    return result


def commands():
    """{path: text} of commands.conf, commands-api.conf and the Director basket."""
    generate = icinga2.generator()
    return {generate.OUTPUT: generate.render(), generate.API_OUTPUT: generate.render_api(),
            generate.DIRECTOR_OUTPUT: generate.render_basket()}


def graph_files():
    """{path: text} of the graph templates and dashboards."""
    return icinga2.graphs().outputs()


def example():
    """{path: text} of the example inventory."""
    inventory = icinga2.inventory()
    return {os.path.join(inventory.HERE, name): text
            for name, text in inventory.render().items()}


PARTS = {"docs": docs, "commands": commands, "graphs": graph_files, "example": example}


def outputs(parts=tuple(PARTS)):
    """{absolute path: text} of every generated file of ``parts`` as the generators make it
    now."""
    result = {}
    for part in parts:
        result.update(PARTS[part]())
    return result


def stale(generated=None):
    """The paths (relative to the repository) whose text is not what the generators make."""
    found = []
    for path, text in (outputs() if generated is None else generated).items():
        try:
            with open(path, encoding="utf-8") as handle:
                current = handle.read()
        except FileNotFoundError:
            current = None
        if current != text:
            found.append(os.path.relpath(path, ROOT))
    return found


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="only compare: name the files out of date and exit 1")
    args = ap.parse_args(argv)
    generated = outputs()
    changed = stale(generated)
    if args.check:
        for path in changed:
            print("%s is out of date: run make regen" % path)
        return 1 if changed else 0
    for path in changed:
        full = os.path.join(ROOT, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as handle:
            handle.write(generated[full])
        print("wrote %s" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
