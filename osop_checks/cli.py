"""The one argument parser base of every check.

It adds the options every plugin shares (-t, -v, -V, -h), reads thresholds through
``osop_checks.units`` and, unlike plain argparse, answers a usage error with one UNKNOWN line
and exit 3: argparse's own exit 2 would read as CRITICAL in Icinga.
"""
import argparse
import os
import re
import sys

import nagiosplugin

from osop_checks import __version__, units
from osop_checks.text import oneline

UNKNOWN = 3


# The kind of value each option takes, given as ``kind=`` to every add_argument of a check's
# parser (and its groups). osop-checks-api (osop_checks.api.policy) decides from it what a
# network caller may set: PLAIN freely (thresholds, selections, time limits, verbosity);
# PATH, HOST, URL and PORT only within what the host's api.conf allows for that check;
# FILE_READ only the files api.conf lists; PROGRAM, FILE_WRITTEN and SECRET never.
PLAIN = "plain"
PATH = "path"            # a place the check looks at (statvfs, a directory walked): not its content
HOST = "host"            # a host or address the check connects to (with a port, an endpoint)
URL = "url"              # a URL the check fetches
PORT = "port"            # a port number the check connects to
FILE_READ = "file read"  # a file whose content the check reads
FILE_WRITTEN = "file written"  # a file or directory the check writes (state, cache)
PROGRAM = "program"      # an executable the check runs
SECRET = "secret"        # a password, key or community given on the command line
KINDS = (PLAIN, PATH, HOST, URL, PORT, FILE_READ, FILE_WRITTEN, PROGRAM, SECRET)


def _with_kind(action_class):
    """``action_class`` that also takes ``kind=`` (one of KINDS) and keeps it as action.kind."""
    def build(*, kind=None, **kwargs):
        if kind is not None and kind not in KINDS:
            raise ValueError("unknown kind of option value %r" % (kind,))
        action = action_class(**kwargs)
        action.kind = kind
        return action
    return build


class UsageError(Exception):
    """Options that parse one by one but not together; shown like an argparse error."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's layout with the same text on every supported Python: an option that takes a
    value shows it after each of its names (``-t DURATION, --timeout DURATION``), as Python up
    to 3.12 prints it; 3.13 shortened that to ``-t, --timeout DURATION``. The usage keeps a
    group of options on one line, as up to 3.12."""

    def _format_action_invocation(self, action):
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        value = self._format_args(action, self._get_default_metavar_for_optional(action))
        return ", ".join("%s %s" % (option, value) for option in action.option_strings)

    def _get_actions_usage_parts(self, actions, groups):
        """Python 3.13 wraps a long usage between the members of a group (``[-4 |`` and
        ``-6]`` on two lines); up to 3.12 a group is one part, kept on one line. Only 3.13
        calls this: it joins each group's parts into one again."""
        whole, pending, depth = [], [], 0
        for part in super()._get_actions_usage_parts(actions, groups):
            pending.append(part)
            depth += part.count("[") + part.count("(") - part.count("]") - part.count(")")
            if depth <= 0:
                whole.append(" ".join(pending))
                pending, depth = [], 0
        return whole + ([" ".join(pending)] if pending else [])


DOC_WIDTH = 98  # the help in README/docs and man pages: what a 100-column terminal shows


