"""Property-based tests for every parser: no input makes one raise anything but its own
documented error.

A parser that meets text it does not know must say so in words (proc.LayoutError, UnitError,
EchoError, ...), which the check turns into one UNKNOWN line; any other exception would be an
"internal error" at best. Parsers of checks still on their branches are skipped until merged
(importorskip), then join by existing.
"""
import argparse
import importlib
import json
import string

import nagiosplugin
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from osop_checks import cli, proc, units

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that looks a little like what the parsers read, and text that does not at all.
WORDS = st.sampled_from([
    "Inst", "Conf", "Remv", "upgraded,", "newly", "installed,", "to", "remove", "and", "not",
    "0", "1", "2", "[1.0]", "(2.0", "Debian-Security:12/stable-security", "[amd64])", "x86_64",
    "noarch", "updates", "UNIT", "LOAD", "ACTIVE", "SUB", "DESCRIPTION", "loaded", "failed",
    "active", "running", "NEXT", "LEFT", "LAST", "PASSED", "ACTIVATES", "Id=", "n/a", "\t",
    "f", "d", "l", "|", "\0", "\n", "ssh://", "@", ":", "/", "[", "]", "::1", "127.0.0.1",
    "2024-05-01", "03:00:00", "UTC", "Thu", "h", "s", "ago", "-", "=", "%", "{", "}", "\"",
])
LINEISH = st.lists(WORDS, max_size=12).map(" ".join)
TEXTISH = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(LINEISH, st.text(max_size=40)), max_size=12).map("\n".join),
)


def source(name):
    return pytest.importorskip("osop_checks.sources." + name)


def check(name):
    return pytest.importorskip("osop_checks.checks." + name)


def only(errors, parse, *args, **kwargs):
    """Call ``parse``; an exception other than ``errors`` fails the test."""
    try:
        return parse(*args, **kwargs)
    except errors:
        return None


# -- units: durations, sizes, percentages, counts, ranges ---------------------------------

QUANTITIES = [units.DURATION, units.DAYS, units.SIZE, units.PERCENT, units.COUNT]
NUMBERISH = st.one_of(
    st.text(alphabet="0123456789.eE+-:@~% kKMGTPiBsmhdw", max_size=20),
    st.text(max_size=20),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers().map(str),
)


@FAST
@given(st.sampled_from(QUANTITIES), NUMBERISH)
@example(units.SIZE, "1e400")
@example(units.DURATION, "1e308w")
@example(units.SIZE, "nanB")
def test_quantities_raise_only_unit_error(quantity, text):
    value = only(units.UnitError, quantity.parse, text)
    if value is not None:
        assert value == value and abs(value) != float("inf")


@FAST
@given(st.sampled_from(QUANTITIES), NUMBERISH, st.booleans())
def test_ranges_with_units_raise_only_unit_error(quantity, text, lower_bound):
    rng = only(units.UnitError, units.parse_range, text, quantity, lower_bound)
    if rng is not None:
        assert isinstance(rng, nagiosplugin.Range)
        assert not any(ch in str(rng) for ch in "| \n;")  # safe inside perfdata


@FAST
@given(st.integers(min_value=0, max_value=10 ** 6),
       st.sampled_from(sorted(units.DURATION.units)))
def test_durations_are_the_number_times_the_unit(number, unit):
    expected = float(number) * units.DURATION.units[unit]
    assert units.DURATION.parse("%d%s" % (number, unit)) == expected


@FAST
@given(st.integers(min_value=0, max_value=10 ** 6), st.sampled_from(sorted(units.SIZE.units)))
def test_sizes_are_the_number_times_the_unit(number, unit):
    assert units.SIZE.parse("%d%s" % (number, unit)) == float(number) * units.SIZE.units[unit]


@FAST
@given(st.floats(min_value=-1e18, max_value=1e18, allow_nan=False))
def test_human_formats_never_fail(value):
    assert units.format_size(abs(value))
    assert units.format_duration(value)


# -- the argparse types every option goes through ------------------------------------------

def _types():
    yield cli.duration_type(minimum=1, maximum=86400)
    yield cli.count_type(minimum=0, maximum=100)
    yield cli.regex_type
    yield cli.state_type()
    yield cli.state_type(("warning", "critical"))
    for quantity in QUANTITIES:
        yield cli.range_type(quantity, lower_bound=True)
        yield cli.quantity_type(quantity, minimum=0)


TYPES = list(_types())


