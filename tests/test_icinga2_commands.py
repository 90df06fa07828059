"""icinga2-conf agrees with the checks' parsers: every option is there in the right form, and
the options that services.conf, the example inventory and the NRPE commands use exist. That
the generated files are current is tests/test_regen.py's."""
import argparse
import importlib
import json
import os
import re
import shlex

import pytest

from lab.peers import ROOT, icinga2

CONF = os.path.join(ROOT, "icinga2-conf")
generate = icinga2.generator()
generate_inventory = icinga2.inventory()

CHECKS = generate.check_modules(ROOT)


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


def command_var(block, name):
    """The value text of one ``vars.NAME = ...`` line of a CheckCommand."""
    match = re.search(r"^\tvars\.%s = (.*)$" % re.escape(name), block, re.M)
    assert match, "no vars.%s in the command" % name
    return match.group(1)


def basket():
    with open(generate.DIRECTOR_OUTPUT, encoding="utf-8") as handle:
        return json.load(handle)


DATATYPE = "Icinga\\Module\\Director\\DataType\\DataType"


@pytest.mark.parametrize("check", CHECKS)
def test_the_basket_and_commands_conf_agree_on_every_option(check):
    """The Director's osop_<check> has the arguments of commands.conf, attribute for
    attribute; only -v and --timeout differ in form (functions there, where commands.conf
    has vars, which Director cannot hold), and they compute the same from the same var."""
    data = basket()
    command = data["Command"]["osop_" + check]
    assert command["command"] == "check_" + check
    conf = arguments(command_block(check))
    assert sorted(command["arguments"]) == sorted(conf)
    parser = parser_of(check)
    names = generate.var_names(check, parser)
    by_key = {generate.key_of(a): a for a in generate.options(parser)}
    block = command_block(check)
    for key, attrs in command["arguments"].items():
        action = by_key[key]
        var = names[action]
        plain = {k: (generate.dsl(v) if k != "order" else v) for k, v in attrs.items()
                 if k not in ("set_if_format",)}
        expected = dict(conf[key])
        if isinstance(action, argparse._CountAction):
            level = command_var(block, "osop_verbose_level")
            assert attrs["set_if_format"] == "expression"
            assert "return " + generate.verbose_level(var) in level
            assert attrs["set_if"] == "return " + generate.verbose_level(var)
            assert generate.verbose_level(var) in attrs["value"]["body"]
            assert attrs["value"]["body"].startswith('return [ "", "-v", "-vv", "-vvv" ]')
            for computed in ("set_if", "value"):
                del plain[computed], expected[computed]
        elif action.dest == "timeout":
            assert expected.pop("value") == '"$%s$"' % var
            body = plain.pop("value")
            assert 'macro("$%s$")' % var in attrs["value"]["body"]
            assert "- %d)" % generate.TIMEOUT_MARGIN in attrs["value"]["body"]
            assert attrs["value"]["type"] == "Function" and body
        assert plain == expected, "%s %s: basket and commands.conf differ" % (check, key)
    assert ("globals.OsopTimeoutMargin = %d" % generate.TIMEOUT_MARGIN
            in open(os.path.join(CONF, "commands.conf")).read())


@pytest.mark.parametrize("check", CHECKS)
def test_the_basket_has_a_data_field_for_every_custom_var(check):
    """One field per custom var of the command, linked to it, with the option's --help as
    its description and the type its values have: a switch is boolean, a repeatable option
    an array, -v and whole numbers a number, the rest (ranges, durations) a string."""
    data = basket()
    fields = data["Datafield"]
    command = data["Command"]["osop_" + check]
    parser = parser_of(check)
    linked = {fields[str(f["datafield_id"])]["varname"]: fields[str(f["datafield_id"])]
              for f in command["fields"]}
    names = generate.var_names(check, parser)
    assert sorted(linked) == sorted(names.values())
    for action, var in names.items():
        field = linked[var]
        assert field["description"] == generate.help_text(parser, action) != ""
        kind = field["datatype"][len(DATATYPE):].lower()
        if isinstance(action, argparse._CountAction):
            assert kind == "number"
        elif generate.is_switch(action):
            assert kind == "boolean"
        elif isinstance(action, argparse._AppendAction):
            assert kind == "array"
        elif generate.is_threshold(action):
            assert kind == "string"  # a range: 10:20, @5, ~:3
        elif generate.choices_of(action):  # picked from the Data List of its choices
            assert kind == "datalist", (var, kind)
            listed = basket()["DataList"][field["settings"]["datalist"]]
            assert sorted(e["entry_name"] for e in listed["entries"]) == sorted(
                generate.choices_of(action))
        else:
            assert kind in ("string", "number"), (var, kind)
            if kind == "number":  # a whole number: no unit, no range
                assert action.type("7") == 7 and not generate.is_threshold(action)
    assert len({f["varname"] for f in fields.values()}) == len(fields)