def help_text(parser, width=DOC_WIDTH):
    """``parser``'s --help at a fixed ``width``, whatever the terminal: for docs and man pages."""
    saved = parser.formatter_class
    parser.formatter_class = lambda prog: saved(prog, width=width)
    try:
        return parser.format_help()
    finally:
        parser.formatter_class = saved


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
            allow_abbrev=False, formatter_class=HelpFormatter)
        # every action of the parser and of its groups (they share the registry) takes kind=
        for action_name, action_class in list(self._registries["action"].items()):
            self.register("action", action_name, _with_kind(action_class))
        self.check_name = name
        self.examples, self.behind_the_scenes = list(examples), list(behind_the_scenes or ())
        self.threshold_pairs = []
        common = self.add_argument_group("common options")
        common.add_argument("-h", "--help", action="help", kind=PLAIN,
                            help="show this help and exit (exit code 3, as Monitoring Plugins do)")
        common.add_argument("-V", "--version", action="version", kind=PLAIN,
                            version="%s (osop-checks) %s" % (prog, __version__),
                            help="show the version and exit (exit code 3)")
        common.add_argument("-v", "--verbose", action="count", default=0, kind=PLAIN,
                            help="more detail: -v warnings, -vv the commands and peers asked, "
                                 "-vvv debugging output and tracebacks")
        common.add_argument("-t", "--timeout", type=duration_type(minimum=1, maximum=86400),
                            default=30, kind=PLAIN, metavar="DURATION",
                            help="give up after this long, UNKNOWN (default: 30s; "
                                 "e.g. 10, 45s, 2m); every command and connection obeys it")

    def parse_args(self, args=None, namespace=None):
        parsed = super().parse_args(args, namespace)
        self.check_threshold_pairs(parsed)
        return parsed

    def add_threshold_pair(self, warning, critical, quantity=units.COUNT, never_fires=None):
        """Declare the options ``warning`` and ``critical`` (e.g. "--missing-warning") one
        warning/critical pair of ``quantity``. After parsing, a warning that can never fire,
        because every value it alerts on is critical already (-w 50h -c 26h), is a usage
        error; ``never_fires(warning, critical)`` decides (default: units.never_fires)."""
        self.threshold_pairs.append((warning, critical, quantity, never_fires or (
            lambda w, c: units.never_fires(w, c, quantity))))

    def check_threshold_pairs(self, parsed):
        for warning, critical, quantity, never_fires in self.threshold_pairs:
            shown, given = [], []
            for flag in (warning, critical):
                action = self._option_string_actions[flag]
                value = getattr(parsed, action.dest)
                text = (units.range_text(value, quantity) if hasattr(value, "invert")
                        else getattr(value, "written", value))
                given.append(value is not action.default)
                shown.append((value, "%s %s%s" % ("/".join(action.option_strings), text,
                                                  "" if given[-1] else " (default)")))
            (w, w_text), (c, c_text) = shown
            # A warning the admin wrote must be able to fire (--differing-warning 3 beside the
            # default critical 0 cannot). Moving only the critical past the default warning
            # (-c 30d alone) is fine: the default warning stage then never fires.
            if given[0] and w is not None and c is not None and never_fires(w, c):
                self.error("%s can never fire: every value it warns about is critical by "
                           "%s already" % (w_text, c_text))

    def error(self, message):
        sys.stdout.write("%s UNKNOWN - %s (see --help)\n" % (self.check_name,
                                                               oneline(message, limit=400)))
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
                metavar=metavar, help=text, kind=PLAIN)
        self.add_threshold_pair("--warning", "--critical", quantity)


def as_given(flag, values):
    """Options as a user would type them, for a message: ``-e '.*' -e foo``. ``values`` are
    strings or compiled regular expressions."""
    import shlex

    return " ".join("%s %s" % (flag, shlex.quote(oneline(getattr(v, "pattern", v), limit=400)))
                    for v in values)


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


def absolute_path(value):
    """argparse type: an absolute path, normalised. Icinga runs checks from an unknown working
    directory, so a relative path would point somewhere different each time."""
    if not value or not value.startswith("/") or "\0" in value:
        raise argparse.ArgumentTypeError(
            "%r is not an absolute path (a check runs from an unknown directory)" % value)
    return os.path.normpath(value)


absolute_path.__name__ = "absolute path"


def regex_type(text):
    """argparse type: a compiled regular expression."""
    try:
        return re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError("%r is not a valid regular expression: %s"
                                         % (text, exc)) from None


regex_type.__name__ = "regular expression"


def value_type(parse, name):
    """An argparse type from ``parse`` (text -> value, ValueError in words), called ``name``
    in argparse's messages."""
    def convert(text):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = name
    return convert


# -- states: the one vocabulary of every option that chooses the state of a finding -------

STATE = "STATE"  # the metavar of every such option
STATES = {"ok": nagiosplugin.Ok, "warning": nagiosplugin.Warn,
          "critical": nagiosplugin.Critical, "unknown": nagiosplugin.Unknown}
# Older spellings, still read: os_upgrades' warn/crit, tls_expiry's warn/crit/ignore.
STATE_ALIASES = {"warn": "warning", "crit": "critical", "ignore": "ok"}


def parse_state(text, allowed=("ok", "warning", "critical")):
    """The nagiosplugin state named ``text`` (any case), one of ``allowed`` (names of STATES)
    or an older spelling of one (STATE_ALIASES); ValueError naming what is allowed."""
    name = str(text).lower()
    name = STATE_ALIASES.get(name, name)
    if name not in allowed:
        aliases = [alias for alias, meant in STATE_ALIASES.items() if meant in allowed]
        raise ValueError("%r is not one of %s%s" % (
            text, ", ".join(allowed), " (or %s)" % ", ".join(aliases) if aliases else ""))
    return STATES[name]


def state_type(allowed=("ok", "warning", "critical")):
    """argparse type: a state of ``allowed`` by its name (parse_state); its ``allowed``
    say which, for state_help."""
    def parse(text):
        return parse_state(text, allowed)

    convert = value_type(parse, "state")
    convert.allowed = tuple(allowed)
    return convert


