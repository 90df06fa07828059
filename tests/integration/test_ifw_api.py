"""End to end in a real Icinga 2.14 (Debian 13's, chrooted; lab.peers.icinga2.trixie_root):
its built-in ifw-api sends our checks to osop-checks-api, run from this checkout on loopback.

One icinga2 start serves every case: each demo scenario is a service twice, forked (osop_x)
and through the API (osop_x_api), and both must give the same state and the same text (live
numbers aside). The daemons present Icinga's own certificates from `icinga2 pki` (RSA-4096),
one an ECDSA certificate signed with `icinga2 pki sign-csr` (Icinga's side presenting an ECDSA
one too), one trusts another CA and must refuse Icinga. A check that hangs (a black-holed TLS
peer) is UNKNOWN at its timeout while the daemon goes on serving.
The same scenarios are also compared directly against the daemon (no Icinga): API vs CLI.
"""
import contextlib
import os
import pwd
import re
import time

import pytest

from lab.peers import icinga2, ifw_api, need, need_root, run_plugin
from lab.peers.foreign_user import shared_tempdir
from lab.peers.tls import TestCA

pytestmark = pytest.mark.peer

HOST = "this-machine"
NODE = ifw_api.ICINGA_NODE


TRANSIENT = re.compile(r"osop|/tmp|tmp-|/run/")
# Icinga starts a round's checks at once: whether a check's second scenario finds the answer
# its first one cached depends on which of the two ran first, on either side.
CACHE_NOTE = re.compile(r"^answer cached at ")


def labels(perfdata):
    return [p.split("=")[0] for p in perfdata or [] if not TRANSIENT.search(p)]


def masked(text):
    """Output with its live numbers (free bytes, ages, durations) made equal, and without the
    long-output lines of the temporary mounts other tests on this machine come and go with."""
    lines = [line for line in (text or "").split("\n")[1:]
             if not TRANSIENT.search(line) and not CACHE_NOTE.match(line)]
    first = (text or "").split("\n")[:1]
    # "least free: /": a namespace test's /run/netns (the root filesystem again) ties with /,
    # and which of the two is a byte fuller changes from one call to the next
    first = [re.sub(r"least free: /run/\S+", "least free: /", line) for line in first]
    text = re.sub(r"\d+(\.\d+)?", "N", "\n".join(first + lines))
    return re.sub(r"N[a-z]+( N[a-z]+)*\b", "T", text)  # 1h vs 1h 1m: a minute later


def daemon_user_dir(path):
    """``path`` made, owned by the daemon's user (a state or cache home of its own)."""
    os.makedirs(path, exist_ok=True)
    account = pwd.getpwnam(ifw_api.DAEMON_USER)
    os.chown(path, account.pw_uid, account.pw_gid)
    return path


