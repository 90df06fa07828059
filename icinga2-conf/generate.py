#!/usr/bin/env python3
"""Write icinga2-conf/commands.conf from the checks' own argument parsers.

One ``object CheckCommand "osop_<name>"`` per check module osop_checks.checks.<name> that
exists (found through setup.cfg's console scripts and the package itself; a check whose module
is not there yet is skipped), in the style of the Icinga Template Library:

- ``command = [ OsopPluginDir + "/check_<name>" ]``; OsopPluginDir defaults to PluginDir;
- every option is an argument keyed by its long flag, ``value = "$<name>_<option>$"`` (the
  option's argparse dest), its ``description`` the option's --help text;
- switches (store_true, count, store_const) use ``set_if``; repeatable options
  (action="append") use ``repeat_key = true``; thresholds come first (``order = -2``);
- ``--timeout`` takes ``vars.<name>_timeout``, which defaults to Icinga's own check timeout
  minus a margin, so the plugin answers in words before Icinga kills it.

Run it after changing a parser:  .venv/bin/python icinga2-conf/generate.py
tests/test_icinga2_commands.py fails while commands.conf is out of date.
"""
import argparse
import configparser
import importlib
import os
import pkgutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUTPUT = os.path.join(HERE, "commands.conf")
PREFIX = "osop_"

HEADER = """\
/*
 * CheckCommands of osop-checks: one per check, generated from the checks' argument parsers
 * by icinga2-conf/generate.py. Do not edit by hand: change the parser and run
 *     .venv/bin/python icinga2-conf/generate.py
 *
 * Naming: the command "osop_<name>" runs check_<name>; each option --some-option is the
 * custom variable <name>_some_option (the option's argparse dest), as the ITL does it;
 * switches that share a dest (-4/-6) each have their own: <name>_ipv4, or <name>_family_4
 * when the switch has no long name.
 * Switches are set_if (true/false), repeatable options take an array (repeat_key), -v is one
 * level of verbosity when <name>_verbose is true.
 *
 * OsopPluginDir: the directory holding check_<name>. It defaults to PluginDir
 * (/usr/lib/nagios/plugins on Debian), where plugins/check_* are meant to be copied. To use
 * another one (a virtualenv's bin, say) put in constants.conf of every endpoint that runs
 * the checks:
 *     const OsopPluginDir = "/opt/osop-checks/bin"
 * This file only fills it in when it is not defined, so it works unchanged in a global zone
 * synced to agents that each have their own.
 */

if (!globals.contains("OsopPluginDir")) {
	globals.OsopPluginDir = PluginDir
}

/*
 * Shared by every osop command. Icinga kills a check after the service's check_timeout
 * (or the command's timeout, 1m here); each plugin's --timeout defaults to that limit minus
 * OsopTimeoutMargin seconds, so the plugin gives up first and says what it was waiting for
 * (UNKNOWN with a reason) instead of being killed with a bare "Timeout exceeded".
 */
if (!globals.contains("OsopTimeoutMargin")) {
	globals.OsopTimeoutMargin = 5
}

template CheckCommand "osop-plugin" {
	timeout = 1m

	vars.osop_timeout = {{
		var limit = macro("$service.check_timeout$")
		if (!limit) {
			limit = macro("$host.check_timeout$")
		}
		if (!limit) {
			limit = macro("$command.timeout$")
		}
		return Math.max(1, Math.floor(number(limit)) - OsopTimeoutMargin)
	}}
}
"""


def check_modules(root=ROOT):
    """Names of the check modules that exist, in a stable order: the console scripts of
    setup.cfg (``check_x = osop_checks.checks.x:main``) and every module of the package."""
    names = []
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(root, "setup.cfg"))
    scripts = cfg.get("options.entry_points", "console_scripts", fallback="")
    for line in scripts.splitlines():
        target = line.partition("=")[2].strip()
        module = target.partition(":")[0].strip()
        if module.startswith("osop_checks.checks."):
            names.append(module.rpartition(".")[2])
    import osop_checks.checks
    names += [info.name for info in pkgutil.iter_modules(osop_checks.checks.__path__)
              if not info.name.startswith("_")]
    found = []
    for name in sorted(set(names)):
        try:
            module = importlib.import_module("osop_checks.checks." + name)
        except ModuleNotFoundError as exc:
            if exc.name == "osop_checks.checks." + name:
                continue  # announced in setup.cfg, not written yet
            raise
        if hasattr(module, "build_parser"):
            found.append(name)
    return found


def parsers():
    """[(name, parser)] for every check module present."""
    return [(name, importlib.import_module("osop_checks.checks." + name).build_parser())
            for name in check_modules()]


