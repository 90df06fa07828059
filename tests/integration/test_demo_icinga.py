"""`make demo`'s Icinga part shows all seven checks: the demo groups that start network
namespaces (TLS's dual-stack name, DynDNS's UPnP router) run first, as `make demo` runs them,
and Icinga then watches the same peers (lab/demo/__main__.py hands them on): no group starts
twice, none drops out of the table, and the demo exits 0 only with every check in it."""
import re

import pytest

from lab.peers import icinga2, need, need_root

pytestmark = pytest.mark.peer


def table_counts(output):
    """{check: services in the printed Icinga table} (from its command column)."""
    counts = {}
    for check in re.findall(r"^this-machine  .*?  osop_([a-z_]+)  ", output, re.M):
        counts[check] = counts.get(check, 0) + 1
    return counts


def test_the_demo_icinga_table_has_services_of_all_seven_checks(monkeypatch, capfd):
    need_root()
    need("icinga2", "ip", "faketime", "sshd", "dnsmasq", "miniupnpd")
    from lab.demo import __main__ as demo_main
    from lab.demo import icinga2 as demo_icinga2

    monkeypatch.setattr(demo_icinga2, "ROUNDS", 1)
    code = demo_main.main(["tls_expiry", "dyndns_match", "icinga2"])
    output = capfd.readouterr().out
    assert "services: " in output, output[-3000:]
    assert "FAILED" not in output, output[-3000:]
    counts = table_counts(output)
    assert sorted(counts) == icinga2.all_check_names(), counts
    assert counts["tls_expiry"] >= 20 and counts["dyndns_match"] >= 12, counts
    assert code == 0


def test_a_check_missing_from_the_table_is_named():
    services = {"h!a": {"check_command": "osop_disk_partitions",
                        "last_check_result": {"exit_status": 0}},
                "h!b": {"check_command": "osop_tls_expiry"}}  # pending: no result
    missing = icinga2.missing_checks(services)
    assert "disk_partitions" not in missing and "tls_expiry" in missing
    words = str(icinga2.MissingServices({"practice": "RuntimeError: no faketime"}, missing))
    assert "demo practice did not start" in words and "osop_tls_expiry" in words