@FAST
@given(st.sampled_from(range(len(TYPES))), NUMBERISH)
def test_option_types_raise_only_argument_type_error(index, text):
    only(argparse.ArgumentTypeError, TYPES[index], text)


@FAST
@given(st.text(max_size=40))
@example("/data2=10%/5%")
@example("=/")
@example("/x=10%,,/5%")
def test_disk_thresholds_raise_only_argument_type_error(text):
    disk = check("disk_partitions")
    only(argparse.ArgumentTypeError, disk.free_thresholds, text)
    only(argparse.ArgumentTypeError, disk.inode_threshold, text)
    only(argparse.ArgumentTypeError, disk.path_threshold, text)


# -- systemctl output -----------------------------------------------------------------------

def _json_rows():
    value = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20),
                      st.lists(st.integers(), max_size=2))
    row = st.dictionaries(st.sampled_from(["unit", "load", "active", "sub", "description",
                                           "next", "left", "last", "passed", "activates"]),
                          value, max_size=10)
    return st.lists(st.one_of(row, value), max_size=5).map(json.dumps)


SYSTEMCTL = st.one_of(
    TEXTISH, _json_rows(),
    st.lists(LINEISH, max_size=8).map(lambda rows: "\n".join(
        ["UNIT LOAD ACTIVE SUB DESCRIPTION"] + rows)),
    st.lists(LINEISH, max_size=8).map(lambda rows: "\n".join(
        ["NEXT LEFT LAST PASSED UNIT ACTIVATES"] + rows)),
    st.lists(st.tuples(st.sampled_from(["Id", "LoadState", "ActiveState", "SubState",
                                        "ActiveEnterTimestamp", "ExecMainStatus",
                                        "LastTriggerUSec", "ConditionTimestamp", "X-y"]),
                       st.text(max_size=30)), max_size=8).map(
        lambda kv: "\n".join("%s=%s" % pair for pair in kv)),
)


@FAST
@given(SYSTEMCTL)
def test_systemctl_parsers_raise_only_check_errors(text):
    systemd = source("systemd")
    for parse in (systemd.parse_units_json, systemd.parse_units_table,
                  systemd.parse_timers_json, systemd.parse_timers_table, systemd.parse_show,
                  systemd.parse_state, systemd.parse_timestamp):
        only(nagiosplugin.CheckError, parse, text)


@FAST
@given(st.one_of(st.text(max_size=40), st.lists(WORDS, max_size=6).map(" ".join)))
@example("Thu 2024-05-01 03:00:00 UTC")
@example("Thu 9999-99-99 99:99:99 UTC")
@example("n/a")
def test_systemd_timestamps_raise_only_check_errors(text):
    systemd = source("systemd")
    only(nagiosplugin.CheckError, systemd.parse_timestamp, text)


@FAST
@given(st.text(max_size=40))
def test_systemctl_command_splits_or_says_why(text):
    systemd = source("systemd")
    argv = only(ValueError, systemd.split_command, text)
    assert argv is None or (argv and all(isinstance(a, str) for a in argv))


# -- TLS endpoint strings and certificate files ---------------------------------------------

ENDPOINT = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(["www.example.org", "@", ":", "443", "99999", "0", "/", "smtp",
                              "ldap", "none", "[", "]", "::1", "127.0.0.1", "x", " ", "#"]),
             max_size=8).map("".join),
)


@FAST
@given(ENDPOINT)
@example("[::1")
@example("a@")
@example("[::1]x")
@example("host:65536")
def test_tls_endpoints_raise_only_their_errors(text):
    tls_check = check("tls_expiry")
    endpoint = only(ValueError, tls_check.parse_endpoint, text)
    only(argparse.ArgumentTypeError, tls_check.endpoint_type, text)
    if endpoint is not None:
        assert 0 < endpoint.port < 65536


@FAST
@given(st.one_of(st.binary(max_size=300), st.lists(st.sampled_from([
    b"-----BEGIN CERTIFICATE-----\n", b"-----END CERTIFICATE-----\n", b"MIIB", b"\x30\x82",
    b"-----BEGIN PKCS7-----\n", b"-----END PKCS7-----\n", b"=\n", b"\xff"]), max_size=8).map(
    b"".join)))
def test_certificate_files_raise_only_value_error(data):
    pytest.importorskip("cryptography")
    tls = source("tls")
    only(ValueError, tls.parse_bundle, data)


