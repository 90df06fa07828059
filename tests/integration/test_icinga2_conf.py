"""The shipped icinga2-conf through the real `icinga2 daemon -C`: the full example inventory
(>= 690 services, counted from icinga2's own output) and zones.example.conf."""
import os

import pytest

from lab.peers import icinga2, need, need_root

pytestmark = pytest.mark.peer


@pytest.fixture(scope="module")
def example_base(tmp_path_factory):
    """The directory of an icinga2 instance that has validated the full example."""
    need("icinga2")
    need_root()
    base = str(tmp_path_factory.mktemp("i2"))
    return base, icinga2.validate_example(base)


@pytest.fixture(scope="module")
def validated(example_base):
    return example_base[1]


def test_the_full_example_validates_with_at_least_690_services(validated):
    ok, output, counts = validated
    assert ok, output[-6000:]
    assert "Instantiated" in output
    assert counts["Service"] >= icinga2.MIN_SERVICES, counts
    assert counts["Host"] == 50, counts
    # every agent host has its own Endpoint and Zone (plus master, satellite, global zone)
    assert counts["Endpoint"] >= 30 and counts["Zone"] == counts["Endpoint"] + 1, counts


def test_the_full_example_validates_in_icinga2_2_14(tmp_path):
    """Debian 13's icinga2 (2.14, chrooted) takes the same files, commands-api.conf (its
    ifw-api commands) included, without a warning."""
    need("debootstrap")
    need_root()
    ok, output, counts = icinga2.validate_example(
        str(tmp_path), [os.path.join(icinga2.CONF, "commands-api.conf")],
        root=icinga2.trixie_root())
    assert ok, output[-6000:]
    assert "2.14" in icinga2.Icinga2(str(tmp_path / "v"), root=icinga2.trixie_root()).run(
        "--version").stdout
    assert counts["Service"] >= icinga2.MIN_SERVICES and counts["Host"] == 50, counts
    problems = [line for line in output.splitlines()
                if " critical/" in line or " warning/" in line]
    assert not problems, "\n".join(problems)


def test_the_example_has_no_errors_or_warnings_from_icinga2(validated):
    ok, output, counts = validated
    problems = [line for line in output.splitlines()
                if " critical/" in line or " warning/" in line]
    assert not problems, "\n".join(problems)


def test_every_check_has_services_in_the_example(validated, tmp_path):
    """Each of the seven CheckCommands is used by the example: `icinga2 object list` on the
    validated config."""
    instance = icinga2.Icinga2(str(tmp_path), node="monitor.office.example")
    instance.write_config(icinga2.example_includes())
    ok, output, counts = instance.validate()
    assert ok, output[-4000:]
    listing = instance.run("object", "list", "--type", "Service", *instance.defines()).stdout
    used = {line.split('"')[1] for line in listing.splitlines()
            if "check_command" in line and '"' in line}
    for check in icinga2.all_check_names():
        assert "osop_" + check in used, "no example service runs osop_" + check
    assert "nrpe" in used


def objects(listing):
    """`icinga2 object list` text as {name: {attribute: value, "vars": {name: value}}}, for
    the scalar attributes at the top and in vars (numbers, strings, null)."""
    import json
    import re

    found = {}
    for block in re.split(r"^Object '", listing, flags=re.M)[1:]:
        name = block.split("' of type", 1)[0]
        attrs = found[name] = {"vars": {}}
        section = None
        for line in block.splitlines()[1:]:
            match = re.match(r"^( *)\* (\S+)(?: = (.*))?$", line)
            if not match:
                continue
            indent, key, value = len(match.group(1)), match.group(2), match.group(3)
            if indent == 2:
                section = key
            if value is None or indent not in (2, 4) or (indent == 4 and section != "vars"):
                continue
            try:
                value = json.loads(value)
            except ValueError:
                pass
            (attrs["vars"] if indent == 4 else attrs)[key] = value
    return found


def seconds(value):
    from osop_checks import units

    return units.DURATION.parse(str(value).split(":")[0])


def nrpe_plugin_timeouts():
    """command name -> the -t its plugin gets in nrpe/osop_checks.cfg."""
    import re
    import shlex

    limits = {}
    with open(os.path.join(icinga2.CONF, "nrpe", "osop_checks.cfg")) as handle:
        for line in handle:
            match = re.match(r"^command\[(\S+)\]=(.*)$", line.strip())
            if match:
                argv = shlex.split(match.group(2))
                limits[match.group(1)] = seconds(argv[argv.index("-t") + 1])
    return limits