def test_the_basket_has_the_service_templates_of_templates_conf():
    """Every template of templates.conf for an osop command, with its imports, command,
    intervals (in seconds, as Director keeps them) and vars."""
    templates = basket()["ServiceTemplate"]
    text = open(os.path.join(CONF, "templates.conf")).read()
    shipped = re.findall(r'^template Service "([^"]+)" \{\n(.*?)\n\}', text, re.M | re.S)
    expected = [name for name, body in shipped
                if re.search(r'check_command = "osop_(%s)"' % "|".join(CHECKS), body)]
    assert len(expected) >= len(CHECKS)
    assert sorted(t for t in templates if not t.endswith("-snmp")) == sorted(["osop-service"] + [
        n for n in expected if n not in ("osop-backup-age-sudo",)])
    for name, body in shipped:
        if name not in templates:
            continue
        template = templates[name]
        assert template["object_type"] == "template"
        for line in body.splitlines():
            key, _, value = line.strip().partition(" = ")
            if key.startswith("import "):
                assert key[len('import "'):-1] in template["imports"]
            elif key.startswith("vars."):
                assert template["vars"][key[5:]] == generate.dsl_value(value)
            elif key:
                assert template[key] == generate.dsl_value(value), (name, key)
    assert templates["osop-backup-age"]["check_timeout"] == "300"
    assert templates["osop-service"]["vars"] == {"osop": True}


def test_the_generator_makes_a_command_of_every_check_module():
    import pkgutil

    import osop_checks.checks

    modules = {info.name for info in pkgutil.iter_modules(osop_checks.checks.__path__)}
    assert sorted(CHECKS) == sorted(modules) and len(CHECKS) == 7, (CHECKS, modules)


@pytest.mark.parametrize("check", CHECKS)
def test_every_parser_option_is_an_argument_of_its_command(check):
    parser = parser_of(check)
    block = command_block(check)
    assert 'command = [ OsopPluginDir + "/check_%s" ]' % check in block
    args = arguments(block)
    names = generate.var_names(check, parser)
    assert len(set(names.values())) == len(names), "two options share a custom var"
    expected = set()
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        if action.help == argparse.SUPPRESS:
            assert generate.key_of(action) not in args, "a hidden option in the command"
            continue
        key = generate.key_of(action)
        expected.add(key)
        assert key in args, "%s: %s missing from osop_%s" % (check, key, check)
        attrs = args[key]
        var = '"$%s$"' % names[action]
        if isinstance(action, argparse._CountAction):  # -v: the level from the var
            assert attrs.get("set_if") == '"$osop_verbose_level$"'
            assert attrs.get("value") == '"$osop_verbose_flag$"'
            assert var in command_var(block, "osop_verbose_level")
        elif generate.is_switch(action):
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
    # macros only: ifw-api refuses an argument that holds a function
    assert args["--verbose"]["set_if"] == '"$osop_verbose_level$"'
    assert args["--verbose"]["value"] == '"$osop_verbose_flag$"'
    assert args["--verbose"]["skip_key"] == "true"
    assert '"$disk_partitions_verbose$"' in command_var(command_block("disk_partitions"),
                                                       "osop_verbose_level")


@pytest.mark.parametrize("given, word", [
    ("true", "-v"), ("1", "-v"), ("2", "-vv"), ('"3"', "-vvv"), ("7", "-vvv"),
    ("0", None), ("false", None), ("null", None), ('""', None)])
