"""Our Director basket in a real Icinga Director: Debian 12's Director 1.10, Icinga Web 2 2.11
and icinga2 2.13 (lab/peers/director.py, a cached bookworm root). The basket is restored
(twice: the second time changes nothing), the practice's hosts and services are made with
`icingacli director host create` / `service create` from our templates and deployed with
`icingacli director config deploy`; icinga2 runs every check (forced through its API), and
each service shows what its command line says when run by hand. A headless Chromium
screenshot of Icinga Web 2's service list shows a service of each of the seven checks."""
import contextlib
import importlib
import json
import os
import re
import time

import pytest

from lab.peers import ROOT, need, need_root
from lab.peers import director as director_peer
from lab.peers import icinga2

pytestmark = pytest.mark.peer

generate = icinga2.generator()
SERVER = "office-server.office.example"
MONITOR = "monitor.office.example"
DYNDNS = "office.dyn.test"
PUBLIC_ADDRESS = "192.0.2.10"  # the practice's public address, as its DynDNS name has it
# Hosts of the fleet given a role (the osop-host template's field): the basket's Service Set of
# that role gives them their services, nothing else is made for them.
ROLE_HOSTS = {"vm01.dc.example": "fleet-vm", "proxy01.dc.example": "tls-frontend"}


def practice_services(dns_server):
    """(host, service, check, {option dest: value}): the practice's services, set up as a
    Director user would, on files and peers this stack has."""
    return [
        (SERVER, "disk /", "disk_partitions", {"path": ["/"], "warning": "5%",
                                               "critical": "2%"}),
        (SERVER, "backup data2 nightly", "backup_age", {
            "path": "/data2/backup/daily", "warning": "26h", "critical": "50h"}),
        (SERVER, "copies data1", "three_copies", {
            "source": "/data1", "copies": ["server=/data2/data1", "usb=/media/usb/data1"]}),
        (SERVER, "tls nextcloud", "tls_expiry", {
            "file": "/etc/ssl/osop/cloud.pem", "warning": "21", "critical": "7",
            "verbose": 2}),
        (SERVER, "dyndns " + DYNDNS, "dyndns_match", {
            "hostname": DYNDNS, "server": dns_server, "expect": PUBLIC_ADDRESS}),
        (MONITOR, "upgrades", "os_upgrades", {"no_cache": True}),
        (MONITOR, "systemd", "systemd_units", {}),
    ]


def prepare_world(stack, tmp):
    """The practice's files in the root: data, a mirror and a USB copy, last night's backup,
    the Nextcloud certificate (90 days left)."""
    from lab.peers.tls import TestCA

    for top in ("/data1", "/data2/data1", "/media/usb/data1"):
        os.makedirs(stack.path(top, "invoices"), exist_ok=True)
        for name, text in (("invoices/2024-05.pdf", "invoice\n"), ("patients.db", "db\n")):
            with open(stack.path(top, name), "w") as handle:
                handle.write(text)
    os.makedirs(stack.path("/data2/backup/daily"), exist_ok=True)
    with open(stack.path("/data2/backup/daily/patients.db"), "w") as handle:
        handle.write("last night\n")
    leaf = TestCA(str(tmp)).issue("cloud", names=("cloud.office.example",), days=90)
    os.makedirs(stack.path("/etc/ssl/osop"), exist_ok=True)
    with open(leaf.chain_path) as src, open(stack.path("/etc/ssl/osop/cloud.pem"), "w") as dst:
        dst.write(src.read())
    for path in ("/data1", "/data2", "/media/usb", "/etc/ssl/osop"):
        stack.run("chmod", "-R", "a+rX", path)


def director_vars(check, options):
    names = set(generate.var_names(check, parser_of(check)).values())
    variables = {"%s_%s" % (check, k): v for k, v in options.items()}
    unknown = sorted(set(variables) - names)
    assert not unknown, "not options of check_%s: %s" % (check, unknown)
    return variables


def parser_of(check):
    return importlib.import_module("osop_checks.checks." + check).build_parser()


def counts(stack):
    """Rows of the Director's tables a restore writes to, and its activity log."""
    out = stack.sql("SELECT COUNT(*) FROM director_activity_log; "
                    "SELECT COUNT(*) FROM director_datafield; "
                    "SELECT COUNT(*) FROM icinga_command; "
                    "SELECT COUNT(*) FROM icinga_command_argument; "
                    "SELECT COUNT(*) FROM icinga_command_field; "
                    "SELECT COUNT(*) FROM icinga_service;\n", "director")
    return [int(line) for line in out.split() if line.isdigit()]


