"""check_disk_partitions in SNMP mode against a real snmpd started on 127.0.0.1 for the demo."""
from lab.peers.snmpd import Snmpd


def scenarios(stack):
    agent = stack.enter_context(Snmpd())
    wrong = agent.write_secret("wrong-community", "not-the-community")
    port = ["-H", "127.0.0.1", "--snmp", "--snmp-port", str(agent.port)]
    return [
        ("SNMP v2c: every fixed disk the agent reports (community from a file)",
         ["check_disk_partitions"] + agent.v2c_args() + ["-w", "20%", "-c", "10%"]),
        ("SNMP v3 authPriv (SHA/AES): the root filesystem, verbose",
         ["check_disk_partitions"] + agent.v3_args() + ["-p", "/", "-v"]),
        ("SNMP: the agent's memory rows, by hrStorage type",
         ["check_disk_partitions"] + agent.v2c_args() + ["--storage-type", "ram", "-w", "5%",
                                                         "-c", "1%"]),
        ("SNMP: a mount point the agent does not have",
         ["check_disk_partitions"] + agent.v2c_args() + ["-p", "/data2"]),
        ("SNMP: a wrong community (the agent stays silent)",
         ["check_disk_partitions"] + port + ["--community-file", wrong, "--snmp-timeout",
                                             "0.5", "--snmp-retries", "1"]),
    ]
