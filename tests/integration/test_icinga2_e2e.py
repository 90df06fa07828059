"""End to end on a real Icinga 2: the shipped commands, templates and apply rules run our
checks on this machine and on the loopback peers of every check's demo scenarios.

One icinga2 daemon in the foreground (API on an ephemeral loopback port, certificate from
`icinga2 pki`), one forced check round through /v1/actions/reschedule-check, results read from
/v1/objects/services. A check joins by being merged with its lab/demo/<check>.py: its
scenarios become services (their argv turned into the CheckCommand's custom vars), and the
test asserts that Icinga ran exactly that argv and got the check's own answer.
"""
import contextlib
import importlib
import os
import re
import time

import pytest

from lab.peers import IN_CI, icinga2, need, need_root, run_plugin

pytestmark = pytest.mark.peer

HOST = "this-machine"
CHECKS = icinga2.all_check_names()
WORDS = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}  # a status line's word per exit code

# Extra services proving the Icinga-side plumbing: switches (set_if), repeat_key, timeouts.
EXTRA = """
object Service "missing path" {
	import "osop-disk-partitions"
	host_name = "this-machine"
	vars.disk_partitions_path = [ "/", "/nonexistent-osop" ]
}
object Service "missing path ignored" {
	import "osop-disk-partitions"
	host_name = "this-machine"
	vars.disk_partitions_path = [ "/", "/nonexistent-osop" ]
	vars.disk_partitions_ignore_missing = true
	vars.disk_partitions_verbose = true
}
object Service "short check_timeout" {
	import "osop-disk-partitions"
	host_name = "this-machine"
	check_timeout = 20s
}
object Service "own timeout" {
	import "osop-disk-partitions"
	host_name = "this-machine"
	vars.disk_partitions_timeout = "7s"
}
object Service "verbose level" {
	import "osop-disk-partitions"
	host_name = "this-machine"
	vars.disk_partitions_verbose = "2"
}
"""


@pytest.fixture(scope="module")
def watched(tmp_path_factory):
    need("icinga2")
    need_root()
    problems = {}
    with contextlib.ExitStack() as stack:
        scenarios = icinga2.scenario_services(stack, problems=problems)
        text = (icinga2.local_inventory(HOST) + icinga2.service_objects(HOST, scenarios)
                + EXTRA)
        instance = stack.enter_context(
            icinga2.running(str(tmp_path_factory.mktemp("icinga2")), text))
        since = time.time()
        assert instance.force_checks() > 0
        services, pending = instance.wait_for_results(since, timeout=150)
        assert not pending, "no check result from icinga2 for %s\n%s" % (
            pending, instance.log_tail())
        yield {"services": services, "scenarios": scenarios,
               "problems": problems, "instance": instance}


def result(watched, name):
    attrs = watched["services"]["%s!%s" % (HOST, name)]
    return attrs["last_check_result"]


def option_value(command, flag):
    """The value after ``flag`` in an argv list (or in --flag=value form)."""
    for i, item in enumerate(command):
        if item == flag:
            return command[i + 1]
        if item.startswith(flag + "="):
            return item.split("=", 1)[1]
    return None


def test_the_disk_apply_rule_runs_check_disk_partitions_like_a_direct_run(watched):
    res = result(watched, "disk /")
    assert res["command"][0] == os.path.join(icinga2.BIN, "check_disk_partitions")
    assert option_value(res["command"], "--path") == "/"
    assert option_value(res["command"], "--warning") == "10%"
    assert res["check_source"] == watched["instance"].node
    direct = run_plugin("check_disk_partitions", ["-p", "/", "-w", "10%", "-c", "5%"])
    assert res["exit_status"] == direct.exitcode
    assert res["output"].split(" - ")[0] == direct.output.split(" - ")[0]
    assert res["output"].startswith("DISK_PARTITIONS ")
    perf = icinga2.parse_perfdata(" ".join(res["performance_data"]))
    # '/ full in' joins once the runs Icinga made saw / grow (the rate needs three runs)
    assert {"/", "/ inodes"} <= set(perf) <= {"/", "/ inodes", "/ full in"}
    value, uom = perf["/"]
    assert uom == "B"
    st = os.statvfs("/")
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    assert abs(value - used) < max(0.02 * used, 64 << 20)


