"""DNS lookups of A and AAAA records, with every failure told apart in words.

Three ways to ask (``resolve``): the name servers of /etc/resolv.conf, one given server
(``IP[:port]``), or the zone's authoritative servers directly: the zone is found by an SOA
walk-up, its NS names are resolved to addresses, and those servers are asked with recursion
desired (RD) unset, so no cache between us and the zone can hide a stale record.

Each query runs over a *connected* UDP socket, so a closed port is reported at once as
"connection refused" instead of as a timeout; a truncated answer is asked again over TCP.
Every wait is bounded by ``deadline.remaining()``. dnspython (2.3, Debian 12) builds and
parses the messages and is imported inside the functions only; its dns.query and
dns.resolver are not used (they load requests and urllib3 for DNS over HTTPS).
"""
from __future__ import annotations

import dataclasses
import ipaddress
import logging
import socket
import time

from osop_checks import address, bounded, deadline

log = logging.getLogger("nagiosplugin")

# Without a check deadline (a source called directly), one query waits at most this long.
DEFAULT_TIMEOUT = 5.0
# How many CNAMEs in one answer are followed.
MAX_CNAMES = 8

# Kinds of answer. The first three are definitive: the DNS said so.
OK, NXDOMAIN, NODATA = "ok", "nxdomain", "nodata"
TIMEOUT, UNREACHABLE, GARBAGE, SERVFAIL, REFUSED, RCODE, LAME = (
    "timeout", "unreachable", "garbage", "servfail", "refused", "rcode", "lame")
DEFINITIVE = frozenset((OK, NXDOMAIN, NODATA))

Server = tuple[str, int]


class DnsError(Exception):
    """A query that gave no usable answer; ``kind`` says which failure, the text says it in
    words."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


@dataclasses.dataclass
class Answer:
    """The outcome of looking up one record type of one name.

    ``kind`` is OK (``addresses`` holds them), NXDOMAIN, NODATA (the name exists but has no
    record of this type) or one of the failures, with ``error`` in words.
    """
    name: str
    rdtype: str
    kind: str
    addresses: list[str] = dataclasses.field(default_factory=list)
    server: str = ""
    seconds: float = 0.0
    ttl: int | None = None
    authoritative: bool = False
    error: str | None = None

    @property
    def definitive(self):
        return self.kind in DEFINITIVE

    def describe(self):
        """What the DNS said, in words: '198.51.100.23', 'does not exist (NXDOMAIN ...)'."""
        if self.kind == OK:
            return ", ".join(self.addresses)
        return self.error or self.kind


def format_server(server: Server) -> str:
    host, port = server
    shown = "[%s]" % host if ":" in host else host
    return shown if port == 53 else "%s:%d" % (shown, port)


def parse_server(text) -> Server:
    """'192.0.2.1', '192.0.2.1:5353', '2001:db8::1', '[2001:db8::1]:5353' -> (ip, port), read
    by the one address parser of every option (``address.parse_endpoint``: '::1:53' is
    ambiguous). Raises ValueError with a message in words."""
    endpoint = address.parse_endpoint(str(text).strip(), 53)
    try:
        return str(ipaddress.ip_address(endpoint.host)), endpoint.port
    except ValueError:
        raise ValueError("%r is not an IP address (give the server's address, optionally "
                         "with :PORT)" % endpoint.host) from None


def system_servers(path="/etc/resolv.conf") -> list[Server]:
    """The name servers the system resolver uses (port 53): the ``nameserver`` lines of
    resolv.conf, as the C library reads them (at most three; scoped link-local ones left
    out, they cannot be asked without their interface)."""
    try:
        lines = bounded.read_text(path).splitlines()
    except OSError as exc:
        raise DnsError(UNREACHABLE, "cannot read %s: %s" % (path, exc.strerror)) from None
    servers = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver" and address.family_of(fields[1]):
            servers.append((str(ipaddress.ip_address(fields[1])), 53))
    if not servers:
        raise DnsError(UNREACHABLE, "no name server configured in %s" % path)
    return servers[:3]


def _left():
    """Seconds left of the check's budget (None: no deadline); 0 when it is used up."""
    try:
        return deadline.remaining()
    except deadline.Timeout:
        return 0.0


