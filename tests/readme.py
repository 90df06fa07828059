"""Keep each check's --help in its page (docs/checks/<name>.md) identical to the real one.

`python -m tests.readme` (or `make regen`, with the other generated files) rewrites every block
between `<!-- HELP check_x -->` and `<!-- /HELP -->` in README.md and docs/**/*.md with the
output of that check's --help (cli.help_text: the same text on every supported Python);
tests/test_regen.py fails when a block is stale, so an option cannot change without reaching
the docs. ``section(name)`` is the text between `<!-- BEGIN name -->` and `<!-- END name -->`
wherever it lives now.
"""
import glob
import importlib
import os
import re
import sys

from osop_checks import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
DOCS = os.path.join(ROOT, "docs")
BLOCK = re.compile(r"(<!-- HELP (check_\w+) -->\n)(.*?)(<!-- /HELP -->)", re.S)


def help_text(check):
    module = importlib.import_module("osop_checks.checks." + check[len("check_"):])
    return "```text\n" + cli.help_text(module.build_parser()).rstrip() + "\n```\n"


def render(text):
    return BLOCK.sub(lambda m: m.group(1) + help_text(m.group(2)) + m.group(4), text)


def files():
    """README.md and every page under docs/."""
    return [README] + sorted(glob.glob(os.path.join(DOCS, "**", "*.md"), recursive=True))


def check_page(check):
    """docs/checks/<name>.md of ``check`` (check_<name>)."""
    return os.path.join(DOCS, "checks", check[len("check_"):] + ".md")


def section(name):
    """The text between `<!-- BEGIN name -->` and `<!-- END name -->`, in whichever file."""
    for path in files():
        text = open(path).read()
        start, end = "<!-- BEGIN %s -->" % name, "<!-- END %s -->" % name
        if start in text:
            return text[text.index(start):text.index(end)]
    raise LookupError("no section %s in README.md or docs/" % name)


def main():
    for path in files():
        text = open(path).read()
        new = render(text)
        if new != text:
            open(path, "w").write(new)
            print("%s: --help blocks updated" % os.path.relpath(path, ROOT))


def shell_block(name, text=None):
    """The commands of the ```sh block between `<!-- BEGIN name -->` and `<!-- END name -->`,
    as written (tests run them verbatim)."""
    text = open(README).read() if text is None else text
    match = re.search(r"<!-- BEGIN %s -->\n```sh\n(.*?)```\n<!-- END %s -->"
                      % (re.escape(name), re.escape(name)), text, re.S)
    if not match:
        raise LookupError("README.md has no sh block %s" % name)
    return match.group(1)


if __name__ == "__main__":
    sys.exit(main())