def test_every_service_lets_its_command_line_answer_before_icinga_kills_it(example_base):
    """Icinga kills a check after the service's check_timeout, or else its command's
    timeout (the ITL's nrpe: 300 s). Each shipped service (services.conf, nrpe/services.conf
    on the example inventory) must leave its command line more than that: an osop plugin's
    --timeout, check_nrpe's -t (vars.nrpe_timeout), and behind it the plugin's own -t in
    osop_checks.cfg. Asked of the real icinga2's object list."""
    base, (ok, output, _counts) = example_base
    assert ok, output[-4000:]
    instance = icinga2.Icinga2(base, node="monitor.office.example")

    def listed(kind):
        return objects(instance.run("object", "list", "--type", kind,
                                    *instance.defines()).stdout)

    services, commands, hosts = listed("Service"), listed("CheckCommand"), listed("Host")
    plugin_limits = nrpe_plugin_timeouts()
    problems, seen = [], set()
    for name, service in services.items():
        command = service["check_command"]
        kill = service.get("check_timeout") or commands[command]["timeout"]
        chain = []  # (what, seconds it may take), each must be below the one before it
        if command == "nrpe":
            nrpe_timeout = seconds(service["vars"].get("nrpe_timeout", 10))  # check_nrpe's 10 s
            chain = [("check_nrpe -t", nrpe_timeout),
                     ("the plugin's -t in osop_checks.cfg",
                      plugin_limits[service["vars"]["nrpe_command"]])]
        elif command.startswith("osop_"):
            own = service["vars"].get(command[len("osop_"):] + "_timeout", "$osop_timeout$")
            if own == "$osop_timeout$":  # commands.conf's vars.osop_timeout, as it reckons
                limit = service.get("check_timeout") or hosts[service["host_name"]].get(
                    "check_timeout") or commands[command]["timeout"]
                own = max(1, int(seconds(limit)) - 5)
            chain = [("the plugin's --timeout", seconds(own))]
        else:
            problems.append((name, "a command the shipped files do not know: " + command))
        before = ("Icinga's %s" % ("check_timeout" if service.get("check_timeout") else
                                   "command timeout"), seconds(kill))
        for step in chain:
            if not step[1] < before[1]:
                problems.append((name, command, "%s %g s is not below %s %g s" % (
                    step[0], step[1], before[0], before[1])))
            before = step
        seen.add(command)
    assert not problems, "\n".join(map(str, problems[:20]))
    assert "nrpe" in seen and "osop_three_copies" in seen, seen


def test_the_sleeping_box_is_checked_in_its_backup_window_only(example_base):
    """The practice's off-site box: no ping (a dummy host check that stays UP and says why),
    every one of its services limited to the TimePeriod "backup-window", which the example
    defines; the other hosts' services have no check_period."""
    base, (ok, output, counts) = example_base
    assert ok, output[-4000:]
    assert counts["TimePeriod"] == 1, counts
    instance = icinga2.Icinga2(base, node="monitor.office.example")

    def listing(kind):
        return objects(instance.run("object", "list", "--type", kind,
                                    *instance.defines()).stdout)
    box = "offsite-box.office.example"
    host = listing("Host")[box]
    assert host["check_command"] == "dummy"
    period = listing("TimePeriod")["backup-window"]
    assert period["display_name"] == "backup window: the off-site box is awake"
    services = listing("Service")
    mine = {name: attrs for name, attrs in services.items() if name.startswith(box + "!")}
    assert {box + "!disk /", box + "!backup office data1", box + "!dyndns "
            "offsite.dyndns.example", box + "!upgrades"} <= set(mine), sorted(mine)
    assert {attrs["check_period"] for attrs in mine.values()} == {"backup-window"}
    others = {attrs["check_period"] for name, attrs in services.items() if name not in mine}
    assert others == {""}
    server = services["office-server.office.example!backup data1 versions"]
    assert server["check_command"] == "osop_backup_age"


def test_zones_example_validates(tmp_path):
    need("icinga2")
    need_root()
    instance = icinga2.Icinga2(str(tmp_path), node="master1.example.org")
    conf = icinga2.CONF
    host = os.path.join(instance.dirs["ConfigDir"], "hosts.conf")
    with open(host, "w") as handle:
        handle.write('object Host "web1.example.org" { check_command = "hostalive"; '
                     'address = "192.0.2.31"; zone = "satellite"; vars.client = "agent"; '
                     'vars.os = "Linux" }\n')
    instance.write_config([os.path.join(conf, "commands.conf"),
                           os.path.join(conf, "templates.conf"),
                           os.path.join(conf, "services.conf"),
                           os.path.join(conf, "zones.example.conf"), host])
    ok, output, counts = instance.validate()
    assert ok, output[-4000:]
    assert counts["Service"] == 3 and counts["Zone"] >= 4, counts