def quote(text):
    return '"%s"' % str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def is_switch(action):
    return isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction,
                               argparse._CountAction, argparse._StoreConstAction,
                               argparse._AppendConstAction))


def is_threshold(action):
    dest = action.dest
    return (dest in ("warning", "critical") or dest.endswith("_warning")
            or dest.endswith("_critical") or action.metavar == "RANGE")


def options(parser):
    """The options a CheckCommand passes: every action but --help, --version and options
    hidden from --help (help=argparse.SUPPRESS: not meant for users)."""
    return [a for a in parser._actions
            if not isinstance(a, (argparse._HelpAction, argparse._VersionAction))
            and a.help != argparse.SUPPRESS]


def key_of(action):
    """The flag an argument is keyed by: its long option, else its short one."""
    if not action.option_strings:
        return None
    longs = [o for o in action.option_strings if o.startswith("--")]
    return (longs or action.option_strings)[0]


def var_names(name, parser):
    """{action: custom var name}: ``<name>_<dest>``; switches that share one dest (-4/-6
    storing a constant into 'family') get a var each, named after their long flag
    (``<name>_ipv4``) or, without one, dest and short flag (``<name>_family_4``)."""
    acts = options(parser)
    shared = {}
    for action in acts:
        shared[action.dest] = shared.get(action.dest, 0) + 1
    names = {}
    for action in acts:
        if shared[action.dest] > 1 and is_switch(action):
            longs = [o for o in action.option_strings if o.startswith("--")]
            if longs:
                suffix = longs[0][2:]
            else:
                suffix = "%s_%s" % (action.dest, action.option_strings[0].lstrip("-"))
            names[action] = "%s_%s" % (name, suffix.replace("-", "_"))
        else:
            names[action] = "%s_%s" % (name, action.dest)
    return names


def help_text(parser, action):
    formatter = parser._get_formatter()
    text = formatter._expand_help(action) if action.help else ""
    text = " ".join(text.split())
    if action.choices and "one of" not in text:
        text += " (one of: %s)" % ", ".join(str(c) for c in action.choices)
    return text


def argument(parser, name, action, var):
    """The Icinga2 text of one argument: (key, lines)."""
    key = key_of(action)
    lines = []
    if key is None:  # a positional argument
        key = "(%s)" % action.dest
        lines.append("skip_key = true")
    if is_switch(action):
        lines.append('set_if = "$%s$"' % var)
    elif action.dest == "timeout":
        lines.append('value = "$%s$"' % var)
    else:
        lines.append('value = "$%s$"' % var)
        if isinstance(action, argparse._AppendAction):
            lines.append("repeat_key = true")
        elif action.nargs in ("+", "*") or (isinstance(action.nargs, int) and action.nargs > 1):
            lines.append("repeat_key = false")
    lines.append("description = %s" % quote(help_text(parser, action)))
    if action.required:
        lines.append("required = true")
    if is_threshold(action):
        lines.append("order = -2")
    elif not action.option_strings:
        lines.append("order = 99")
    return key, lines


def command(name, parser):
    out = []
    description = " ".join((parser.description or "").split())
    out.append("/* check_%s: %s */" % (name, description))
    out.append('object CheckCommand "%s%s" {' % (PREFIX, name))
    out.append('\timport "osop-plugin"')
    out.append("")
    out.append('\tcommand = [ OsopPluginDir + "/check_%s" ]' % name)
    out.append("")
    out.append("\targuments = {")
    names = var_names(name, parser)
    for action in options(parser):
        key, lines = argument(parser, name, action, names[action])
        out.append("\t\t%s = {" % quote(key))
        out += ["\t\t\t" + line for line in lines]
        out.append("\t\t}")
    out.append("\t}")
    out.append("")
    out.append("\t/* The plugin's own defaults apply to every option left unset. */")
    out.append('\tvars.%s_timeout = "$osop_timeout$"' % name)
    out.append("}")
    return "\n".join(out) + "\n"


def render():
    return HEADER + "".join("\n" + command(name, parser) for name, parser in parsers())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="only compare: exit 1 when commands.conf is out of date")
    ap.add_argument("-o", "--output", default=OUTPUT)
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        try:
            with open(args.output, encoding="utf-8") as handle:
                current = handle.read()
        except FileNotFoundError:
            current = ""
        if current != text:
            print("%s is out of date: run icinga2-conf/generate.py" % args.output)
            return 1
        return 0
    with open(args.output, "w", encoding="utf-8") as handle:
        handle.write(text)
    print("wrote %s: %s" % (args.output, ", ".join(PREFIX + n for n, _ in parsers())))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    sys.exit(main())
