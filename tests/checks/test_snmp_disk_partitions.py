"""check_disk_partitions in SNMP mode, judged on recorded walks (no network), and the promise
that local mode never imports pysnmp."""
import json
import re
import subprocess
import sys

import pytest

from osop_checks.checks import disk_partitions as dp
from osop_checks.sources import disks, snmp, snmp_storage as st
from lab.peers import run_inprocess
from lab.peers.snmpd import as_table, load_walk

GiB = 2 ** 30
SNMP = ["-H", "nas", "--snmp", "--community", "public"]


def recorded(hr="netsnmp-5.9.3_debian12_hrStorageTable.txt",
             dsk="netsnmp-5.9.3_debian12_dskTable.txt"):
    storages = st.parse_storage(as_table(load_walk(hr), st.HR_STORAGE_ENTRY))
    dsks = st.parse_dsk(as_table(load_walk(dsk), st.DSK_ENTRY)) if dsk else []
    return st.partitions(storages, dsks)


class Module:
    """disk_partitions with its remote source replaced by recorded partitions."""
    NAME = dp.NAME
    build_parser = staticmethod(dp.build_parser)

    def __init__(self, parts=None, error=None):
        self.parts, self.error, self.targets = parts, error, []

    def build_check(self, args):
        def fetch(target):
            self.targets.append(target)
            if self.error:
                raise self.error
            return self.parts if self.parts is not None else recorded()

        def no_local(*a, **kw):
            raise AssertionError("local source used in SNMP mode")
        return dp.build_check(args, list_mounts=no_local, usage=no_local, fstab=no_local,
                              fetch_remote=fetch)


def run(argv, **kw):
    return run_inprocess(Module(**kw), argv)


