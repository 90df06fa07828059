"""The one argument parser base of every check.

It adds the options every plugin shares (-t, -v, -V, -h), reads thresholds through
``osop_checks.units`` and, unlike plain argparse, answers a usage error with one UNKNOWN line
and exit 3: argparse's own exit 2 would read as CRITICAL in Icinga.
"""
import argparse
import re
import sys

from osop_checks import __version__, units

UNKNOWN = 3


class UsageError(Exception):
    """Options that parse one by one but not together; shown like an argparse error."""


class Parser(argparse.ArgumentParser):
    """ArgumentParser for a check named ``name`` (the status line's first word)."""

    def __init__(self, name, prog, description, examples=(), behind_the_scenes=None):
        epilog = ""
        if examples:
            epilog += "examples:\n" + "\n".join("  " + e for e in examples)
        if behind_the_scenes:
            epilog += "\n\nbehind the scenes:\n" + "\n".join(
                "  " + line for line in behind_the_scenes)
        super().__init__(
            prog=prog, description=description, epilog=epilog or None, add_help=False,
            allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter)
        self.check_name = name
        common = self.add_argument_group("common options")
        common.add_argument("-h", "--help", action="help",
                            help="show this help and exit (exit code 3, as Monitoring Plugins do)")
        common.add_argument("-V", "--version", action="version",
                            version="%s (osop-checks) %s" % (prog, __version__),
                            help="show the version and exit (exit code 3)")
        common.add_argument("-v", "--verbose", action="count", default=0,
                            help="more detail: -v warnings, -vv the commands and peers asked, "
                                 "-vvv debugging output and tracebacks")
        common.add_argument("-t", "--timeout", type=duration_type(minimum=1, maximum=86400),
                            default=30, metavar="DURATION",
                            help="give up after this long, UNKNOWN (default: 30s; "
                                 "e.g. 10, 45s, 2m); every command and connection obeys it")

    def error(self, message):
        sys.stdout.write("%s UNKNOWN - %s (see --help)\n" % (self.check_name, oneline(message)))
        sys.stdout.flush()
        sys.exit(UNKNOWN)

    def exit(self, status=0, message=None):
        # Only --help and --version end here without an error: like Monitoring Plugins they
        # exit UNKNOWN, so a CheckCommand that runs one by mistake never shows up as OK.
        if message:
            sys.stdout.write(message)
        sys.stdout.flush()
        sys.exit(UNKNOWN if status == 0 else status)

    def add_thresholds(self, quantity, warning=None, critical=None, lower_bound=False,
                       what="", metavar="RANGE", help=None, group=None):
        """Add -w/--warning and -c/--critical for one quantity to ``group`` (default: the
        parser); ``warning``/``critical`` are default range texts, ``help`` a pair of help
        texts (default: generated from ``what`` and the quantity's units)."""
        parse = range_type(quantity, lower_bound)
        if help is None:
            direction = ("alert below this (bare value N means N:)" if lower_bound
                         else "alert above this (Nagios range)")
            help = ["%s %s threshold, %s; units: %s%s" % (
                name, what, direction, quantity.examples,
                "" if default is None else " (default: %s)" % default)
                for name, default in (("warning", warning), ("critical", critical))]
        for flags, default, text in ((("-w", "--warning"), warning, help[0]),
                                     (("-c", "--critical"), critical, help[1])):
            (group or self).add_argument(
                *flags, type=parse, default=None if default is None else parse(default),
                metavar=metavar, help=text)


def oneline(text):
    return " ".join(str(text).split())


def range_type(quantity, lower_bound=False):
    """argparse type: a Nagios range with units, as a nagiosplugin.Range in base units."""
    def parse(text):
        try:
            return units.parse_range(text, quantity, lower_bound)
        except units.UnitError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = quantity.name
    return parse


def quantity_type(quantity, minimum=None, maximum=None):
    """argparse type: one value with units (``26h``, ``10GiB``) as a float in base units."""
    def parse(text):
        try:
            value = quantity.parse(text)
        except units.UnitError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError("%r is below the minimum %s" % (text, minimum))
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError("%r is above the maximum %s" % (text, maximum))
        return value
    parse.__name__ = quantity.name
    return parse


def duration_type(minimum=0, maximum=None):
    return quantity_type(units.DURATION, minimum, maximum)


def count_type(minimum=0, maximum=None):
    """argparse type: a whole number within bounds."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError("%r is not a whole number" % text) from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError("%r is outside %s..%s" % (
                text, minimum, "" if maximum is None else maximum))
        return value
    parse.__name__ = "number"
    return parse


def absolute_path(text):
    """argparse type: an absolute path. Icinga runs checks from an unknown working directory,
    so a relative path would point somewhere different each time."""
    if not text or not text.startswith("/") or "\0" in text:
        raise argparse.ArgumentTypeError("%r is not an absolute path" % text)
    return text


absolute_path.__name__ = "absolute path"


def regex_type(text):
    """argparse type: a compiled regular expression."""
    try:
        return re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError("%r is not a valid regular expression: %s"
                                         % (text, exc)) from None


regex_type.__name__ = "regular expression"


def read_secret(value=None, path=None, env=None, what="secret"):
    """A secret from a file (first line), an environment variable or, last, argv.

    Files and the environment keep secrets out of ``ps``; the value is never logged.
    """
    import os

    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.readline().rstrip("\r\n")
        except OSError as exc:
            raise UsageError("cannot read the %s file %s: %s" % (
                what, path, exc.strerror)) from None
    if env:
        if env not in os.environ:
            raise UsageError("environment variable %s for the %s is not set" % (env, what))
        return os.environ[env]
    return value