def test_endpoint_file_lines_raise_only_usage_error(tmp_path):
    tls_check = check("tls_expiry")
    path = tmp_path / "endpoints"
    for line in ["a@", "[::1", "host:0", "x/nope", "ok.example:443 # fine", "\udcff",
                 "\udcff\udcfe"]:
        path.write_text(line + "\n", errors="surrogateescape")
        only(cli.UsageError, tls_check.read_endpoint_file, str(path))


# -- apt and dnf output (os_upgrades) --------------------------------------------------------

APT = st.one_of(
    TEXTISH,
    st.lists(st.one_of(
        st.builds("Inst {} [{}] ({} {} [{}])".format, st.text(max_size=8), st.text(max_size=6),
                  st.text(max_size=6), st.text(max_size=20), st.text(max_size=6)),
        st.builds("{} upgraded, {} newly installed, {} to remove and {} not upgraded.".format,
                  st.integers(-1, 3), st.integers(-1, 3), st.integers(0, 3),
                  st.integers(0, 3)),
        st.just("The following packages have been kept back:"), st.just("  a b c"),
        st.builds("Remv {}".format, st.text(max_size=10)),
        st.builds("Package: {}".format, st.text(max_size=10)),
        st.builds("Status: {} ok installed".format, st.sampled_from(["hold", "install", ""])),
        LINEISH), max_size=10).map("\n".join),
)


@FAST
@given(APT)
def test_apt_parsers_raise_only_layout_error(text):
    apt = source("apt")
    upgrades = only(proc.LayoutError, apt.parse_simulation, text)
    for upgrade in upgrades or ():
        assert upgrade.package
    assert isinstance(apt.parse_kept_back(text), list)
    assert isinstance(apt.parse_removals(text), list)
    assert isinstance(apt.parse_holds(text), list)
    for word in text.split()[:5]:
        apt.is_security_origin(word)


DNF = st.one_of(
    TEXTISH,
    st.lists(st.one_of(
        st.builds("{}.{} {} {}".format, st.text(string.ascii_letters, max_size=8),
                  st.sampled_from(["x86_64", "noarch", "bogus", ""]), st.text(max_size=8),
                  st.text(max_size=8)),
        st.builds("{} {} {}-{}-{}.{}".format, st.text(max_size=8), st.text(max_size=8),
                  st.text(max_size=8), st.text(max_size=5), st.text(max_size=5),
                  st.sampled_from(["x86_64", "noarch", "zz"])),
        st.just("Obsoleting Packages"), st.just("Name Type Severity Package Issued"),
        st.just("Last metadata expiration check: 0:01:02 ago"), LINEISH), max_size=10).map(
        "\n".join),
)


@FAST
@given(DNF)
def test_dnf_parsers_raise_only_layout_error(text):
    dnf = source("dnf")
    upgrades = only(proc.LayoutError, dnf.parse_check_update, text)
    advisories = only(proc.LayoutError, dnf.parse_updateinfo, text)
    if upgrades is not None and advisories is not None:
        dnf.classify(upgrades, advisories)
    for word in text.split()[:5]:
        dnf.split_nevra(word)


@FAST
@given(st.text(max_size=30))
def test_kernel_version_keys_always_sort(text):
    kernel = source("kernel")
    sorted([kernel.version_key(text), kernel.version_key("6.1.0-9-amd64")])


# -- manifests and find listings (three_copies) ----------------------------------------------

RECORD = st.one_of(
    st.builds("{}\t{}\t{}\t{}".format, st.sampled_from(["f", "d", "l", "x", ""]),
              st.one_of(st.integers(-1, 10 ** 6).map(str), st.text(max_size=4)),
              st.one_of(st.floats(0, 2e9).map(str), st.text(max_size=4)),
              st.text(max_size=20)),
    st.text(max_size=30),
    LINEISH,
)
SOURCE_RECORD = st.one_of(
    st.builds("{}\t{}".format, st.one_of(st.floats(0, 2e9).map(str), st.text(max_size=4)),
              RECORD),
    st.text(max_size=30),
)


@FAST
@given(st.one_of(st.text(max_size=40), st.lists(st.sampled_from([
    "ssh://", "user", "@", "host", ":", "22", "/srv/x", "[", "::1", "]", "-oProxy", " ",
    "..", "/"]), max_size=8).map("".join)))
def test_locations_raise_only_location_error(text):
    manifest = source("manifest")
    location = only(manifest.LocationError, manifest.parse_location, text)
    if location is not None:
        assert location.path.startswith("/")
        assert not (location.host or "x").startswith("-")


