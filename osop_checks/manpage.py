"""Man pages of the checks (and of osop-checks-api), made from the same parsers as their --help
(never written twice).

``python3 -m osop_checks.manpage DIR`` writes DIR/<program>.1 for every one; `make man`
and the Debian package build (debian/rules) run it. Not imported by the checks themselves.
"""
import importlib
import os
import pkgutil
import re
import sys

from osop_checks import __version__, cli

EXIT_STATUS = (("0", "OK"), ("1", "WARNING"), ("2", "CRITICAL"),
               ("3", "UNKNOWN: bad arguments, missing permissions or tools, an unreachable "
                     "peer, a timeout; also after --help and --version"))


def _escape(text):
    """Plain text as troff: backslashes and hyphens escaped, no line read as a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return re.sub(r"^([.'])", r"\\&\1", text, flags=re.M)


def _paragraph(text):
    return _escape(" ".join(text.split()))


def _options(parser):
    formatter = cli.HelpFormatter(parser.prog)
    lines = []
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if a.help is not None and
                   a.help != "==SUPPRESS=="]
        if not actions:
            continue
        lines.append(".SS %s" % _escape(group.title.upper() if group.title else "OPTIONS"))
        if group.description:
            lines += [".PP", _paragraph(group.description)]
        for action in actions:
            invocation = formatter._format_action_invocation(action)
            lines += [".TP", ".B %s" % _escape(invocation), _paragraph(
                formatter._expand_help(action))]
    return lines


def _section(title, entries):
    if not entries:
        return []
    lines = [".SH %s" % title]
    for entry in entries:
        lines += [".PP", ".nf", _escape(entry), ".fi"]
    return lines


def render(parser, section="1"):
    """The man page (troff, man macros) of the check whose parser is ``parser``."""
    prog = parser.prog
    summary = parser.description.split(": ")[0].split(". ")[0].rstrip(".")
    usage = cli.help_text(parser).split("\n\n")[0]
    usage = re.sub(r"\n {7}", "\n", re.sub(r"^usage: ", "", usage))
    lines = [
        '.TH %s %s "" "osop-checks %s" "Monitoring plugins"' % (prog.upper(), section,
                                                               __version__),
        ".SH NAME", "%s \\- %s" % (prog, _escape(summary[0].lower() + summary[1:])),
        ".SH SYNOPSIS", ".nf", _escape(usage), ".fi",
        ".SH DESCRIPTION", _paragraph(parser.description),
        ".SH OPTIONS",
    ]
    lines += _options(parser)
    lines += _section("EXAMPLES", getattr(parser, "examples", ()))
    lines += _section("BEHIND THE SCENES", getattr(parser, "behind_the_scenes", ()))
    if hasattr(parser, "check_name"):  # a check (cli.Parser): the plugin contract
        lines.append(".SH EXIT STATUS")
        for code, meaning in EXIT_STATUS:
            lines += [".TP", ".B %s" % code, _escape(meaning)]
        lines += [
            ".SH OUTPUT",
            "One status line, \\fINAME STATE \\- summary | perfdata\\fR, as Nagios and Icinga "
            "read it; \\-v adds detail lines.",
        ]
    lines += [
        ".SH SEE ALSO",
        "The pages in /usr/share/doc/osop\\-checks/ and the Icinga 2 commands in "
        "/usr/share/icinga2/include/plugins\\-contrib.d/osop\\-checks.conf.",
    ]
    return "\n".join(lines) + "\n"


def parsers():
    """(program name, parser) of every check, in name order, then of osop-checks-api."""
    from osop_checks import checks

    names = ["osop_checks.checks." + info.name for info in sorted(
        pkgutil.iter_modules(checks.__path__), key=lambda i: i.name)]
    for name in names + ["osop_checks.api.daemon"]:
        parser = importlib.import_module(name).build_parser()
        yield parser.prog, parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python3 -m osop_checks.manpage DIRECTORY", file=sys.stderr)
        return 2
    os.makedirs(argv[0], exist_ok=True)
    for prog, parser in parsers():
        with open(os.path.join(argv[0], prog + ".1"), "w") as handle:
            handle.write(render(parser))
    return 0


if __name__ == "__main__":
    sys.exit(main())