def forked_as_the_daemon_user(directory, install, home):
    """Icinga's PluginDir for the forked checks: each runs as the daemon's user from a copy
    it can read, with a state and cache home of its own, as the daemon's workers do, so the
    two answers compared are one user's."""
    account = pwd.getpwnam(ifw_api.DAEMON_USER)
    os.makedirs(directory, exist_ok=True)
    for check in icinga2.all_check_names():
        path = os.path.join(directory, "check_" + check)
        with open(path, "w") as handle:
            handle.write('#!/bin/sh\nexec /usr/sbin/chroot --userspec=%d:%d /mnt /usr/bin/env '
                         'HOME=%s XDG_STATE_HOME=%s/state XDG_CACHE_HOME=%s/cache %s "$@"\n' % (
                             account.pw_uid, account.pw_gid, home, home, home,
                             os.path.join(install, "check_" + check)))
        os.chmod(path, 0o755)
    return directory


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    need("debootstrap")
    need_root()
    root = icinga2.trixie_root()
    base = str(tmp_path_factory.mktemp("ifwapi-icinga2"))
    with contextlib.ExitStack() as stack:
        problems = {}
        scenarios, refused = [], []
        for check, title, argv in icinga2.scenario_services(stack, problems=problems):
            asked, why = ifw_api.as_a_caller_may_ask(check, argv)
            if asked is None:
                refused.append((check, title, argv, why))
            else:
                scenarios.append((check, title, asked))
        shared = stack.enter_context(shared_tempdir("ifwapi-e2e-"))
        # a backup log that is a FIFO nobody writes to: reading it blocks until the timeout
        tree = os.path.join(shared, "backup")
        os.makedirs(tree)
        open(os.path.join(tree, "file"), "w").close()
        os.mkfifo(os.path.join(shared, "backup.log"))
        hang = [("backup_age", "hangs", ["-p", tree, "--log", os.path.join(shared, "backup.log"),
                                         "-t", "3"])]
        disk = [("disk_partitions", "root", ["-p", "/", "-w", "20%"])]
        # the demo's own policy file: what its scenarios ask, and nothing else
        policy = ifw_api.policy_allowing([(c, a) for c, _, a in scenarios + hang + disk])
        fork_home = os.path.join(shared, "fork")
        for name in ("", "state", "cache"):
            daemon_user_dir(os.path.join(fork_home, name))
        wrappers = forked_as_the_daemon_user(os.path.join(base, "plugins"),
                                             ifw_api.daemon_install()[0], fork_home)
        instance = icinga2.Icinga2(os.path.join(base, "i"), node=NODE, root=root,
                                   plugin_dir=wrappers)
        instance.install_pki()
        certs = os.path.join(instance.dirs["DataDir"], "certs")
        ca = os.path.join(certs, "ca.crt")
        icinga = ifw_api.IcingaPki(ca, os.path.join(certs, NODE + ".crt"),
                                   os.path.join(certs, NODE + ".key"))
        # Icinga starts every check of the round at once; checks that wait on peers queue
        rsa = stack.enter_context(ifw_api.ApiDaemon(icinga, workers=8, policy=policy))
        # the scenarios asked straight from a daemon of their own (its own state files)
        direct = stack.enter_context(ifw_api.ApiDaemon(icinga, workers=4, policy=policy))
        # as installed: no api.conf of the admin's (the built-in policy: plain options only)
        default = stack.enter_context(ifw_api.ApiDaemon(icinga, workers=2, policy=None))
        plain = [s for s in scenarios if not ifw_api.asks_beyond_plain(s[0], s[2])]
        ec_cert, ec_key = ifw_api.ecdsa_pair(instance, "daemon")
        ec_client = ifw_api.ecdsa_pair(instance, "icinga")
        ecdsa = stack.enter_context(ifw_api.ApiDaemon(ifw_api.IcingaPki(ca, ec_cert, ec_key),
                                                      policy=policy))
        foreign = TestCA(os.path.join(base, "foreign"))
        strict = stack.enter_context(ifw_api.ApiDaemon(
            ifw_api.IcingaPki(foreign.ca_path, ec_cert, ec_key), policy=policy))
        text = ('object Host "%s" { check_command = "dummy" }\n' % HOST
                # run once, when forced: a check that remembers its last run (three_copies)
                # answers a second run otherwise, if icinga2's own schedule came first
                + icinga2.service_objects(HOST, scenarios, "fork ", scheduled=False)
                + icinga2.service_objects(HOST, scenarios, "api ", {"ifw_api_port": rsa.port},
                                          scheduled=False)
                + icinga2.service_objects(HOST, [r[:3] for r in refused], "refused ",
                                          {"ifw_api_port": rsa.port}, scheduled=False)
                + icinga2.service_objects(HOST, plain, "default ",
                                          {"ifw_api_port": default.port}, scheduled=False)

                + icinga2.service_objects(HOST, disk, "ecdsa ", {
                    "ifw_api_port": ecdsa.port, "ifw_api_cert": instance.inside(ec_client[0]),
                    "ifw_api_key": instance.inside(ec_client[1])})
                + icinga2.service_objects(HOST, disk, "foreign ", {"ifw_api_port": strict.port})
                + icinga2.service_objects(HOST, hang, "hang ", {"ifw_api_port": rsa.port}))
        includes = icinga2.shipped_includes()
        includes.insert(1, os.path.join(icinga2.CONF, "commands-api.conf"))
        instance.write_config(includes, text, api=True, checker=True)
        stack.enter_context(instance)
        instance.start()
        since = time.time()
        assert instance.force_checks() > 0
        services, pending = instance.wait_for_results(since, timeout=120)
        assert not pending, "no result for %s\n%s" % (pending, instance.log_tail())
        yield {"services": services, "scenarios": scenarios, "refused": refused, "plain": plain,
               "instance": instance, "rsa": rsa, "direct": direct, "problems": problems,
               "fork_home": fork_home, "default": default}


def result(world, name):
    return world["services"]["%s!%s" % (HOST, name)]["last_check_result"]


def test_it_is_icinga_2_14_from_debian_13(world):
    version = world["instance"].run("--version").stdout
    assert "r2.14." in version, version


def test_every_demo_scenario_answers_through_ifw_api_as_when_icinga_forks_it(world):
    """With the demo's own policy file, as the same user (the daemon's)."""
    assert world["scenarios"], world["problems"]
    differ = []
    for number, (check, title, argv) in enumerate(world["scenarios"], 1):
        forked = result(world, "fork %s %d" % (check, number))
        api = result(world, "api %s %d" % (check, number))
        assert api["command"][0] == "curl", title  # ifw-api ran it: no process
        assert forked["command"][0].endswith("/check_" + check), title
        if (api["exit_status"], api["state"], masked(api["output"]),
                labels(api["performance_data"])) != (
                forked["exit_status"], forked["state"], masked(forked["output"]),
                labels(forked["performance_data"])):
            differ.append("%s %s %s:\n  api  %s %r\n  fork %s %r" % (
                check, title, argv, api["exit_status"], api["output"],
                forked["exit_status"], forked["output"]))
    assert not differ, "\n".join(differ)


