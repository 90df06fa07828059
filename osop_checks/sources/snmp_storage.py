"""Remote filesystems over SNMP: HOST-RESOURCES-MIB hrStorageTable, plus UCD-SNMP-MIB dskTable
where the agent has it (Net-SNMP), returned as the same disks.Partition the local source gives.

What each number is, so local and remote readings agree with ``df -B1``:
- size  = hrStorageSize * hrStorageAllocationUnits              (df 1B-blocks)
- used  = hrStorageUsed * hrStorageAllocationUnits              (df Used: blocks - free blocks)
- free  = dskAvail (KiB, 64 bit from dskAvailHigh/Low) * 1024   (df Avail: space left to users)
          or, without a dskTable row for that mount, size - used (reserved blocks count as free)
- inodes: dskPercentNode is the percentage of inodes used; UCD-SNMP-MIB has no inode counts, so
  a remote Partition carries percentages (inodes_total 100) and says so (``inodes_exact``).

Pure parsing (``parse_storage``, ``parse_dsk``, ``partitions``) is separate from the walking
(``fetch``) so tests feed it recorded walks.
"""
from __future__ import annotations

import dataclasses
import logging

from osop_checks.sources import disks, snmp

log = logging.getLogger("nagiosplugin")

HR_STORAGE_ENTRY = "1.3.6.1.2.1.25.2.3.1"
HR_COLUMNS = {"type": 2, "descr": 3, "units": 4, "size": 5, "used": 6}
HR_STORAGE_TYPES_PREFIX = (1, 3, 6, 1, 2, 1, 25, 2, 1)
DSK_ENTRY = "1.3.6.1.4.1.2021.9.1"
DSK_COLUMNS = {"path": 2, "device": 3, "total": 6, "avail": 7, "percent_node": 10,
               "total_low": 11, "total_high": 12, "avail_low": 13, "avail_high": 14}

# HOST-RESOURCES-TYPES hrStorageTypes (1.3.6.1.2.1.25.2.1.N)
STORAGE_TYPES = {
    1: "other", 2: "ram", 3: "virtualMemory", 4: "fixedDisk", 5: "removableDisk",
    6: "floppyDisk", 7: "compactDisc", 8: "ramDisk", 9: "flashMemory", 10: "networkDisk",
}
DEFAULT_TYPES = ("fixedDisk",)


def storage_type(text):
    """A storage type name as given on the command line ('fixedDisk', 'hrStorageNetworkDisk',
    'networkdisk', '10') -> the canonical short name; ValueError when unknown."""
    name = str(text).strip()
    if name.isdigit() and int(name) in STORAGE_TYPES:
        return STORAGE_TYPES[int(name)]
    folded = name.lower()
    if folded.startswith("hrstorage"):
        folded = folded[len("hrstorage"):]
    for short in STORAGE_TYPES.values():
        if short.lower() == folded:
            return short
    raise ValueError("%r is not an hrStorage type (%s)" % (
        text, ", ".join(STORAGE_TYPES.values())))


@dataclasses.dataclass
class Storage:
    """One hrStorageTable row, in bytes."""
    index: int
    type: str
    descr: str
    units: int
    size: int
    used: int


@dataclasses.dataclass
class Dsk:
    """One UCD-SNMP-MIB dskTable row (sizes in bytes)."""
    index: int
    path: str
    device: str
    total: int | None
    avail: int | None
    inodes_used_percent: int | None


class RemotePartition(disks.Partition):
    """A disks.Partition read over SNMP. Inodes are percentages (total 100) unless exact."""
    def __init__(self, mountpoint: str, device: str, fstype: str, size: int = 0,
                 used: int = 0, free: int = 0, inodes_total: int | None = None,
                 inodes_free: int | None = None, error: str | None = None,
                 listed: bool = True, storage_index: int | None = None,
                 inodes_exact: bool = False):
        super().__init__(mountpoint, device, fstype, size, used, free, inodes_total,
                         inodes_free, error, listed)
        self.storage_index = storage_index
        self.inodes_exact = inodes_exact


def _unsigned32(value):
    """hrStorageSize/Used are Integer32: agents with huge disks wrap them negative."""
    value = int(value)
    return value + 2 ** 32 if value < 0 else value


def _type_name(value):
    parts = tuple(int(x) for x in str(value).strip(".").split(".")) if value else ()
    if parts[:len(HR_STORAGE_TYPES_PREFIX)] == HR_STORAGE_TYPES_PREFIX and \
            len(parts) == len(HR_STORAGE_TYPES_PREFIX) + 1:
        return STORAGE_TYPES.get(parts[-1], "type%d" % parts[-1])
    return "other(%s)" % value