@pytest.fixture(autouse=True)
def _private_state(monkeypatch, tmp_path):
    """The full-in history of each test in a directory of its own."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def test_default_selects_fixed_disks_of_the_agent():
    outcome = run(SNMP + ["-w", "1%", "-c", "0%"])
    assert outcome.exitcode == 0, outcome.output
    assert outcome.status_line.startswith("DISK_PARTITIONS OK - 4 partitions ok")
    assert "'/'=" in outcome.status_line and "Physical memory" not in outcome.output


def test_perfdata_and_output_are_those_of_local_mode():
    """The same numbers through the local and the remote path give the same line."""
    remote = st.RemotePartition("/data", "/dev/sdb1", "fixedDisk", size=100 * GiB,
                                used=85 * GiB, free=12 * GiB, inodes_total=None)
    local = disks.Partition("/data", "/dev/sdb1", "ext4", size=100 * GiB, used=85 * GiB,
                            free=12 * GiB)
    remote_out = run(SNMP + ["-p", "/data", "-w", "20%", "-c", "10%"], parts=[remote])

    class Local:
        NAME = dp.NAME
        build_parser = staticmethod(dp.build_parser)

        @staticmethod
        def build_check(args):
            return dp.build_check(
                args, list_mounts=lambda: [disks.Mount("/data", "/dev/sdb1", "ext4")],
                usage=lambda mounts: [local], fstab=lambda: set(), exists=lambda p: True)

    local_out = run_inprocess(Local, ["-p", "/data", "-w", "20%", "-c", "10%"])
    assert remote_out.exitcode == local_out.exitcode == 1
    assert remote_out.status_line == local_out.status_line
    assert "'/data'=91268055040B;" in remote_out.status_line


def test_thresholds_and_path_threshold_apply_remotely():
    outcome = run(SNMP + ["-w", "80%", "-c", "75%", "--ignore", "^/(dev|sys|mnt)"])
    assert outcome.exitcode == 2 and "/ 71.3% free" in outcome.status_line, outcome.output
    outcome = run(SNMP + ["-p", "/", "--path-threshold", "/=20%/10%", "-w", "80%", "-c", "75%"])
    assert outcome.exitcode == 0, outcome.output


def test_remote_inodes_are_percentages():
    outcome = run(SNMP + ["-p", "/", "-W", "80%", "-K", "50%"])
    assert outcome.exitcode == 1, outcome.output
    assert "/ 69.0% inodes free" in outcome.status_line
    assert "(69 of 100)" not in outcome.output
    assert "'/ inodes'=31%;20;50;0;100" in outcome.status_line


def test_path_is_an_exact_mount_point_and_a_missing_one_is_critical():
    outcome = run(SNMP + ["-p", "/dev/shm/", "-p", "/srv/data"])
    assert outcome.exitcode == 2, outcome.output
    assert "/srv/data is not in the storage table of nas" in outcome.status_line
    assert "'/dev/shm'=" in outcome.status_line
    outcome = run(SNMP + ["-p", "/srv/data", "--ignore-missing"])
    assert outcome.exitcode == 0 and "(ignored)" in outcome.status_line, outcome.output


def test_a_storage_index_that_vanished_while_walking_is_reported_missing():
    parts = recorded(hr="nas_hrStorageTable_no-dskTable_synthetic.txt", dsk=None)
    outcome = run(SNMP + ["-p", "/volume1", "-p", "/volumeUSB1/usbshare", "-w", "3%",
                          "-c", "2%"], parts=parts)
    assert outcome.exitcode == 2, outcome.output
    assert "/volumeUSB1/usbshare is not in the storage table" in outcome.status_line
    assert "/volume1 3.5% free" in outcome.output


def test_storage_types_select_other_rows():
    parts = recorded(hr="nas_hrStorageTable_no-dskTable_synthetic.txt", dsk=None)
    outcome = run(SNMP + ["--storage-type", "hrStorageNetworkDisk", "-w", "4%", "-c", "3%"],
                  parts=parts)
    assert outcome.exitcode == 0 and "1 partition ok" in outcome.status_line, outcome.output
    assert "/mnt/backup" in outcome.status_line
    # The empty card reader (size 0) is not judged by type, but named by -p it is UNKNOWN.
    outcome = run(SNMP + ["--storage-type", "removableDisk"], parts=parts)
    assert outcome.exitcode == 3 and "no storage of nas matches" in outcome.status_line
    outcome = run(SNMP + ["-p", "/media/sdcard"], parts=parts)
    assert outcome.exitcode == 3 and "size of 0" in outcome.status_line, outcome.output


def test_a_filter_matching_nothing_is_unknown():
    outcome = run(SNMP + ["--match", "^/nothing-here"])
    assert outcome.exitcode == 3
    assert outcome.status_line == ("DISK_PARTITIONS UNKNOWN - no storage of nas matches "
                                   "--match '^/nothing-here'")
    outcome = run(SNMP + ["--storage-type", "networkDisk"])
    assert outcome.status_line == ("DISK_PARTITIONS UNKNOWN - no storage of nas matches the "
                                   "selection (types: networkDisk)")


def test_exclude_type_uses_storage_type_names():
    outcome = run(SNMP + ["--exclude-type", "fixedDisk"])
    assert outcome.exitcode == 3 and outcome.status_line == (
        "DISK_PARTITIONS UNKNOWN - every storage of nas is excluded by --exclude-type fixedDisk")


def test_snmp_errors_are_one_unknown_line():
    outcome = run(SNMP, error=snmp.SnmpError("no SNMP response from nas:161 within 2.0 s"))
    assert outcome.exitcode == 3
    assert outcome.output == "DISK_PARTITIONS UNKNOWN - no SNMP response from nas:161 " \
                             "within 2.0 s\n"


@pytest.mark.parametrize("argv,words", [
    (["-H", "nas"], "-H/--host reads a remote host: add --snmp"),
    (["--snmp"], "--snmp needs -H/--host"),
    (["--community", "x"], "--community is for SNMP mode"),
    (["--storage-type", "ram"], "--storage-type is for SNMP mode"),
    (SNMP + ["--include-type", "ext4"], "--storage-type"),
    (["-H", "nas", "--snmp"], "needs a community"),
    (["-H", "nas", "--snmp", "--snmp-version", "3"], "--snmp-user"),
])
def test_mode_mix_ups_are_usage_errors(argv, words):
    outcome = run(argv)
    assert outcome.exitcode == 3 and words in outcome.status_line, outcome.output
    assert outcome.status_line.endswith("(see --help)")


def test_the_target_carries_the_options(tmp_path, monkeypatch):
    monkeypatch.setenv("OSOP_SNMP_AUTH_KEY", "authpass123")
    priv = tmp_path / "priv"
    priv.write_text("privpass123\n")
    module = Module()
    run_inprocess(module, ["-H", "nas", "--snmp", "--snmp-version", "3", "--snmp-user", "mon",
                           "--priv-key-file", str(priv), "--snmp-port", "1161",
                           "--snmp-retries", "0", "--snmp-timeout", "1"])
    target, = module.targets
    assert (target.host, target.port, target.version, target.user, target.auth_key,
            target.priv_key, target.retries, target.timeout) == (
        "nas", 1161, "3", "mon", "authpass123", "privpass123", 0, 1.0)


def test_local_mode_never_imports_pysnmp():
    code = (
        "import sys, json, io, contextlib\n"
        "from osop_checks import runtime\n"
        "from osop_checks.checks import disk_partitions as dp\n"
        "out = runtime.execute(dp.NAME, dp.build_parser, dp.build_check, ['-p', '/'])\n"
        "print(json.dumps([out.exitcode, sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('pysnmp', 'pyasn1'))]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    exitcode, loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert exitcode in (0, 1, 2) and loaded == []


def test_snmp_mode_help_is_in_the_parser():
    text = dp.build_parser().format_help()
    for option in ("--snmp", "--community-file", "--auth-key-file", "--priv-key-file",
                   "--storage-type", "--snmp-retries"):
        assert re.search(r"\s%s\b" % re.escape(option), text), option


def test_windows_style_descriptions_are_selected_by_match():
    drive = st.RemotePartition("C:\\ Label:System  Serial Number 5c3ae5b2", "storage index 1",
                               "fixedDisk", size=100 * GiB, used=40 * GiB, free=60 * GiB)
    outcome = run(SNMP + ["--match", "^C:"], parts=[drive])
    assert outcome.exitcode == 0, outcome.output
    assert "'C:\\ Label:System Serial Number 5c3ae5b2'=" in outcome.status_line


def test_agent_text_is_made_safe_for_labels_and_the_status_line():
    odd = st.RemotePartition("/srv/it's=|odd\nname", "storage index 9", "fixedDisk",
                             size=100 * GiB, used=40 * GiB, free=60 * GiB)
    outcome = run(SNMP + ["-p", "/srv/it's=|odd\nname"], parts=[odd])
    assert outcome.exitcode == 0, outcome.output
    assert "'/srv/it_s_/odd name'=" in outcome.status_line
    assert outcome.status_line.count("|") == 1


def test_a_named_path_is_judged_whatever_the_filters_over_snmp():
    """Was UNKNOWN 'every storage of nas is excluded': a -p PATH is never filtered away."""
    outcome = run(SNMP + ["-p", "/", "--ignore", ".*", "--exclude-type", "fixedDisk",
                          "-w", "1%", "-c", "0%"])
    assert outcome.exitcode == 0, outcome.output
    assert outcome.status_line.startswith("DISK_PARTITIONS OK - 1 partition ok"), outcome.output