def test_a_scenario_that_names_a_program_or_a_file_written_is_refused_in_words(world):
    """A caller never chooses what runs or what is written on the host (issue 24): Icinga
    shows the daemon's reason, naming the option, as UNKNOWN."""
    assert world["refused"]
    for number, (check, title, _argv, why) in enumerate(world["refused"], 1):
        res = result(world, "refused %s %d" % (check, number))
        assert res["exit_status"] == 3, (title, res["output"])
        assert "osop-checks-api never takes it from a caller" in res["output"], (
            title, res["output"])
        assert why.split(" ")[0] in res["output"], (title, why, res["output"])


def test_with_the_default_policy_plain_scenarios_answer_and_a_path_is_refused_in_words(world):
    """No api.conf (the package as installed): the scenarios that name nothing on the host
    (this machine's disks, upgrades, units) answer through Icinga as when forked; -p /,
    asked of that daemon, is refused, saying where to allow it."""
    assert world["plain"], "no scenario with plain options only"
    number_of = {id(s): n for n, s in enumerate(world["scenarios"], 1)}
    for number, scenario in enumerate(world["plain"], 1):
        check, title, _argv = scenario
        forked = result(world, "fork %s %d" % (check, number_of[id(scenario)]))
        api = result(world, "default %s %d" % (check, number))
        assert (api["exit_status"], masked(api["output"])) == (
            forked["exit_status"], masked(forked["output"])), (title, api["output"],
                                                               forked["output"])
    status, answer = world["default"].call("check_disk_partitions", {"--path": "/"},
                                           server_name=NODE)
    refused = answer["check_disk_partitions"]
    assert (status, refused["exitcode"]) == (403, 3), (status, answer)
    assert "allow it in api.conf [check_disk_partitions] paths" in refused["checkresult"]


def test_an_ecdsa_certificate_on_both_sides_works(world):
    res = result(world, "ecdsa disk_partitions 1")
    assert res["exit_status"] == 0, res["output"]
    assert res["output"].startswith("DISK_PARTITIONS OK")


def test_a_daemon_trusting_another_ca_refuses_icinga(world):
    res = result(world, "foreign disk_partitions 1")
    # TLS 1.3: Icinga's side of the handshake is over before the daemon has read its
    # certificate, so the refusal shows as the connection reset under the request
    assert res["exit_status"] == 3
    assert "IfW API on host 'localhost'" in res["output"], res["output"]
    assert "DISK_PARTITIONS" not in res["output"]


def test_a_hanging_check_is_unknown_at_its_timeout_and_the_daemon_keeps_serving(world):
    # once more on its own: in the first round it queued behind the others for a worker
    instance = world["instance"]
    since = time.time()
    instance.force_checks('service.name == "hang backup_age 1"')
    services, pending = instance.wait_for_results(since, ["%s!hang backup_age 1" % HOST], 30)
    assert not pending
    res = services["%s!hang backup_age 1" % HOST]["last_check_result"]
    assert res["exit_status"] == 3
    assert "--timeout of 3 s" in res["output"], res["output"]
    assert 2.5 < res["execution_end"] - res["execution_start"] < 8
    status, answer = world["rsa"].call("check_disk_partitions", {"-p": "/"})
    assert status == 200 and answer["check_disk_partitions"]["exitcode"] == 0


def test_every_demo_scenario_gives_the_cli_answer_directly_from_the_daemon(world):
    daemon = world["direct"]
    home = os.path.join(world["fork_home"], "cli")
    for name in ("", "state", "cache"):
        daemon_user_dir(os.path.join(home, name))
    env = {"HOME": home, "XDG_STATE_HOME": home + "/state", "XDG_CACHE_HOME": home + "/cache"}
    for check, title, argv in world["scenarios"]:
        command = "check_" + check
        status, answer = daemon.call(command, ifw_api.icinga_body(check, argv),
                                     server_name=NODE)
        cli = run_plugin(command, argv, user=ifw_api.DAEMON_USER, env=env,
                         bin_dir=ifw_api.daemon_install()[0])
        text, perfdata = ifw_api.parse_output(cli.output)
        got = answer[command]
        label = "%s %s %s" % (check, title, argv)
        assert status == 200, label
        assert got["exitcode"] == cli.exitcode, (label, got, cli.output)
        assert masked(got["checkresult"]) == masked(text), label
        assert labels(got["perfdata"]) == labels(ifw_api.perf_items(perfdata)), label