def state_help(what, states, default):
    """The help of an option of type ``states`` (a state_type): "``what``: ok, warning or
    critical (default: ``default``)", the same words for every such option."""
    names = list(states.allowed)
    return "%s: %s (default: %s)" % (what, " or ".join(
        [", ".join(names[:-1]), names[-1]] if len(names) > 1 else names), default)


def add_state_option(group, flag, what, default, allowed=("ok", "warning", "critical"),
                     shown_default=None, more=""):
    """One option that chooses the state of a finding: ``flag`` takes a state of ``allowed``
    (state_type), ``default`` by name; its help is state_help's words for ``what``
    (``shown_default`` where the default needs more words), then ``more``."""
    states = state_type(allowed)
    return group.add_argument(flag, kind=PLAIN, type=states, default=default, metavar=STATE,
                              help=state_help(what, states, shown_default or default) + more)


# argparse types of the one address parser (osop_checks.address): a host (no brackets), an
# address.Endpoint from HOST[:PORT] / [IPV6]:PORT, an address.Remote from /path,
# [user@]host:/path or ssh://[user@]host[:port]/path. The parser (and the socket module it
# brings) is imported when a value is parsed: a check with no host option does not pay for it.
def _parse_host(text):
    from osop_checks import address

    return address.parse_host(text)


def _parse_remote_path(text):
    from osop_checks import address

    return address.parse_remote_path(text)


def parse_url(value):
    """An http:// or https:// URL with a host, as given; ValueError in words otherwise."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(str(value))
    except ValueError:  # "Invalid IPv6 URL": argparse's own words, as before
        raise ValueError("invalid URL value: %r" % (value,)) from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("%r is not an http:// or https:// URL" % value)
    return str(value)


url_type = value_type(parse_url, "URL")
host_type = value_type(_parse_host, "host")
remote_path_type = value_type(_parse_remote_path, "location")


def endpoint_type(default_port):
    """argparse type: an address.Endpoint, ``default_port`` where none is given."""
    def parse(text):
        from osop_checks import address

        return address.parse_endpoint(text, default_port)

    return value_type(parse, "endpoint")


FAMILY_HELP = {4: "use IPv4 addresses only (the name's A records)",
               6: "use IPv6 addresses only (the name's AAAA records)"}


def add_family_options(parser_or_group):
    """-4/--ipv4 and -6/--ipv6, mutually exclusive, into ``dest="family"`` (None, 4 or 6):
    the same options and words in every network check (address.check_family and
    address.resolve take the value). Declared here, not in osop_checks.address: a check
    offers them without importing the address parser (and socket, ipaddress) at start."""
    family = parser_or_group.add_mutually_exclusive_group()
    # a switch, plain for osop-checks-api's policy
    family.add_argument("-4", "--ipv4", dest="family", action="store_const", const=4,
                        default=None, kind=PLAIN, help=FAMILY_HELP[4])
    family.add_argument("-6", "--ipv6", dest="family", action="store_const", const=6,
                        kind=PLAIN, help=FAMILY_HELP[6])
    return family


SECRET_LIMIT = 64 * 1024  # bytes of a secret file (a password, a community: a line)


# Every secret read (SNMP community, keys): runtime.execute scrubs them from tracebacks, an
# internal error's line and log lines, whatever library put them there.
SECRETS = set()
HIDDEN = "<secret>"


def scrub(line):
    """``line`` with every secret read so far (and its bytes repr) replaced by <secret>."""
    for secret in SECRETS:
        if secret in line:
            line = line.replace(secret, HIDDEN)
    return line


def read_secret(value=None, path=None, env=None, what="secret"):
    """A secret from a file (first line), an environment variable or, last, argv.

    Files and the environment keep secrets out of ``ps``; the value is never logged, and
    runtime scrubs it from every traceback and log line (SECRETS).
    """
    secret = _read_secret(value, path, env, what)
    if secret:
        SECRETS.add(secret)
        escaped = repr(secret.encode("utf-8", "replace"))[2:-1]
        if escaped != secret:
            SECRETS.add(escaped)
    return secret


def _read_secret(value, path, env, what):
    import os

    from osop_checks import bounded

    if path:
        try:
            return bounded.read_text(path, SECRET_LIMIT).split("\n", 1)[0].rstrip("\r")
        except OSError as exc:
            raise UsageError("cannot read the %s file %s: %s" % (
                what, path, exc.strerror)) from None
    if env:
        if env not in os.environ:
            raise UsageError("environment variable %s for the %s is not set" % (env, what))
        return os.environ[env]
    return value