@FAST
@given(st.one_of(st.text(max_size=30), st.lists(st.sampled_from(
    ["ok", "missing", "notdir", "unreadable", "2049", "-", "1.5", "x", " "]),
    max_size=4).map(" ".join)))
def test_probe_answers_raise_only_command_error(line):
    manifest = source("manifest")
    proc = importlib.import_module("osop_checks.proc")
    only(proc.CommandError, manifest.parse_probe, line)


@FAST
@given(st.lists(SOURCE_RECORD, max_size=6), st.lists(st.lists(RECORD, max_size=6), min_size=1,
                                                      max_size=3))
def test_corrupt_find_listings_raise_only_check_errors(source_lines, copies):
    """A corrupt listing (a copy over ssh writing garbage) is an UNKNOWN in words."""
    manifest = source("manifest")
    only(nagiosplugin.CheckError, manifest.compare, sorted(source_lines),
         [sorted(c) for c in copies], now=2e9, settle=0)


@FAST
@given(st.one_of(st.text(max_size=200), st.lists(st.builds(
    "{}{}{}".format, st.text("0123456789abcdef", min_size=60, max_size=66),
    st.sampled_from(["  ", " *", " "]), st.text(max_size=10)), max_size=4).map("\0".join)))
def test_checksum_output_never_fails(text):
    manifest = source("manifest")
    assert isinstance(manifest.parse_hashes(text), dict)


# -- IP echo answers and DNS servers (dyndns_match) -----------------------------------------

@FAST
@given(st.one_of(st.binary(max_size=100), st.text(max_size=100), st.ip_addresses().map(str),
                 st.ip_addresses().map(lambda a: " %s\r\n" % a),
                 st.ip_addresses().map(lambda a: "<html>%s</html>" % a)))
@example(b"\xff\xfe")
@example("fe80::1%eth0")
@example("1.2.3.4 | 5.6.7.8\n")
def test_ip_echo_answers_raise_only_echo_error(body):
    publicip = source("publicip")
    address = only(publicip.EchoError, publicip.parse_echo, body)
    if address is not None:
        assert "|" not in address and "\n" not in address and len(address) <= 45


@FAST
@given(st.one_of(st.text(max_size=40), st.lists(st.sampled_from(
    ["[", "]", ":", "53", "0", "99999", "::1", "127.0.0.1", "x", " "]), max_size=6).map("".join)))
def test_dns_servers_raise_only_value_error(text):
    dns = source("dns")
    server = only(ValueError, dns.parse_server, text)
    if server is not None:
        assert 0 < server[1] < 65536
        assert dns.parse_server(dns.format_server(server)) == server


@FAST
@given(st.dictionaries(st.lists(st.integers(0, 300), max_size=20).map(tuple),
                       st.dictionaries(st.integers(1, 10), st.one_of(
                           # any integer: an agent's Integer where an address is due
                           # once made bytes(n) allocate n bytes
                           st.integers(), st.binary(max_size=6), st.text(max_size=6)),
                           max_size=4), max_size=4))
@example({(1, 2, 3, 4): {1: 2 ** 40, 3: 2 ** 40}})
def test_snmp_address_tables_never_fail(table):
    snmp_address = source("snmp_address")
    snmp_address.parse_ip_address_table(table)
    snmp_address.parse_ip_addr_table(table)


@FAST
@given(st.lists(st.integers(-1, 300), max_size=24))
def test_inet_address_indexes_raise_only_value_error(index):
    snmp = source("snmp")
    only(ValueError, snmp.inet_address, tuple(index))


@FAST
@given(st.text(max_size=40))
def test_oids_raise_only_value_error(text):
    snmp = source("snmp")
    only(ValueError, snmp.oid, text)


# -- the router's UPnP answers (dyndns_match --router-upnp) --------------------------------

XMLISH = st.lists(st.sampled_from([
    "<root>", "</root>", "<service>", "</service>", "<serviceType>", "</serviceType>",
    "urn:schemas-upnp-org:service:WANIPConnection:1", "<controlURL>", "</controlURL>", "/ctl",
    "http://192.168.178.1:49000/x", "<URLBase>", "</URLBase>", "<s:Envelope xmlns:s='x'>",
    "</s:Envelope>", "<Fault>", "</Fault>", "<errorCode>", "401", "</errorCode>",
    "<NewExternalIPAddress>", "</NewExternalIPAddress>", "80.81.82.83", "100.64.7.2", "::1",
    "<NewIPv6Prefix>", "</NewIPv6Prefix>", "2003:a:1234:5600::", "/56", "fd00::",
    "<NewPrefixLength>", "</NewPrefixLength>", "56", "0", "999",
    "<!DOCTYPE root [<!ENTITY a 'x'>]>", "&a;", "&amp;", "<?xml version='1.0'?>", "<", ">",
    "\0", "\xff", "|", " "]), max_size=16).map("".join)


