"""Keep each check's --help in README.md identical to the real one.

`python -m tests.readme` rewrites every block between `<!-- HELP check_x -->` and
`<!-- /HELP -->` with the output of that check's --help; tests/test_readme.py fails when a
block is stale, so an option cannot change without reaching the README.
"""
import importlib
import io
import contextlib
import os
import re
import sys

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
BLOCK = re.compile(r"(<!-- HELP (check_\w+) -->\n)(.*?)(<!-- /HELP -->)", re.S)


def help_text(check):
    module = importlib.import_module("osop_checks.checks." + check[len("check_"):])
    parser = module.build_parser()
    out = io.StringIO()
    os.environ["COLUMNS"] = "100"
    parser.formatter_class.max_help_position = 30
    with contextlib.redirect_stdout(out):
        parser.print_help()
    return "```text\n" + out.getvalue().rstrip() + "\n```\n"


def render(text):
    return BLOCK.sub(lambda m: m.group(1) + help_text(m.group(2)) + m.group(4), text)


def main():
    text = open(README).read()
    new = render(text)
    if new != text:
        open(README, "w").write(new)
        print("README.md: --help blocks updated")


if __name__ == "__main__":
    sys.exit(main())