def _budget(servers_left=1, expiry=None):
    """Seconds one query may take: the time left (of the check, and of this lookup when it
    has an ``expiry``) shared among the servers still to be asked, so a dead first server
    leaves time for the next."""
    left = _left()
    if expiry is not None:
        until = expiry - time.monotonic()
        left = until if left is None else min(left, until)
    if left is None:
        return DEFAULT_TIMEOUT
    return max(0.0, left) / max(1, servers_left)


class _NoAnswer(Exception):
    """The exchange ran out of time."""


def _exchange(request, server: Server, timeout, tcp=False):
    """Send ``request`` to ``server`` and return the parsed answer, within ``timeout``.

    UDP goes over a *connected* socket, so the kernel reports an ICMP "port unreachable" as
    ECONNREFUSED at once. (dnspython's own dns.query is not used: importing it loads
    requests and urllib3 for DNS over HTTPS, a third of this check's start-up.)"""
    import dns.message

    wire = request.to_wire()
    expiry = time.monotonic() + timeout
    family = address.socket_family(address.family_of(server[0]))

    def left():
        remaining = expiry - time.monotonic()
        if remaining <= 0:
            raise _NoAnswer()
        return remaining

    with socket.socket(family, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM) as sock:
        try:
            sock.settimeout(left())
            sock.connect(server)
            if tcp:
                sock.sendall(len(wire).to_bytes(2, "big") + wire)
                size = int.from_bytes(_read(sock, 2, left), "big")
                data = _read(sock, size, left)
            else:
                sock.send(wire)
                sock.settimeout(left())
                data = sock.recv(65535)
        except socket.timeout:
            raise _NoAnswer() from None
    response = dns.message.from_wire(data)
    if not request.is_response(response):
        raise _Mismatch()
    return response


class _Mismatch(Exception):
    """An answer to another question."""


def _read(sock, count, left):
    data = b""
    while len(data) < count:
        sock.settimeout(left())
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise EOFError("the server closed the connection after %d of %d bytes" % (
                len(data), count))
        data += chunk
    return data


def query(name, rdtype, server: Server, recursion=True, timeout=None, dnssec=False):
    """One DNS query to one server; returns the dns.message.Message with rcode NOERROR or
    NXDOMAIN, raises DnsError for everything else. ``dnssec``: the DO bit and the AD bit are
    set (RFC 6840 5.7), so a validating resolver says in its answer's AD bit whether it
    validated it."""
    import dns.exception
    import dns.flags
    import dns.message
    import dns.rcode

    where = format_server(server)
    timeout = _budget() if timeout is None else timeout
    if timeout < 0.05:
        raise DnsError(TIMEOUT, "no time left to ask DNS server %s" % where)
    request = dns.message.make_query(name, rdtype, want_dnssec=dnssec)
    if dnssec:
        request.flags |= dns.flags.AD
    if not recursion:
        request.flags &= ~dns.flags.RD
    log.info("asking %s for %s %s%s%s", where, name, rdtype, "" if recursion else " (RD unset)",
             " (DNSSEC)" if dnssec else "")
    started = time.monotonic()
    try:
        response = _exchange(request, server, timeout)
        if response.flags & dns.flags.TC:
            log.info("answer from %s truncated, asking again over TCP", where)
            response = _exchange(request, server, max(
                0.05, timeout - (time.monotonic() - started)), tcp=True)
    except _NoAnswer:
        raise DnsError(TIMEOUT, "no answer from DNS server %s within %.1f s" % (
            where, timeout)) from None
    except ConnectionRefusedError:
        raise DnsError(UNREACHABLE, "DNS server %s refused the connection (nothing listens "
                                    "there)" % where) from None
    except OSError as exc:
        raise DnsError(UNREACHABLE, "cannot reach DNS server %s: %s" % (
            where, exc.strerror or exc)) from None
    except _Mismatch:
        raise DnsError(GARBAGE, "DNS server %s answered a different question" % where) \
            from None
    except (dns.exception.DNSException, ValueError, EOFError) as exc:
        raise DnsError(GARBAGE, "DNS server %s sent something that is not a DNS answer "
                                "(%s)" % (where, _exc_text(exc))) from None
    log.debug("answer from %s:\n%s", where, response)
    rcode = response.rcode()
    if rcode == dns.rcode.SERVFAIL:
        raise DnsError(SERVFAIL, "DNS server %s failed to resolve %s (SERVFAIL)" % (
            where, name))
    if rcode == dns.rcode.REFUSED:
        raise DnsError(REFUSED, "DNS server %s refused to answer for %s (REFUSED)" % (
            where, name))
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        raise DnsError(RCODE, "DNS server %s answered %s with %s" % (
            where, name, dns.rcode.to_text(rcode)))
    return response


