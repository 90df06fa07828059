"""A router's addresses over SNMP (IP-MIB), as a public-address Reading.

ipAddressTable (1.3.6.1.2.1.4.34.1, RFC 4293: IPv4 and IPv6) is walked first; an agent that
has none (older routers) is asked for the IPv4-only ipAddrTable (1.3.6.1.2.1.4.20.1). The
interface names come from IF-MIB (ifName, else ifDescr). Without an interface name the WAN
address is taken to be the agent's globally routable unicast addresses; with one, that
interface's unicast addresses (link-local left out).

The SNMP exchange goes through the shared ``osop_checks.sources.snmp`` (imported inside the
function, as is pysnmp there); the parsing here is pure and tested on recorded walks.
"""
import ipaddress
import time

from osop_checks.sources import publicip

IP_ADDRESS_ENTRY = "1.3.6.1.2.1.4.34.1"   # ipAddressEntry: index addrType.len.octets
IP_ADDRESS_IFINDEX, IP_ADDRESS_TYPE, IP_ADDRESS_STATUS = 3, 4, 7
IP_ADDR_ENTRY = "1.3.6.1.2.1.4.20.1"      # ipAddrEntry (IPv4 only): index = the address
IP_ADDR_ADDR, IP_ADDR_IFINDEX = 1, 2
IF_NAME_ENTRY, IF_NAME = "1.3.6.1.2.1.31.1.1.1", 1
IF_DESCR_ENTRY, IF_DESCR = "1.3.6.1.2.1.2.2.1", 2

UNICAST = 1
# ipAddressStatus: preferred(1) and deprecated(2) are usable; invalid, inaccessible, unknown,
# tentative and duplicate are not.
USABLE_STATUS = (1, 2)


def parse_ip_address_table(table):
    """{index: {column: value}} of ipAddressTable -> [(address text, ifIndex)], unicast and
    usable only; zoned (ipv4z/ipv6z) rows are left out."""
    from osop_checks.sources import snmp

    found = []
    for index, row in sorted(table.items()):
        try:
            _, address, zone = snmp.inet_address(index)
        except ValueError:
            continue
        if index[0] not in (1, 2) or zone:
            continue
        if row.get(IP_ADDRESS_TYPE, UNICAST) != UNICAST:
            continue
        if row.get(IP_ADDRESS_STATUS, 1) not in USABLE_STATUS:
            continue
        found.append((address, row.get(IP_ADDRESS_IFINDEX)))
    return found


def parse_ip_addr_table(table):
    """{index: {column: value}} of the old ipAddrTable -> [(address text, ifIndex)]."""
    found = []
    for index, row in sorted(table.items()):
        raw = row.get(IP_ADDR_ADDR)
        if not isinstance(raw, str) and not (isinstance(raw, bytes) and len(raw) == 4):
            raw = ".".join(str(x) for x in index)  # the index is the address too
        try:
            address = ipaddress.IPv4Address(raw)
        except ValueError:
            continue
        found.append((str(address), row.get(IP_ADDR_IFINDEX)))
    return found


def interface_names(if_names, if_descrs):
    """{ifIndex: name} from ifXTable ifName, falling back to ifTable ifDescr."""
    from osop_checks.sources import snmp

    names = {}
    for table, column in ((if_descrs, IF_DESCR), (if_names, IF_NAME)):
        for index, row in table.items():
            value = snmp.text(row.get(column, b"")).strip() if row.get(column) else ""
            if value and index:
                names[index[0]] = value
    return names


def select(addresses, names, interface=None):
    """The WAN addresses among [(address, ifIndex)]: those of ``interface`` (by name), else
    the globally routable ones. Returns (addresses, problem in words or None)."""
    def usable(text):
        ip = ipaddress.ip_address(text)
        return not (ip.is_link_local or ip.is_multicast or ip.is_unspecified)

    if interface is not None:
        indexes = {i for i, name in names.items() if name == interface}
        if not indexes:
            return [], "has no interface %s (it has: %s)" % (
                interface, ", ".join(sorted(set(names.values()))) or "none listed")
        chosen = [a for a, i in addresses if i in indexes and usable(a)]
        if not chosen:
            return [], "lists no address on interface %s" % interface
        return chosen, None
    chosen = [a for a, _ in addresses if ipaddress.ip_address(a).is_global]
    if not chosen:
        listed = ", ".join("%s on %s" % (a, names.get(i, "ifIndex %s" % i))
                           for a, i in addresses) or "none"
        return [], ("lists no globally routable address (it has: %s); name the WAN "
                    "interface with --snmp-interface" % listed)
    return chosen, None


def fetch(target, interface=None):
    """The agent's WAN address(es) as a publicip.Reading; never raises for SNMP failures."""
    from osop_checks.sources import snmp

    started = time.monotonic()
    reading = publicip.Reading("SNMP agent %s" % target.address)
    try:
        with snmp.Session() as session:  # one engine for the few walks
            rows = parse_ip_address_table(session.table(
                target, IP_ADDRESS_ENTRY,
                [IP_ADDRESS_IFINDEX, IP_ADDRESS_TYPE, IP_ADDRESS_STATUS]))
            if not rows:
                rows = parse_ip_addr_table(session.table(
                    target, IP_ADDR_ENTRY, [IP_ADDR_ADDR, IP_ADDR_IFINDEX]))
            names = {}
            if interface is not None or not any(
                    ipaddress.ip_address(a).is_global for a, _ in rows):
                names = interface_names(session.table(target, IF_NAME_ENTRY, [IF_NAME]),
                                        session.table(target, IF_DESCR_ENTRY, [IF_DESCR]))
        reading.addresses, problem = select(rows, names, interface)
        if problem:
            reading.error = "SNMP agent %s %s" % (target.address, problem)
    except snmp.SnmpError as exc:
        reading.error = str(exc)
    reading.seconds = time.monotonic() - started
    return reading