@pytest.fixture(scope="module")
def practice(tmp_path_factory):
    """The stack with the basket restored and the practice deployed and checked once:
    (stack, services as icinga2's API has them, the practice's service list)."""
    need_root()
    need("debootstrap", "unshare", "dnsmasq")
    from lab.peers.dns import Dnsmasq, free_port

    tmp = tmp_path_factory.mktemp("director")
    with contextlib.ExitStack() as stack_of_peers:
        dns = stack_of_peers.enter_context(Dnsmasq(
            "127.0.0.1", free_port(), {DYNDNS: [PUBLIC_ADDRESS]}, workdir=str(tmp)))
        stack = stack_of_peers.enter_context(director_peer.Stack(str(tmp / "stack")))
        prepare_world(stack, tmp)
        stack.restore_basket()
        stack.restored_once = counts(stack)
        stack.restore_basket()
        stack.restored_twice = counts(stack)
        services = practice_services(dns.server)
        for host, address in ((SERVER, "127.0.0.1"), (MONITOR, "127.0.0.1")):
            stack.create("host", host, {"object_type": "object", "address": address,
                                        "check_command": "dummy"})
        for host, role in ROLE_HOSTS.items():
            stack.create("host", host, {"object_type": "object", "imports": ["osop-host"],
                                        "address": "127.0.0.1", "vars": {"osop_role": role}})
        with open(director_peer.BASKET) as handle:
            by_role = {s["assign_filter"].split('"')[1]: s["services"]
                       for s in json.load(handle)["ServiceSet"].values()}
        stack.role_services = {host: set(by_role[role]) for host, role in ROLE_HOSTS.items()}
        total = len(services) + sum(len(v) for v in stack.role_services.values())
        for host, name, check, options in services:
            stack.create("service", name, {
                "object_type": "object", "host": host,
                "imports": ["osop-" + check.replace("_", "-")],
                "vars": director_vars(check, options)})
        stack.deploy()
        stack.wait_for("the deployed services", lambda: len(stack.services()) == total)
        since = time.time()
        stack.force_checks()
        checked, pending = stack.wait_for_results(since, timeout=180)
        assert not pending, "no check result for %s" % pending
        yield stack, checked, services


def test_restoring_the_basket_twice_changes_nothing(practice):
    stack, _, _ = practice
    assert stack.restored_twice == stack.restored_once
    activity, fields, commands, arguments, links, services = stack.restored_once
    # every field is a command's but osop_role, the host template's
    assert commands >= 7 and arguments >= fields >= 150 and links == fields - 1


def test_the_director_exports_the_basket_we_ship(practice):
    """A basket of the restored objects, as the Director itself writes it (`basket dump`),
    is ours: the same commands, arguments, fields and templates (field ids aside)."""
    stack, _, _ = practice
    stack.sql("INSERT INTO director_basket (uuid, basket_name, owner_type, owner_value, "
              "objects) VALUES (UNHEX(REPLACE(UUID(), '-', '')), 'osop-export', 'user', "
              "'admin', '{\"Command\": true, \"Datafield\": true, \"ServiceTemplate\": true, "
              "\"DataList\": true, \"ServiceSet\": true, \"HostTemplate\": true}');"
              "\n", "director")
    dumped = json.loads(stack.icingacli("director", "basket", "dump", "--name",
                                        "osop-export").stdout)
    with open(director_peer.BASKET) as handle:
        shipped = json.load(handle)
    ours = {n for n in shipped["Command"]}
    dumped["Command"] = {n: c for n, c in dumped["Command"].items() if n in ours}
    theirs, mine = by_varname(dumped), by_varname(shipped)
    for kind in mine:  # one kind at a time: a difference is readable
        assert theirs[kind] == mine[kind], kind
    assert dumped["HostTemplate"]["osop-host"]["fields"]


def by_varname(basket):
    """A basket with its data fields keyed by var name instead of their ids."""
    ids = {key: field["varname"] for key, field in basket["Datafield"].items()}
    fields = {f["varname"]: dict(f, originalId=None) for f in basket["Datafield"].values()
              if f["varname"] in ids.values()}
    commands = {}
    for name, command in basket["Command"].items():
        links = sorted((ids[str(f["datafield_id"])], f["is_required"], f["var_filter"])
                       for f in command["fields"])
        commands[name] = dict(command, fields=links)
    used = {v for c in commands.values() for v, _, _ in c["fields"]}
    used |= {f["varname"] for f in fields.values() if f["varname"] == "osop_role"}
    return {"Command": commands, "Datafield": {v: f for v, f in fields.items() if v in used},
            "ServiceTemplate": basket["ServiceTemplate"], "DataList": basket["DataList"],
            "ServiceSet": basket["ServiceSet"]}


def test_a_host_given_a_role_gets_the_service_set_of_that_role(practice):
    """The basket's Service Sets, restored and deployed by the real Director: a host whose
    osop_role is fleet-vm gets disks, upgrades and systemd; a TLS front-end its certificate
    on its own address; each run by Icinga through our command."""
    stack, checked, _ = practice
    for host in ROLE_HOSTS:
        mine = {name.split("!", 1)[1]: attrs for name, attrs in checked.items()
                if name.startswith(host + "!")}
        assert set(mine) == stack.role_services[host], (host, sorted(mine))
        for name, attrs in mine.items():
            assert attrs["check_command"].startswith("osop_"), (host, name, attrs)
            assert attrs["last_check_result"]["output"].startswith(
                attrs["check_command"][len("osop_"):].upper() + " "), (host, name, attrs)
    assert stack.role_services["vm01.dc.example"] == {"disks", "upgrades", "systemd"}
    tls = checked["proxy01.dc.example!tls"]["last_check_result"]["command"]
    assert tls[tls.index("--host") + 1] == "127.0.0.1", tls