def test_verbose_takes_the_level_and_true_is_one(given, word):
    """<name>_verbose as Icinga 2 itself resolves it (icinga2 console, macro() answering the
    var): -v, -vv or -vvv, and the plugin reads that word as the level."""
    import subprocess

    from lab.peers import need

    need("icinga2")
    block = command_block("tls_expiry")
    script = ('var given = %s; var level = %s; var flag = %s; '
              'var macro = function(name) { if (name == "$osop_verbose_level$") '
              '{ return level() } else { return given } }; '
              'if (level() >= 1) { flag() } else { "(none)" }' % (
                  given, command_var(block, "osop_verbose_level"),
                  command_var(block, "osop_verbose_flag")))
    out = subprocess.run(["icinga2", "console", "--eval", script], capture_output=True,
                         text=True, timeout=30).stdout.strip()
    assert out == '"%s"' % (word or "(none)"), out
    argv = ([word] if word else []) + ["-H", "example.org"]
    assert parser_of("tls_expiry").parse_args(argv).verbose == len(word or "-") - 1


# -- the example's services parse as the checks' own command lines -----------------------------

def example_services():
    """(host, service, check, {option dest: value}) for every service services.conf makes
    from the example inventory; mirrors its apply rules (keep the two in step)."""
    for host in generate_inventory.office() + generate_inventory.vms():
        hv = {}
        for path, value in host.vars:
            family, _, key = path.partition("[")
            if key:
                hv.setdefault(family, {})[key[1:-2]] = value
            else:
                hv[family] = value
        local = host.client in ("agent", "local")
        snmp = dict(hv.get("snmp", {}), host=host.address) if host.client == "snmp" else {}
        if local or snmp:
            for mount, config in (hv.get("disks") or {None: {}}).items():
                options = dict(snmp)
                if mount is not None:
                    options["path"] = [mount]
                options.update(config)
                yield host.name, "disk %s" % mount, "disk_partitions", options
        for name, config in hv.get("tls_endpoints", {}).items():
            options = {}
            if not {"file", "endpoint", "endpoint_file", "host"} & set(config):
                options["host"] = host.address
            options.update(config)
            yield host.name, "tls " + name, "tls_expiry", options
        for name, config in hv.get("backups", {}).items() if local else ():
            yield host.name, "backup " + name, "backup_age", dict(config)
        for name, config in hv.get("copies", {}).items() if local else ():
            yield host.name, "copies " + name, "three_copies", dict(config)
        for name, config in hv.get("dyndns", {}).items():
            yield host.name, "dyndns " + name, "dyndns_match", dict(config, hostname=name)
        if local and host.os == "Linux":
            yield host.name, "upgrades", "os_upgrades", dict(hv.get("upgrades", {}))
            yield host.name, "systemd", "systemd_units", dict(hv.get("systemd", {}))


EXAMPLE = list(example_services())


def test_the_mirror_of_the_apply_rules_sees_as_many_services_as_icinga2():
    """The example's own count (icinga2's count is asserted in the integration test):
    apply-rule services plus the NRPE ones."""
    nrpe = sum(len(dict(h.vars).get("nrpe_checks", [])) for h in generate_inventory.vms())
    assert len(EXAMPLE) + nrpe >= 690


@pytest.mark.parametrize("check", CHECKS)
def test_example_services_parse_as_command_lines_of_the_check(check):
    """Each example service's options, as the argv Icinga builds from them, are accepted by
    the check's parser: option names, choices, ranges and units all fit."""
    parser = parser_of(check)
    names = set(generate.var_names(check, parser).values())
    mine = [s for s in EXAMPLE if s[2] == check]
    assert mine, "the example has no service for " + check
    for host, service, _, options in mine:
        variables = {"%s_%s" % (check, k): v for k, v in options.items()}
        unknown = sorted(v for v in variables if v not in names)
        assert not unknown, "%s!%s: %s are not options of check_%s" % (
            host, service, unknown, check)
        argv = icinga2.vars_to_argv(check, parser, variables)

        where = "%s!%s: check_%s %s" % (host, service, check, " ".join(argv))

        def error(message, where=where):
            pytest.fail("%s: %s" % (where, message))

        parser.error = error
        parser.parse_args(argv)