def test_the_readme_host_example_validates(tmp_path):
    """The hosts shown in docs/icinga2.md, with the shipped files and zones for
    their agents, pass `icinga2 daemon -C` and make the services the README promises."""
    import re

    need("icinga2")
    need_root()
    from tests import readme

    section = readme.section("icinga2")
    example = re.search(r"### Host variables.*?```\n(.*?)```", section, re.S).group(1)
    instance = icinga2.Icinga2(str(tmp_path), node="master.example")
    extra = os.path.join(instance.dirs["ConfigDir"], "readme.conf")
    with open(extra, "w") as handle:
        handle.write(example)
        handle.write('object Endpoint "master.example" { }\n'
                     'object Zone "master" { endpoints = [ "master.example" ] }\n')
        for agent in ("office-server", "mail"):
            handle.write('object Endpoint "%s" { }\nobject Zone "%s" { endpoints = [ "%s" ]; '
                         'parent = "master" }\n' % (agent, agent, agent))
    conf = icinga2.CONF
    instance.write_config([os.path.join(conf, f) for f in
                           ("commands.conf", "templates.conf", "services.conf")] + [extra])
    ok, output, counts = instance.validate()
    assert ok, output[-4000:]
    listing = instance.run("object", "list", "--type", "Service", *instance.defines()).stdout
    names = set(re.findall(r"Object '([^']+)' of type 'Service'", listing))
    for name in ("office-server!disk /data2", "office-server!backup data2 nightly",
                 "office-server!copies data1", "office-server!dyndns office.dyndns.example",
                 "office-server!tls ldap", "office-server!upgrades", "office-server!systemd",
                 "mail!tls submission", "mail!disks", "gateway!disks"):
        assert name in names, (name, sorted(names))


def test_the_non_profits_network_as_it_is(example_base):
    """Hosts shaped by too few IPv4 addresses, as the real icinga2 makes their services:
    IPv6-only VMs pinged and checked on address6, agents behind NAT checked by their zone's
    connection, a TLS service per family for dual-stack endpoints (with -4/-6), reverse
    proxies with many SNI names on one endpoint, and certificate files (and every endpoint
    behind NAT) read on the host itself."""
    base, (ok, output, _counts) = example_base
    assert ok, output[-4000:]
    instance = icinga2.Icinga2(base, node="monitor.office.example")

    def listing(kind):
        return objects(instance.run("object", "list", "--type", kind,
                                    *instance.defines()).stdout)
    hosts, services = listing("Host"), listing("Service")

    def of(host):
        return {name.split("!", 1)[1]: attrs for name, attrs in services.items()
                if attrs["host_name"] == host}

    ipv6_only = [name for name, host in hosts.items() if host["address6"] and not host["address"]]
    assert len(ipv6_only) >= 10, ipv6_only
    for name in ipv6_only:
        assert hosts[name]["check_command"] == "hostalive6", name
        backend = of(name)["tls backend"]
        assert backend["vars"]["tls_expiry_host"] == "$address6$", backend
        assert "tls6 backend" not in of(name)

    behind_nat = [name for name, host in hosts.items() if host["vars"].get("nat")]
    assert len(behind_nat) >= 5, behind_nat
    for name in behind_nat:
        assert hosts[name]["check_command"] == "cluster-zone", name
        for service in of(name).values():  # its listeners too: nothing else can reach them
            assert service["command_endpoint"] == name, service

    mail = of("mail.example.com")
    for family, flag in (("tls imaps", "tls_expiry_ipv4"), ("tls6 imaps", "tls_expiry_ipv6")):
        assert mail[family]["vars"][flag] is True, mail[family]
        assert mail[family]["command_endpoint"] == "", mail[family]  # from here, as users
    assert mail["tls imaps"]["vars"]["tls_expiry_host"] == "$address$"
    assert mail["tls6 imaps"]["vars"]["tls_expiry_host"] == "$address6$"

    proxies = [name for name in hosts if name.startswith("proxy")]
    for name in proxies:
        mine = of(name)
        sni = {s["vars"]["tls_expiry_sni"] for s in mine.values()
               if s["vars"].get("tls_expiry_sni") and s["vars"].get("tls_expiry_port") == 443}
        assert len(sni) >= 100, (name, len(sni))
        assert sum(key.startswith("tls6 ") for key in mine) == len(sni)

    files = {name: attrs for name, attrs in services.items()
             if attrs["vars"].get("tls_expiry_file")}
    assert len(files) >= 10, len(files)
    for name, attrs in files.items():
        assert attrs["command_endpoint"] == attrs["host_name"], (name, attrs)
        assert not name.split("!", 1)[1].startswith("tls6 "), name