def words(output):
    """A status line with its numbers left out: two runs a moment apart measure a little
    differently (free bytes, an age in seconds), and a duration in words may gain or lose a
    part across a boundary ("1h" a moment later is "1h 1m")."""
    text = re.sub(r"\d+(\.\d+)?", "N", output.strip())
    return re.sub(r"N[a-z]+( N[a-z]+)*\b", "DURATION", text)


def check_timeout(check):
    """The seconds Icinga gives a service of ``check`` made from its template."""
    with open(director_peer.BASKET) as handle:
        templates = json.load(handle)["ServiceTemplate"]
    template = templates["osop-" + check.replace("_", "-")]
    return int(template.get("check_timeout") or templates["osop-service"].get(
        "check_timeout") or 60)


def test_every_service_ran_our_plugin_as_its_command_line_does(practice):
    stack, checked, services = practice
    seen = set()
    for host, name, check, options in services:
        attrs = checked["%s!%s" % (host, name)]
        result = attrs["last_check_result"]
        assert attrs["check_command"] == "osop_" + check
        argv = result["command"]
        assert argv[0] == "%s/check_%s" % (director_peer.PLUGIN_DIR, check)
        # the command line the basket's arguments make of the vars: --timeout from the
        # template's check_timeout (or the command's 1m) less the margin, -v from the level
        options = dict(options)
        level = options.pop("verbose", 0)
        expected = icinga2.vars_to_argv(check, parser_of(check), director_vars(check, options))
        expected += ["-" + "v" * level] if level else []
        given = list(argv[1:])
        timeout = given.index("--timeout")
        assert int(given[timeout + 1]) == check_timeout(check) - generate.TIMEOUT_MARGIN
        del given[timeout:timeout + 2]
        assert sorted(given) == sorted(expected), (name, argv)
        by_hand = stack.run(*argv, user="nagios", check=False, timeout=120)
        assert result["exit_status"] == by_hand.returncode, (name, result["output"],
                                                             by_hand.stdout)
        assert result["output"].startswith(check.upper() + " "), result["output"]
        # Icinga keeps the text and the perfdata apart: compare the status line's text
        by_icinga = result["output"].split("\n")[0]
        assert words(by_icinga) == words(by_hand.stdout.split("\n")[0].split(" | ")[0]), name
        seen.add(check)
    assert seen == set(icinga2.all_check_names())


def test_icinga2_reads_our_perfdata_without_a_warning(practice):
    stack, checked, services = practice
    log = stack.icinga2_log()
    complaints = [line for line in log.splitlines()
                  if re.search(r"perf(ormance )?data", line, re.I)
                  and re.search(r"/(warning|critical)/", line)]
    assert not complaints, "\n".join(complaints[:10])
    with_perfdata = [n for n, a in checked.items()
                     if a["last_check_result"]["performance_data"]]
    assert len(with_perfdata) >= 5, with_perfdata


def test_only_the_headless_browser_skips_the_login_form(practice):
    """apache gives REMOTE_USER to the client with the stack's secret User-Agent alone;
    any other one gets Icinga Web 2's form, and the form's user logs in with its password."""
    import requests

    stack, _, _ = practice
    page = director_peer.SERVICE_LIST
    assert "authentication/login" in stack.http(page).headers.get("Location", "")
    assert stack.http(page, browser=True).status_code == 200
    with requests.Session() as session:
        login = stack.url("/icingaweb2/authentication/login")
        form = session.get(login, timeout=10)
        token = re.search(r'name="CSRFToken" value="([^"]+)"', form.text).group(1)
        reply = session.post(login, timeout=10, data={
            "username": director_peer.WEB_USER, "password": stack.web_password,
            "CSRFToken": token, "formUID": "form_login", "btn_submit": "Login"})
        assert reply.ok and "authentication/logout" in session.get(
            stack.url(page), timeout=10).text


def test_the_service_list_shows_a_service_of_every_check(practice, tmp_path):
    """Icinga Web 2's service list in a headless Chromium (logged in by apache's REMOTE_USER
    for its User-Agent): the page lists a service of each of the seven checks, as the
    screenshot shows (docs/director-service-list.png is one)."""
    need("chromium")
    stack, _, services = practice
    shot = str(tmp_path / "services.png")
    page = stack.screenshot(shot)
    missing = []
    for _host, name, check, _ in services:
        if name not in page or check.upper() not in page:
            missing.append((name, check))
    assert not missing, "not on the service list: %s" % missing
    with open(shot, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(shot) > 20000
    assert os.path.exists(os.path.join(ROOT, "docs", "director-service-list.png"))
