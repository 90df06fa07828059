"""sources/snmp_storage: hrStorageTable and dskTable walks recorded from real agents (and one
synthetic NAS) parsed into the same disks.Partition the local source returns."""
import pytest

from osop_checks.sources import disks, snmp_storage as st
from lab.peers.snmpd import as_table, load_walk

NETSNMP_HR = "netsnmp-5.9.3_debian12_hrStorageTable.txt"
NETSNMP_DSK = "netsnmp-5.9.3_debian12_dskTable.txt"
NAS = "nas_hrStorageTable_no-dskTable_synthetic.txt"


def storages(name):
    return st.parse_storage(as_table(load_walk(name), st.HR_STORAGE_ENTRY))


def dsks(name):
    return st.parse_dsk(as_table(load_walk(name), st.DSK_ENTRY))


def by_mount(parts):
    return {p.mountpoint: p for p in parts}


def test_netsnmp_hrstorage_rows_in_bytes():
    rows = {s.descr: s for s in storages(NETSNMP_HR)}
    root = rows["/"]
    # 66053021 blocks of 4096 bytes: exactly df -B1's 1B-blocks on the machine recorded.
    assert (root.type, root.units, root.size) == ("fixedDisk", 4096, 66053021 * 4096)
    assert rows["Physical memory"].type == "ram"
    assert rows["Swap space"].type == "virtualMemory" and rows["Swap space"].size == 0
    assert rows["Memory buffers"].type == "other"


def test_netsnmp_dsktable_gives_avail_and_inode_percent():
    rows = {d.path: d for d in dsks(NETSNMP_DSK)}
    root = rows["/"]
    assert root.device == "/dev/vda"
    assert root.avail == 75804112 * 1024 and root.total == 264212084 * 1024
    assert root.inodes_used_percent == 31


def test_join_uses_dsk_avail_as_free_like_df():
    parts = by_mount(st.partitions(storages(NETSNMP_HR), dsks(NETSNMP_DSK)))
    root = parts["/"]
    assert isinstance(root, disks.Partition)
    assert root.free == 75804112 * 1024          # dskAvail: df's Avail, not size - used
    assert root.used == 7646700 * 4096                 # hrStorageUsed: df Used
    assert root.free < root.size - root.used     # reserved blocks are not free
    assert (root.inodes_total, root.inodes_free, root.inodes_exact) == (100, 69, False)
    assert root.inodes_free_percent == pytest.approx(69.0)
    assert root.fstype == "fixedDisk" and root.device == "/dev/vda"
    # Memory rows carry no dskTable row: free is size - used, no inodes.
    memory = parts["Physical memory"]
    assert memory.free == memory.size - memory.used and memory.inodes_total is None
    assert memory.device == "storage index 1"


def test_nas_without_dsktable_wrapped_sizes_and_a_vanished_row():
    parts = by_mount(st.partitions(storages(NAS), []))
    volume = parts["/volume1"]
    # Integer32 wrapped negative on a 16 TiB volume: read as unsigned.
    assert volume.size == (2 ** 32 - 16777216) * 4096
    assert volume.used == (2 ** 32 - 167772160) * 4096
    assert volume.free == volume.size - volume.used
    assert volume.inodes_total is None
    # Index 40 lost its size/used columns during the walk: left out, not a crash.
    assert "/volumeUSB1/usbshare" not in parts
    assert parts["/mnt/backup"].fstype == "networkDisk"
    assert parts["/media/sdcard"].size == 0


def test_hc_columns_win_over_32_bit_ones():
    table = {(1,): {2: b"/big", 3: b"/dev/md0", 6: 2 ** 31 - 1, 7: 2 ** 31 - 1, 10: 5,
                    11: 5, 12: 2, 13: 7, 14: 1}}
    dsk, = st.parse_dsk(table)
    assert dsk.total == ((2 << 32) + 5) * 1024 and dsk.avail == ((1 << 32) + 7) * 1024


def test_nonsense_inode_percent_is_ignored():
    dsk, = st.parse_dsk({(1,): {2: b"/", 10: -1}})
    assert dsk.inodes_used_percent is None


def test_zero_allocation_units_row_is_left_out():
    assert st.parse_storage({(1,): {2: "1.3.6.1.2.1.25.2.1.4", 3: b"/x", 4: 0, 5: 1,
                                    6: 1}}) == []


@pytest.mark.parametrize("text,name", [
    ("fixedDisk", "fixedDisk"), ("hrStorageNetworkDisk", "networkDisk"),
    ("RAMDISK", "ramDisk"), ("2", "ram"), ("hrStorageVirtualMemory", "virtualMemory"),
])
def test_storage_type_names(text, name):
    assert st.storage_type(text) == name


def test_unknown_storage_type():
    with pytest.raises(ValueError, match="not an hrStorage type"):
        st.storage_type("floppy")


def test_unknown_type_oid_keeps_a_name():
    assert st._type_name("1.3.6.1.2.1.25.2.1.99") == "type99"
    assert st._type_name("1.3.6.1.4.1.9.9") .startswith("other(")
