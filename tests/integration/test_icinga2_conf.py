"""The shipped icinga2-conf through the real `icinga2 daemon -C`: the full example inventory
(>= 690 services, counted from icinga2's own output) and zones.example.conf."""
import os

import pytest

from tests.peers import icinga2, need, need_root

pytestmark = pytest.mark.peer


@pytest.fixture(scope="module")
def validated(tmp_path_factory):
    need("icinga2")
    need_root()
    ok, output, counts, missing = icinga2.validate_example(str(tmp_path_factory.mktemp("i2")))
    return ok, output, counts, missing


def test_the_full_example_validates_with_at_least_690_services(validated):
    ok, output, counts, missing = validated
    assert ok, output[-6000:]
    assert "Instantiated" in output
    assert counts["Service"] >= icinga2.MIN_SERVICES, counts
    assert counts["Host"] == 50, counts
    # every agent host has its own Endpoint and Zone (plus master, satellite, global zone)
    assert counts["Endpoint"] >= 30 and counts["Zone"] == counts["Endpoint"] + 1, counts


def test_the_example_has_no_errors_or_warnings_from_icinga2(validated):
    ok, output, counts, missing = validated
    problems = [line for line in output.splitlines()
                if " critical/" in line or " warning/" in line]
    assert not problems, "\n".join(problems)


def test_every_check_has_services_in_the_example(validated, tmp_path):
    """Each of the seven CheckCommands is used by the example (through the stand-ins for
    checks not merged yet): `icinga2 object list` on the validated config."""
    instance = icinga2.Icinga2(str(tmp_path), node="monitor.office.example")
    missing, placeholders = icinga2.placeholder_commands()
    stand_in = os.path.join(instance.dirs["ConfigDir"], "placeholders.conf")
    with open(stand_in, "w") as handle:
        handle.write(placeholders)
    includes = icinga2.example_includes()
    instance.write_config(includes[:1] + [stand_in] + includes[1:])
    ok, output, counts = instance.validate()
    assert ok, output[-4000:]
    listing = instance.run("object", "list", "--type", "Service", *instance.defines()).stdout
    used = {line.split('"')[1] for line in listing.splitlines()
            if "check_command" in line and '"' in line}
    for check in icinga2.all_check_names():
        assert "osop_" + check in used, "no example service runs osop_" + check
    assert "nrpe" in used


def test_zones_example_validates(tmp_path):
    need("icinga2")
    need_root()
    instance = icinga2.Icinga2(str(tmp_path), node="master1.example.org")
    missing, placeholders = icinga2.placeholder_commands()
    stand_in = os.path.join(instance.dirs["ConfigDir"], "placeholders.conf")
    with open(stand_in, "w") as handle:
        handle.write(placeholders)
    conf = icinga2.CONF
    host = os.path.join(instance.dirs["ConfigDir"], "hosts.conf")
    with open(host, "w") as handle:
        handle.write('object Host "web1.example.org" { check_command = "hostalive"; '
                     'address = "192.0.2.31"; zone = "satellite"; vars.client = "agent"; '
                     'vars.os = "Linux" }\n')
    instance.write_config([os.path.join(conf, "commands.conf"), stand_in,
                           os.path.join(conf, "templates.conf"),
                           os.path.join(conf, "services.conf"),
                           os.path.join(conf, "zones.example.conf"), host])
    ok, output, counts = instance.validate()
    assert ok, output[-4000:]
    assert counts["Service"] == 3 and counts["Zone"] >= 4, counts


def test_the_readme_host_example_validates(tmp_path):
    """The hosts shown in README's icinga2 section, with the shipped files and zones for
    their agents, pass `icinga2 daemon -C` and make the services the README promises."""
    import re

    need("icinga2")
    need_root()
    readme = open(os.path.join(icinga2.ROOT, "README.md")).read()
    section = readme.split("<!-- BEGIN icinga2 -->")[1].split("<!-- END icinga2 -->")[0]
    example = re.search(r"### Host variables.*?```\n(.*?)```", section, re.S).group(1)
    instance = icinga2.Icinga2(str(tmp_path), node="master.example")
    missing, placeholders = icinga2.placeholder_commands()
    extra = os.path.join(instance.dirs["ConfigDir"], "readme.conf")
    with open(extra, "w") as handle:
        handle.write(placeholders + example)
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
