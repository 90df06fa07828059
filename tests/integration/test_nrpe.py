"""The shipped NRPE commands (icinga2-conf/nrpe/osop_checks.cfg) on a real nrpe, asked with
Debian's check_nrpe, and the matching Icinga2 services (nrpe/services.conf) through the
ITL's nrpe CheckCommand on a real icinga2."""
import importlib
import os
import time

import pytest

from lab.peers import icinga2, need, nrpe

pytestmark = pytest.mark.peer

CHECKS = icinga2.all_check_names()
# The word of each exit code in a status line: the code Icinga gets must be the one the
# check printed (the shipped command lines watch this host, whose state decides which).
WORDS = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}


def shipped_argv(check):
    import shlex

    for line in open(nrpe.SHIPPED):
        if line.startswith("command[check_osop_%s]=" % check):
            return shlex.split(line.split("=", 1)[1])[1:]
    raise AssertionError("no NRPE command for " + check)


def test_disk_partitions_answers_through_nrpe_as_when_run_directly(osop_nrpe, foreign_install):
    code, output = nrpe.ask(osop_nrpe, "check_osop_disk_partitions")
    direct = foreign_install.run("check_disk_partitions", shipped_argv("disk_partitions"),
                                 user=nrpe.USER)
    assert code == direct.exitcode, output
    assert output.split(" - ")[0] == direct.output.split(" - ")[0]
    first = output.splitlines()[0]
    assert first.startswith("DISK_PARTITIONS ") and "|" in first
    assert "Traceback" not in output


@pytest.mark.parametrize("check", CHECKS)
def test_every_shipped_command_gives_the_checks_own_answer(osop_nrpe, check):
    name = importlib.import_module("osop_checks.checks." + check).NAME
    code, output = nrpe.ask(osop_nrpe, "check_osop_" + check)
    assert output.startswith(name + " ") and output.split()[1] == WORDS.get(code), (code, output)
    assert "(see --help)" not in output, "the shipped arguments are wrong: " + output
    assert "Traceback" not in output


def test_an_unknown_command_is_nrpes_own_unknown(osop_nrpe):
    code, output = nrpe.ask(osop_nrpe, "check_osop_nonexistent")
    assert code == 3 and "not defined" in output


def test_icinga2_services_call_the_shipped_commands(osop_nrpe, tmp_path):
    need("icinga2")
    host = "\n".join([
        'object Host "legacy-vm" {',
        '\tcheck_command = "dummy"',
        '\taddress = "127.0.0.1"',
        '\tvars.client = "nrpe"',
        '\tvars.os = "Linux"',
        '\tvars.nrpe_port = %d' % osop_nrpe.port,
        '\tvars.nrpe_checks = %s' % icinga2.quote(CHECKS),
        "}",
    ])
    includes = icinga2.shipped_includes() + [os.path.join(icinga2.CONF, "nrpe", "services.conf")]
    with icinga2.running(str(tmp_path), host, includes=includes) as instance:
        since = time.time()
        instance.force_checks()
        services, pending = instance.wait_for_results(since, timeout=90)
    assert not pending
    by_command = {}
    for attrs in services.values():
        assert attrs["check_command"] == "nrpe"
        res = attrs["last_check_result"]
        assert res["command"][0] == "/usr/lib/nagios/plugins/check_nrpe"
        command = res["command"][res["command"].index("-c") + 1]
        by_command[command] = res
    assert sorted(by_command) == sorted("check_osop_" + c for c in CHECKS)
    for check in CHECKS:
        res = by_command["check_osop_" + check]
        name = importlib.import_module("osop_checks.checks." + check).NAME
        assert res["output"].startswith(name + " "), res["output"]
        assert res["output"].split()[1] == WORDS.get(res["exit_status"]), res
    disk = by_command["check_osop_disk_partitions"]
    assert "/" in icinga2.parse_perfdata(" ".join(disk["performance_data"]))