@FAST
@given(st.one_of(XMLISH, st.text(max_size=200)).map(lambda t: t.encode("utf-8",
                                                                         "surrogatepass")))
@example(b"<root><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1"
         b"</serviceType><controlURL>http://[::1</controlURL></service></root>")
def test_upnp_documents_raise_only_upnp_error(body):
    upnp = source("upnp")
    services = only(upnp.UpnpError, upnp.parse_description, body,
                    "http://192.168.178.1:49000/igd.xml")
    for service in services or ():
        assert service.control_url.startswith("http://192.168.178.1:49000/")
    address = only(upnp.UpnpError, upnp.parse_external_address, body)
    assert address is None or address in ("80.81.82.83",)
    prefix = only(upnp.UpnpError, upnp.parse_ipv6_prefix, body)
    assert prefix is None or (prefix.is_global and 0 < prefix.prefixlen <= 128)


@FAST
@given(st.one_of(st.binary(max_size=200), st.lists(st.sampled_from([
    "HTTP/1.1 200 OK", "\r\n", "LOCATION:", " http://192.168.178.1:49000/x", "http://[::1",
    "ST: x", ":", "\n", "\xff"]), max_size=10).map(lambda t: "".join(t).encode("latin-1"))))
def test_ssdp_answers_raise_only_upnp_error(datagram):
    upnp = source("upnp")
    answer = only(upnp.UpnpError, upnp.parse_ssdp, datagram, "192.168.178.1")
    if answer is not None:
        assert answer.location.startswith(("http://192.168.178.1", "https://192.168.178.1"))


# -- backup stamps, snapshot names and logs (backup_age) ------------------------------------

@FAST
@given(st.one_of(st.text(max_size=60), st.lists(st.sampled_from(
    ["2024", "-", "13", "05", "01", "T", " ", "03", ":", "00", "Z", "+", "99", "@", "1714532400",
     ".5", "99999999999"]), max_size=12).map("".join)))
def test_backup_stamps_and_names_never_fail(text):
    tree = source("tree")
    when = tree.parse_stamp(text)
    assert when is None or isinstance(when, float)
    for name_format in ("auto",):
        tree.name_time(text, name_format)


@FAST
@given(st.lists(st.one_of(st.text(max_size=40), st.sampled_from([
    "rsync error: some files could not be transferred (code 23)",
    "total size is 10  speedup is 1.00", "exit code 0", "exit code 2", "== start =="])),
    max_size=8).map("\n".join))
def test_backup_logs_never_fail(text):
    import re

    tree = source("tree")
    verdict = tree.log_verdict(text, start_pattern=re.compile("start"))
    assert verdict.state in ("ok", "error", "none")
    assert tree.log_verdict(text).state in ("ok", "error", "none")


# -- SNMP storage tables (disk_partitions --snmp) --------------------------------------------

SNMP_VALUE = st.one_of(st.integers(-2 ** 40, 2 ** 40), st.binary(max_size=8),
                       st.text(max_size=8), st.none(),
                       st.sampled_from(["1.3.6.1.2.1.25.2.1.4", ".1.3.6.1.2.1.25.2.1.99", "1.x"]))


@FAST
@given(st.dictionaries(st.lists(st.integers(0, 5), min_size=1, max_size=2).map(tuple),
                       st.dictionaries(st.integers(1, 16), SNMP_VALUE, max_size=16),
                       max_size=4))
def test_snmp_storage_tables_raise_only_snmp_errors(table):
    """What an agent answers (a buggy one: strings where numbers are due) is left out or an
    SnmpError, never a bare ValueError."""
    storage = source("snmp_storage")
    snmp = source("snmp")
    rows = only(snmp.SnmpError, storage.parse_storage, table)
    dsks = only(snmp.SnmpError, storage.parse_dsk, table)
    if rows is not None and dsks is not None:
        for part in storage.partitions(rows, dsks):
            assert part.free >= 0
