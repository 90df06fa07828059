"""Two real icinga2 instances on loopback, a master and an agent: the CA and certificates from
`icinga2 pki`, one zones.conf (master zone, agent zone below it, a global zone that syncs
commands.conf), and the shipped apply rule for a host with vars.client = "agent": the disk
check runs on the agent (command_endpoint = host.name), and the master's API shows
check_source = the agent and the agent's own OsopPluginDir in the command."""
import os
import shutil
import time

import pytest

from lab.peers import BIN, icinga2, need, need_root

pytestmark = pytest.mark.peer

MASTER = "master.osop.test"
AGENT = "agent.osop.test"


def zones(master_port, agent_port):
    return "\n".join([
        'object Endpoint "%s" { host = "127.0.0.1"; port = %d }' % (MASTER, master_port),
        'object Zone "master" { endpoints = [ "%s" ] }' % MASTER,
        'object Endpoint "%s" { host = "127.0.0.1"; port = %d }' % (AGENT, agent_port),
        'object Zone "%s" { endpoints = [ "%s" ]; parent = "master" }' % (AGENT, AGENT),
        'object Zone "global-templates" { global = true }',
    ])


def test_a_check_runs_on_the_agent_with_the_synced_command(tmp_path):
    need("icinga2")
    need_root()
    # The agent finds the plugins in its own directory: proof the command ran there.
    agent_plugins = tmp_path / "agent-plugins"
    agent_plugins.mkdir()
    os.symlink(os.path.join(BIN, "check_disk_partitions"),
               agent_plugins / "check_disk_partitions")

    master = icinga2.Icinga2(str(tmp_path / "master"), node=MASTER, zone="master")
    agent = icinga2.Icinga2(str(tmp_path / "agent"), node=AGENT,
                            plugin_dir=str(agent_plugins))
    # CA and certificates: `icinga2 pki new-ca`, `new-cert`, `sign-csr` (made once, cached)
    master.install_pki()
    agent.install_pki()
    text = zones(master.api_port, agent.api_port)

    global_dir = os.path.join(master.dirs["ZonesDir"], "global-templates")
    os.makedirs(global_dir)
    shutil.copy(os.path.join(icinga2.CONF, "commands.conf"), global_dir)
    host = ('object Host "%s" {\n\tcheck_command = "dummy"\n\taddress = "127.0.0.1"\n'
            '\tzone = "master"\n\tvars.client = "agent"\n'
            '\tvars.disks["/"] = { warning = "10%%"; critical = "5%%" }\n}\n'
            'object Service "short timeout" {\n\timport "osop-disk-partitions"\n'
            '\thost_name = "%s"\n\tzone = "master"\n\tcommand_endpoint = "%s"\n'
            '\tcheck_timeout = 20s\n}\n'
            % (AGENT, AGENT, AGENT))
    master.write_config([os.path.join(icinga2.CONF, f) for f in
                         ("templates.conf", "services.conf")], host, api=True, checker=True,
                        zones=text)
    agent.write_config([], "", api=True, zones=text)

    with agent, master:
        agent.start()
        master.start()
        name = "%s!disk /" % AGENT
        deadline = time.monotonic() + 90
        seen = []
        while True:
            since = time.time()
            master.force_checks('host.name == "%s"' % AGENT)
            services, pending = master.wait_for_results(
                since, names={name, "%s!short timeout" % AGENT}, timeout=10)
            res = services.get(name, {}).get("last_check_result")
            if res and res["execution_end"] >= since:
                seen.append(res["output"].splitlines()[0] if res["output"] else "")
                if res["output"].startswith("DISK_PARTITIONS"):
                    break
            assert time.monotonic() < deadline, (
                "the agent never ran the check; answers: %s\nmaster log:\n%s\nagent log:\n%s"
                % (seen[-5:], master.log_tail(3000), agent.log_tail(3000)))
            time.sleep(1)

    attrs = services[name]
    assert attrs["command_endpoint"] == AGENT
    assert res["check_source"] == AGENT
    assert res["command"][0] == str(agent_plugins / "check_disk_partitions")
    assert "--path" in res["command"] and "/" in res["command"]
    # the timeout lambda of commands.conf ran on the agent: Icinga's 1m minus the margin,
    # or the service's check_timeout minus the margin
    assert res["command"][res["command"].index("--timeout") + 1] == "55", res["command"]
    short = services["%s!short timeout" % AGENT]["last_check_result"]
    assert short["check_source"] == AGENT
    assert short["command"][short["command"].index("--timeout") + 1] == "15", short["command"]
    assert res["exit_status"] in (0, 1, 2)
    perf = icinga2.parse_perfdata(" ".join(res["performance_data"]))
    assert "/" in perf and perf["/"][1] == "B"
    # the agent got our CheckCommands through the global zone
    synced = os.path.join(agent.dirs["DataDir"], "api", "zones", "global-templates")
    assert any("commands.conf" in files for _, _, files in os.walk(synced)), synced