def test_a_switch_is_set_if_and_a_list_repeats_its_key(watched):
    strict = result(watched, "missing path")
    relaxed = result(watched, "missing path ignored")
    assert strict["command"].count("--path") == 2
    assert "--ignore-missing" not in strict["command"]
    assert strict["exit_status"] == 2 and "/nonexistent-osop" in strict["output"]
    assert "--ignore-missing" in relaxed["command"] and "-v" in relaxed["command"]
    assert relaxed["exit_status"] == 0, relaxed["output"]


def test_verbose_passes_its_level(watched):
    """<name>_verbose = true is -v (above); a level is that many: "2" is -vv."""
    chatty = result(watched, "verbose level")
    assert "-vv" in chatty["command"] and "-v" not in chatty["command"], chatty["command"]
    assert chatty["exit_status"] == 0, chatty["output"]
    assert "-v" not in result(watched, "disk /")["command"]


def test_the_plugin_timeout_follows_icinga_timeouts(watched):
    # the command's timeout is 1m, the plugin stops 5 s earlier; check_timeout overrides it
    assert option_value(result(watched, "disk /")["command"], "--timeout") == "55"
    assert option_value(result(watched, "short check_timeout")["command"], "--timeout") == "15"
    assert option_value(result(watched, "own timeout")["command"], "--timeout") == "7s"


@pytest.mark.parametrize("check", CHECKS)
def test_every_check_runs_through_its_command(watched, check):
    """Each demo scenario of ``check``, run by Icinga through osop_<check>: the argv Icinga
    built is the scenario's, and the answer is the check's own (no usage error)."""
    module = importlib.import_module("osop_checks.checks." + check)
    parser = module.build_parser()
    mine = [(n, s) for n, s in enumerate(watched["scenarios"], 1) if s[0] == check]
    if not mine:
        message = "no demo scenario for check_%s (lab/demo/%s.py)%s" % (
            check, check, "; demo problems: %s" % watched["problems"]
            if watched["problems"] else "")
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    for number, (_, title, argv) in mine:
        attrs = watched["services"]["%s!%s %d" % (HOST, check, number)]
        res = attrs["last_check_result"]
        label = "%s (%s)" % (title, " ".join(argv))
        assert attrs["check_command"] == "osop_" + check
        assert res["command"][0] == os.path.join(icinga2.BIN, "check_" + check)
        ran = icinga2.argv_to_vars(check, parser, res["command"][1:])
        ran.pop("%s_timeout" % check)
        wanted = icinga2.argv_to_vars(check, parser, argv)
        wanted.pop("%s_timeout" % check, None)
        assert ran == wanted, label
        # the code Icinga recorded is the one the check printed (the scenarios carry no
        # expected state; the tests of each check assert those)
        assert res["output"].startswith(module.NAME + " "), (label, res["output"])
        assert res["output"].split()[1] == WORDS.get(res["exit_status"]), (label, res)
        assert "Traceback" not in res["output"] and "(see --help)" not in res["output"], (
            label, res["output"])
        for item in res["performance_data"]:
            assert re.match(r"^('[^']*'|[^ =']+)=-?[\d.]+", item), (label, item)


def test_every_label_icinga_recorded_is_listed(watched):
    """The perfdata Icinga got from every demo scenario: each label is in
    tests/perfdata-labels.txt with the unit the check printed."""
    from tests import perfdata_labels

    found = []
    for name, attrs in sorted(watched["services"].items()):
        check = icinga2.check_of(attrs)
        result = attrs.get("last_check_result") or {}
        if check is None or not result:
            continue
        perf = icinga2.parse_perfdata(" ".join(result.get("performance_data") or []))
        found += ["%s: %s" % (name, x) for x in perfdata_labels.unlisted(
            check, [(label, unit) for label, (_, unit) in perf.items()])]
    assert not found, found