def test_the_practice_copies_do_not_cry_wolf_and_see_a_loss():
    """The practice's nightly mirror (issue 13): a change saved in the morning must not make
    the copies CRITICAL by lunch (no settle shorter than -w, no missing-critical 0), the
    off-site box that sleeps outside its backup window and the office PC that is switched
    off now and then are marked sleeping (else unreachable is CRITICAL), and a canary
    guards against a loss that spreads; its snapshots are counted."""
    parser = parser_of("three_copies")
    copies = [s for s in EXAMPLE if s[2] == "three_copies"]
    assert copies
    for host, service, check, options in copies:
        args = parser.parse_args(icinga2.vars_to_argv(
            check, parser, {"%s_%s" % (check, k): v for k, v in options.items()}))
        if args.settle is not None:
            assert args.settle >= args.warning.end, (host, service)
        assert "missing_critical" not in options, (host, service)
    practice = {(h, s): o for h, s, c, o in copies}[
        ("office-server.office.example", "copies data1")]
    assert practice["sleeping"] == ["pc2", "offsite"] and practice["offsite"] == ["offsite"]
    assert practice["canary"] == [".osop-canary"]
    versions = {(h, s): o for h, s, c, o in EXAMPLE if c == "backup_age"}[
        ("office-server.office.example", "backup data1 versions")]
    assert versions["mode"] == "snapshot" and versions["min_snapshots"] == 7


def test_services_conf_sets_only_options_of_its_checks():
    text = open(os.path.join(CONF, "services.conf")).read()
    for check in CHECKS:
        names = set(generate.var_names(check, parser_of(check)).values())
        for var in re.findall(r"vars\.(%s_\w+) =" % check, text):
            assert var in names, "services.conf sets %s: not an option of check_%s" % (
                var, check)


def nrpe_commands():
    commands = {}
    for line in open(os.path.join(CONF, "nrpe", "osop_checks.cfg")):
        match = re.match(r"command\[(\w+)\]=(.*)$", line.strip())
        if match:
            commands[match.group(1)] = shlex.split(match.group(2))
    return commands


def test_nrpe_has_a_command_for_every_check():
    commands = nrpe_commands()
    assert sorted(commands) == sorted("check_osop_" + c for c in CHECKS)
    for name, argv in commands.items():
        check = name[len("check_osop_"):]
        assert argv[0] == "/usr/lib/nagios/plugins/check_" + check
    services = open(os.path.join(CONF, "nrpe", "services.conf")).read()
    for check in CHECKS:
        assert 'vars.nrpe_command = "check_osop_%s"' % check in services


@pytest.mark.parametrize("check", CHECKS)
def test_nrpe_arguments_parse(check):
    argv = nrpe_commands()["check_osop_" + check][1:]
    parser = parser_of(check)
    parser.error = lambda message: pytest.fail("nrpe/osop_checks.cfg check_osop_%s: %s" % (
        check, message))
    parser.parse_args(argv)


def test_the_basket_gives_a_fleet_service_sets_by_role_docs_and_pinned_credentials():
    """A Service Set per role of the example inventory, assigned by the host's osop_role
    (picked from a Data List by the osop-host template's field); every check's template
    links its docs; the SNMP variants, whose secrets stay on the master, are pinned there."""
    data = basket()
    roles = {e["entry_name"] for e in data["DataList"]["osop-checks: roles"]["entries"]}
    assert roles == {"practice-server", "fleet-vm", "backup-box", "tls-frontend", "snmp-box"}
    for title, service_set in data["ServiceSet"].items():
        role = re.match(r'^host\.vars\.osop_role="([a-z-]+)"$', service_set["assign_filter"])
        assert role and role.group(1) in roles, title
        for service in service_set["services"].values():
            assert service["imports"][0] in data["ServiceTemplate"], (title, service)
    sets = {s["assign_filter"].split('"')[1]: set(s["services"]) for s in
            data["ServiceSet"].values()}
    assert sets["fleet-vm"] == {"disks", "upgrades", "systemd"}
    assert sets["practice-server"] >= {"disks", "backup", "copies", "dyndns"}
    for check in CHECKS:
        template = data["ServiceTemplate"]["osop-" + check.replace("_", "-")]
        assert template["notes_url"] == generate.DOCS_URL % check
        assert os.path.exists(os.path.join(ROOT, "docs", "checks", check + ".md"))
    pinned = {n: t for n, t in data["ServiceTemplate"].items() if "zone" in t}
    assert sorted(pinned) == ["osop-disk-partitions-snmp", "osop-dyndns-match-snmp"]
    assert all(t["zone"] == "master" for t in pinned.values())
    field = [f for f in data["Datafield"].values() if f["varname"] == "osop_role"][0]
    assert field["settings"]["datalist"] == "osop-checks: roles"