def _exc_text(exc):
    text = str(exc)
    return "%s: %s" % (type(exc).__name__, text) if text else type(exc).__name__


def ask_servers(name, rdtype, servers, recursion=True, limit=None, dnssec=False):
    """Ask the servers in turn until one gives a NOERROR/NXDOMAIN answer, all within
    ``limit`` seconds (None: whatever the check has left); ``dnssec`` as for ``query``.

    Returns (response, server); when none does, raises a DnsError of the last failure's kind
    whose message tells every server's failure."""
    expiry = None if limit is None else time.monotonic() + limit
    failures = []
    for index, server in enumerate(servers):
        try:
            return query(name, rdtype, server, recursion,
                         timeout=_budget(len(servers) - index, expiry), dnssec=dnssec), server
        except DnsError as exc:
            log.warning("%s", exc)
            failures.append(exc)
    last = failures[-1]
    if len(failures) > 1:
        raise DnsError(last.kind, "; ".join(str(f) for f in failures))
    raise last


def _records(response, name, rdtype):
    """Addresses and TTL of ``rdtype`` for ``name`` in an answer, CNAMEs followed; also the
    name the chain ended at (the CNAME target when no address was given for it)."""
    import dns.name
    import dns.rdatatype

    target = dns.name.from_text(name)
    wanted = dns.rdatatype.from_text(rdtype)
    for _ in range(MAX_CNAMES + 1):
        rrset = next((r for r in response.answer
                      if r.name == target and r.rdtype == wanted), None)
        if rrset is not None:
            return (sorted((str(rd) for rd in rrset), key=ipaddress.ip_address), rrset.ttl,
                    target.to_text())
        cname = next((r for r in response.answer
                      if r.name == target and r.rdtype == dns.rdatatype.CNAME), None)
        if cname is None:
            break
        target = cname[0].target
    return [], None, target.to_text()


def lookup(name, rdtype, servers: list[Server], recursion=True, require_aa=False,
           limit=None) -> Answer:
    """Look ``name`` up as ``rdtype`` at the servers (first that answers); never raises
    DnsError: a failure comes back as an Answer with its kind and error text."""
    import dns.flags
    import dns.message  # imported before the clock starts: not lookup time
    import dns.rcode

    started = time.monotonic()
    answer = Answer(name, rdtype, OK)
    try:
        response, server = ask_servers(name, rdtype, servers, recursion, limit)
        answer.server = format_server(server)
        answer.authoritative = bool(response.flags & dns.flags.AA)
        if require_aa and not answer.authoritative:
            raise DnsError(LAME, "DNS server %s is listed as authoritative for %s but did "
                                 "not answer authoritatively (lame delegation)" % (
                                     answer.server, name))
        if response.rcode() == dns.rcode.NXDOMAIN:
            answer.kind = NXDOMAIN
            answer.error = "%s does not exist (NXDOMAIN from %s)" % (name, answer.server)
        else:
            answer.addresses, answer.ttl, end = _records(response, name, rdtype)
            if not answer.addresses:
                answer.kind = NODATA
                alias = "" if end == _absolute(name) else " (it is an alias of %s)" % end
                answer.error = "%s has no %s record%s (answer from %s)" % (
                    name, rdtype, alias, answer.server)
    except DnsError as exc:
        answer.kind, answer.error = exc.kind, str(exc)
    answer.seconds = time.monotonic() - started
    return answer


def _absolute(name):
    return name if name.endswith(".") else name + "."


