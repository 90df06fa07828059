"""icinga2-conf agrees with the checks' parsers: commands.conf is what generate.py makes of
them today, every option is there in the right form, and the options that services.conf, the
example inventory and the NRPE commands use exist (for the checks that are merged)."""
import argparse
import importlib
import os
import re
import shlex
import sys

import pytest

from tests.peers import ROOT

CONF = os.path.join(ROOT, "icinga2-conf")
sys.path.insert(0, CONF)
sys.path.insert(0, os.path.join(CONF, "example"))
import generate  # noqa: E402
import generate_inventory  # noqa: E402

sys.path.remove(CONF)
sys.path.remove(os.path.join(CONF, "example"))

PRESENT = generate.check_modules(ROOT)
ALL = [line.partition("=")[0].strip()[len("check_"):]
       for line in open(os.path.join(ROOT, "setup.cfg")).read().split("console_scripts =")[1]
       .split("\n\n")[0].splitlines() if line.strip().startswith("check_")]


def parser_of(check):
    return importlib.import_module("osop_checks.checks." + check).build_parser()


def command_block(check):
    text = open(os.path.join(CONF, "commands.conf")).read()
    match = re.search(r'object CheckCommand "osop_%s" \{\n(.*?)\n\}\n' % check, text, re.S)
    assert match, "commands.conf has no CheckCommand osop_%s: run icinga2-conf/generate.py" % check
    return match.group(1)


def arguments(block):
    """{key: {attr: value-text}} of one CheckCommand's arguments."""
    result = {}
    for key, body in re.findall(r'\t\t"([^"]+)" = \{\n(.*?)\n\t\t\}', block, re.S):
        attrs = {}
        for line in body.splitlines():
            name, _, value = line.strip().partition(" = ")
            attrs[name] = value
        result[key] = attrs
    return result


def test_commands_conf_is_up_to_date():
    with open(os.path.join(CONF, "commands.conf"), encoding="utf-8") as handle:
        assert handle.read() == generate.render(), (
            "icinga2-conf/commands.conf is out of date: run .venv/bin/python "
            "icinga2-conf/generate.py")


def test_generator_finds_the_present_checks_and_skips_the_others():
    assert "disk_partitions" in PRESENT
    assert len(ALL) == 7
    for check in ALL:
        try:
            importlib.import_module("osop_checks.checks." + check)
            assert check in PRESENT
        except ModuleNotFoundError:
            assert check not in PRESENT
    assert set(PRESENT) <= set(ALL) | set(generate.check_modules(ROOT))


@pytest.mark.parametrize("check", PRESENT)
def test_every_parser_option_is_an_argument_of_its_command(check):
    parser = parser_of(check)
    block = command_block(check)
    assert 'command = [ OsopPluginDir + "/check_%s" ]' % check in block
    args = arguments(block)
    expected = set()
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        key = generate.key_of(action)
        expected.add(key)
        assert key in args, "%s: %s missing from osop_%s" % (check, key, check)
        attrs = args[key]
        var = '"$%s_%s$"' % (check, action.dest)
        if generate.is_switch(action):
            assert attrs.get("set_if") == var and "value" not in attrs
        else:
            assert attrs.get("value") == var and "set_if" not in attrs
        if isinstance(action, argparse._AppendAction):
            assert attrs.get("repeat_key") == "true"
        if generate.is_threshold(action):
            assert "order" in attrs
        assert attrs.get("description", '""') != '""', "%s %s has no help text" % (check, key)
        if action.required:
            assert attrs.get("required") == "true"
    assert set(args) == expected, "arguments that are not options of the parser"
    assert 'vars.%s_timeout = "$osop_timeout$"' % check in block


def test_switch_and_repeat_forms_on_disk_partitions():
    args = arguments(command_block("disk_partitions"))
    assert args["--ignore-missing"] == {
        "set_if": '"$disk_partitions_ignore_missing$"',
        "description": '"a missing or unmounted -p PATH is OK instead of CRITICAL"'}
    assert args["--path"]["repeat_key"] == "true"
    assert args["--warning"]["order"] == "-2"
    assert args["--verbose"]["set_if"] == '"$disk_partitions_verbose$"'


# -- the names used elsewhere exist in the parsers ----------------------------------------------

FAMILIES = {"disks": "disk_partitions", "snmp": "disk_partitions snmp", "tls_endpoints": "tls_expiry",
            "backups": "backup_age", "copies": "three_copies", "dyndns": "dyndns_match",
            "upgrades": "os_upgrades", "systemd": "systemd_units"}


def inventory_options():
    """{check: {option dest used as a host-var key in the example}}."""
    used = {}
    for host in generate_inventory.office() + generate_inventory.vms():
        for path, value in host.vars:
            family = path.split("[")[0]
            if family in FAMILIES and isinstance(value, dict):
                used.setdefault(FAMILIES[family], set()).update(value)
    return used


def services_conf_options():
    """{check: {dest}} from vars.<check>_<dest> in services.conf."""
    used = {}
    text = open(os.path.join(CONF, "services.conf")).read()
    for check in ALL:
        for dest in re.findall(r"vars\.%s_(\w+) =" % check, text):
            used.setdefault(check, set()).add(dest)
    return used


# SNMP mode of check_disk_partitions (issue 7) is checked once the parser has --snmp.
SNMP_KEYS_IN_SERVICES_CONF = {"host"}


@pytest.mark.parametrize("check", ALL + ["disk_partitions snmp"])
def test_host_var_keys_are_options_of_the_check(check):
    module = check.split()[0]
    if module not in PRESENT:
        pytest.skip("osop_checks.checks.%s not merged yet: its host-var keys are unchecked"
                    % module)
    dests = {a.dest for a in parser_of(module)._actions}
    used = inventory_options().get(check, set())
    if check == "disk_partitions snmp":
        if "snmp" not in dests:
            pytest.skip("check_disk_partitions has no SNMP mode yet (issue 7): vars.snmp "
                        "keys unchecked")
        used |= SNMP_KEYS_IN_SERVICES_CONF
    else:
        used |= services_conf_options().get(check, set())
        if check == "disk_partitions":
            used -= SNMP_KEYS_IN_SERVICES_CONF
    unknown = used - dests
    assert not unknown, "keys %s used in services.conf/example for %s are not options of " \
        "check_%s (its options: %s)" % (sorted(unknown), check, check, sorted(dests))


def nrpe_commands():
    commands = {}
    for line in open(os.path.join(CONF, "nrpe", "osop_checks.cfg")):
        match = re.match(r"command\[(\w+)\]=(.*)$", line.strip())
        if match:
            commands[match.group(1)] = shlex.split(match.group(2))
    return commands


def test_nrpe_has_a_command_for_every_check():
    commands = nrpe_commands()
    assert sorted(commands) == sorted("check_osop_" + c for c in ALL)
    for name, argv in commands.items():
        check = name[len("check_osop_"):]
        assert argv[0] == "/usr/lib/nagios/plugins/check_" + check
    services = open(os.path.join(CONF, "nrpe", "services.conf")).read()
    for check in ALL:
        assert 'vars.nrpe_command = "check_osop_%s"' % check in services


@pytest.mark.parametrize("check", ALL)
def test_nrpe_arguments_parse(check):
    if check not in PRESENT:
        pytest.skip("osop_checks.checks.%s not merged yet" % check)
    argv = nrpe_commands()["check_osop_" + check][1:]
    parser = parser_of(check)
    parser.error = lambda message: pytest.fail("nrpe/osop_checks.cfg check_osop_%s: %s" % (
        check, message))
    parser.parse_args(argv)