def _typed(parse, what):
    """``parse`` whose TypeError/ValueError (an agent sending a string or nothing where a
    number is due) becomes an SnmpError naming the table."""
    def guarded(table):
        try:
            return parse(table)
        except (TypeError, ValueError) as exc:
            raise snmp.SnmpError("the agent's %s holds a value of the wrong type (%s)" % (
                what, exc)) from None
    guarded.__doc__ = parse.__doc__
    return guarded


def parse_storage(table: dict[tuple, dict]) -> list[Storage]:
    """hrStorageTable columns (snmp.table's shape) -> Storage rows in index order. A row that
    lacks a column (the storage vanished while we walked) is left out and logged."""
    return _typed(_parse_storage, "hrStorageTable")(table)


def _parse_storage(table):
    rows = []
    for index in sorted(table):
        cells = table[index]
        missing = [name for name, col in HR_COLUMNS.items() if col not in cells]
        if missing or len(index) != 1:
            log.info("hrStorageTable row %s incomplete (no %s): left out",
                     ".".join(str(i) for i in index), ", ".join(missing) or "single index")
            continue
        units = int(cells[HR_COLUMNS["units"]])
        if units <= 0:
            log.info("hrStorageTable row %d has allocation units %d: left out", index[0], units)
            continue
        rows.append(Storage(
            index=index[0], type=_type_name(cells[HR_COLUMNS["type"]]),
            descr=snmp.text(cells[HR_COLUMNS["descr"]]), units=units,
            size=_unsigned32(cells[HR_COLUMNS["size"]]) * units,
            used=_unsigned32(cells[HR_COLUMNS["used"]]) * units))
    return rows


def _kib(cells, low, high, plain):
    if DSK_COLUMNS[low] in cells and DSK_COLUMNS[high] in cells:
        return ((int(cells[DSK_COLUMNS[high]]) << 32) + int(cells[DSK_COLUMNS[low]])) * 1024
    if DSK_COLUMNS[plain] in cells:
        return _unsigned32(cells[DSK_COLUMNS[plain]]) * 1024
    return None


def parse_dsk(table: dict[tuple, dict]) -> list[Dsk]:
    """dskTable columns -> Dsk rows (64-bit sizes where the agent has dskTotalHigh/Low)."""
    return _typed(_parse_dsk, "dskTable")(table)


def _parse_dsk(table):
    rows = []
    for index in sorted(table):
        cells = table[index]
        if DSK_COLUMNS["path"] not in cells or len(index) != 1:
            continue
        percent = cells.get(DSK_COLUMNS["percent_node"])
        rows.append(Dsk(
            index=index[0], path=snmp.text(cells[DSK_COLUMNS["path"]]),
            device=snmp.text(cells.get(DSK_COLUMNS["device"], b"")),
            total=_kib(cells, "total_low", "total_high", "total"),
            avail=_kib(cells, "avail_low", "avail_high", "avail"),
            inodes_used_percent=None if percent is None or not 0 <= int(percent) <= 100
            else int(percent)))
    return rows


def partitions(storages: list[Storage], dsks: list[Dsk]) -> list[RemotePartition]:
    """Join hrStorage rows with dskTable rows by mount point (hrStorageDescr == dskPath)."""
    by_path = {}
    for dsk in dsks:
        by_path.setdefault(dsk.path.rstrip("/") or "/", dsk)
    result = []
    for st in storages:
        dsk = by_path.get(st.descr.rstrip("/") or "/") if st.descr.startswith("/") else None
        used = min(st.used, st.size) if st.size else st.used
        if dsk is not None and dsk.avail is not None:
            free = min(dsk.avail, max(st.size - used, 0))
        else:
            free = max(st.size - used, 0)
        inodes = dsk.inodes_used_percent if dsk is not None else None
        result.append(RemotePartition(
            mountpoint=st.descr, device=(dsk.device if dsk is not None and dsk.device
                                         else "storage index %d" % st.index),
            fstype=st.type, size=st.size, used=used, free=free,
            inodes_total=100 if inodes is not None else None,
            inodes_free=100 - inodes if inodes is not None else None,
            storage_index=st.index))
    return result


def fetch(target, with_dsk=True) -> list[RemotePartition]:
    """Walk hrStorageTable (and dskTable) on ``target`` (an snmp.Target): every storage row of
    every type, as RemotePartitions; the check selects."""
    with snmp.Session() as session:
        storages = parse_storage(session.table(target, HR_STORAGE_ENTRY, HR_COLUMNS.values()))
        if not storages:
            raise snmp.SnmpError(
                "%s has no hrStorageTable (HOST-RESOURCES-MIB) rows: the agent does not offer "
                "it, or the view of this community/user excludes it" % target.address)
        dsks = []
        if with_dsk:
            dsks = parse_dsk(session.table(target, DSK_ENTRY, DSK_COLUMNS.values()))
            if not dsks:
                log.info("%s has no UCD-SNMP-MIB dskTable: free space is size - used, no "
                         "inodes", target.address)
    return partitions(storages, dsks)