def find_zone(name, servers: list[Server]):
    """The zone holding ``name``, by an SOA walk-up: ask SOA for the name; an SOA in the
    answer names the zone, one in the authority section (NODATA/NXDOMAIN) names its zone;
    otherwise try the parent."""
    import dns.name
    import dns.rdatatype

    current = dns.name.from_text(name)
    while True:
        response, _ = ask_servers(current.to_text(), "SOA", servers)
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.SOA and rrset.name == current:
                return current.to_text()
        for rrset in response.authority:
            if rrset.rdtype == dns.rdatatype.SOA and current.is_subdomain(rrset.name):
                return rrset.name.to_text()
        if current == dns.name.root:
            raise DnsError(NODATA, "found no zone (SOA record) above %s" % name)
        current = current.parent()


def authoritative_servers(zone, servers: list[Server], port=53):
    """The zone's name servers as [(ns name, (ip, port))], their addresses resolved through
    ``servers``; an NS whose addresses cannot be found is left out (and logged)."""
    import dns.rdatatype

    response, via = ask_servers(zone, "NS", servers)
    names = sorted({rd.target.to_text() for rrset in response.answer
                    if rrset.rdtype == dns.rdatatype.NS for rd in rrset})
    if not names:
        raise DnsError(NODATA, "zone %s lists no NS records (answer from %s)" % (
            zone, format_server(via)))
    found = []
    for ns in names:
        for rdtype in ("A", "AAAA"):
            answer = lookup(ns, rdtype, servers)
            if answer.kind != OK:
                log.info("name server %s: %s", ns, answer.describe())
            found.extend((ns, (ip, port)) for ip in answer.addresses)
    if not found:
        raise DnsError(UNREACHABLE, "no address found for the name servers of %s (%s)" % (
            zone, ", ".join(names)))
    return found


@dataclasses.dataclass
class Resolution:
    """Answers for the requested types, and how the servers asked were found."""
    answers: list[Answer]
    via: str                       # "system resolver (10.0.0.53)", "server 192.0.2.1:5353" ...
    discovery_seconds: float | None = None


def resolve(name, rdtypes=("A",), server: Server | None = None, authoritative=False,
            auth_port=53, resolv_conf="/etc/resolv.conf") -> Resolution:
    """Look ``name`` up for each of ``rdtypes`` (``"A"``, ``"AAAA"``).

    ``server`` (ip, port) is asked instead of the system's name servers; with
    ``authoritative`` those only find the zone and its name servers, which are then asked
    directly (RD unset, on ``auth_port``)."""
    import dns.message  # noqa: F401  (loaded before any clock starts: not lookup time)

    try:
        recursive = [server] if server else system_servers(resolv_conf)
    except DnsError as exc:
        return Resolution([Answer(name, t, exc.kind, error=str(exc)) for t in rdtypes],
                          "system resolver")
    via = ("server %s" % format_server(server) if server else
           "system resolver (%s)" % ", ".join(format_server(s) for s in recursive))
    if not authoritative:
        return Resolution(_each_type(name, rdtypes, recursive), via)
    started = time.monotonic()
    try:
        zone = find_zone(name, recursive)
        nameservers = authoritative_servers(zone, recursive, auth_port)
    except DnsError as exc:
        message = "cannot find the authoritative servers of %s via %s: %s" % (name, via, exc)
        return Resolution([Answer(name, t, exc.kind, error=message) for t in rdtypes],
                          via, discovery_seconds=time.monotonic() - started)
    discovery = time.monotonic() - started
    log.info("zone %s, authoritative servers: %s", zone, ", ".join(
        "%s (%s)" % (ns, format_server(addr)) for ns, addr in nameservers))
    servers = [addr for _, addr in nameservers]
    via = "authoritative servers of %s (%s)" % (zone.rstrip("."), ", ".join(
        "%s %s" % (ns.rstrip("."), format_server(addr)) for ns, addr in nameservers))
    return Resolution(_each_type(name, rdtypes, servers, recursion=False, require_aa=True),
                      via, discovery_seconds=discovery)


def _each_type(name, rdtypes, servers, **kwargs):
    """One lookup per type, each with its share of the time left, so a dead server costs
    the A lookup its share and still leaves the AAAA lookup one."""
    answers = []
    for index, rdtype in enumerate(rdtypes):
        share = _budget(len(rdtypes) - index)
        answers.append(lookup(name, rdtype, servers, limit=share, **kwargs))
    return answers
