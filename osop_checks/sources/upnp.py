"""The router's public IPv4 address from its UPnP Internet Gateway Device (IGD) service.

A home or office router (a FRITZ!Box, OpenWrt and Debian routers running miniupnpd) offers
on its LAN side:

1. discovery: an SSDP M-SEARCH to 239.255.255.250:1900 (UDP multicast) for the IGD or its
   WANIPConnection/WANPPPConnection service is answered, unicast, with a LOCATION header:
   the URL of the device description (a FRITZ!Box: http://192.168.178.1:49000/igddesc.xml,
   miniupnpd: http://ROUTER:PORT/rootDesc.xml). Only answers whose LOCATION is on the host
   that answered are followed;
2. the device description (XML) lists the services with their controlURL;
3. a SOAP call of GetExternalIPAddress on a WANIPConnection (versions 1 and 2) or
   WANPPPConnection:1 service answers NewExternalIPAddress: the router's WAN address.

Every answer is bounded: a datagram of at most MAX_DATAGRAM bytes, a description of at most
MAX_DESCRIPTION, a SOAP answer of at most MAX_SOAP; the whole exchange within the source's
time (``publicip.within``, capped by the check's --timeout). The XML is parsed with expat
and refused when it declares a DTD or entities (no entity expansion, nothing external is
ever fetched). HTTP goes through ``publicip.http_request`` without proxies from the
environment (the router is on the LAN) and without redirects.

An empty NewExternalIPAddress (miniupnpd answers so when its WAN address is private or
reserved) or one that is not a public address means the router sits behind another NAT:
``NoPublicAddress``, "the router has no public IPv4 address: behind carrier-grade NAT?".
``fetch`` returns a ``publicip.Reading`` and never raises for what a peer answers.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import logging
import time

from osop_checks import text
from osop_checks.sources import publicip

log = logging.getLogger("nagiosplugin")

DISCOVER = "ssdp"  # --router-upnp without a URL (or with the word ssdp): search the LAN
SSDP_GROUP = ("239.255.255.250", 1900)
SEARCH_TARGETS = (
    "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANIPConnection:2",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
)
CONNECTION_SERVICES = ("urn:schemas-upnp-org:service:WANIPConnection:",
                       "urn:schemas-upnp-org:service:WANPPPConnection:")
# How long the search waits for a first answer (an IGD answers within MX = 1 s), and then
# for other gateways that answer too.
SSDP_WAIT = 2.0
SSDP_LINGER = 0.3
MAX_DATAGRAM = 2048
MAX_GATEWAYS = 4
MAX_DESCRIPTION = 256 * 1024
MAX_SOAP = 16 * 1024
CGNAT = "the router has no public IPv4 address: behind carrier-grade NAT?"
ADDRESS_ACTION = "GetExternalIPAddress"
# AVM's own action on a FRITZ!Box's WANIPConnection:1 (igdupnp, port 49000): the IPv6
# prefix the provider delegated; other gateways (miniupnpd) answer 401 Invalid Action.
PREFIX_ACTION = "X_AVM_DE_GetIPv6Prefix"
PREFIX_SERVICES = "urn:schemas-upnp-org:service:WANIPConnection:"


class UpnpError(ValueError):
    """An answer that is not what a UPnP IGD says; the text says what it is instead."""


class NotXml(UpnpError):
    """A body that is not XML at all (an HTML error page, garbage): where the HTTP status
    was not 200, the status says more than the body."""


class NoPublicAddress(UpnpError):
    """The router answered, and its WAN address is none or not a public one."""


class SoapFault(UpnpError):
    """The router refused a SOAP call; ``code`` is its UPnP error code ("401": no such
    action), "" when it gave none."""

    def __init__(self, message, code=""):
        super().__init__(message)
        self.code = code


@dataclasses.dataclass
class Service:
    """A WANIPConnection or WANPPPConnection service of a gateway: where to call it."""
    service_type: str
    control_url: str


@dataclasses.dataclass
class SsdpAnswer:
    sender: str
    location: str
    st: str = ""
    server: str = ""


# -- parsing (pure) ----------------------------------------------------------------------

def search_message(target, mx=1):
    """The M-SEARCH datagram for search target ``target``."""
    return ("M-SEARCH * HTTP/1.1\r\nHOST: %s:%d\r\nMAN: \"ssdp:discover\"\r\nMX: %d\r\n"
            "ST: %s\r\n\r\n" % (SSDP_GROUP[0], SSDP_GROUP[1], mx, target)).encode("ascii")


def parse_ssdp(datagram, sender) -> SsdpAnswer:
    """An SSDP search answer from ``sender`` (an IP address): its LOCATION (an http(s) URL on
    ``sender`` itself), ST and SERVER. Raises UpnpError for anything else."""
    message = datagram.decode("latin-1")
    lines = message.split("\r\n") if "\r\n" in message else message.split("\n")
    status = lines[0].split(None, 2)
    if len(status) < 2 or not status[0].upper().startswith("HTTP/1.") or status[1] != "200":
        raise UpnpError("%s answered the SSDP search with something else than HTTP 200 (%s)"
                        % (sender, _excerpt(lines[0])))
    headers = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers.setdefault(name.strip().upper(), value.strip())
    location = headers.get("LOCATION", "")
    host = _http_host(location)
    if not host:
        raise UpnpError("%s answered the SSDP search without an http:// LOCATION (%s)" % (
            sender, _excerpt(location or "none")))
    if not _same_host(host, sender):
        raise UpnpError("%s answered the SSDP search with a LOCATION on another host (%s)" %
                        (sender, _excerpt(location)))
    return SsdpAnswer(sender, location, headers.get("ST", ""), headers.get("SERVER", ""))


def _http_host(url):
    """The host name of an http(s) URL, or None (another scheme, no host, not a URL)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        return parts.hostname if parts.scheme in ("http", "https") else None
    except ValueError:  # 'http://[::1', a port that is not a number
        return None


def _same_host(hostname, address):
    try:
        return ipaddress.ip_address(hostname) == ipaddress.ip_address(address)
    except ValueError:
        return False


def parse_xml(body, what):
    """The element tree of ``body`` (bytes), tags without their namespaces; ``what`` names
    the document in the messages. A DTD or an entity declaration is refused (UpnpError), so
    no entity is expanded and nothing external fetched; text that is not XML is NotXml."""
    from xml.etree import ElementTree
    from xml.parsers import expat

    builder = ElementTree.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator=" ")

    def refuse(*_):
        raise UpnpError("%s declares a DTD or entities: refused" % what)

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.StartElementHandler = lambda name, attrs: builder.start(_local(name), {})
    parser.EndElementHandler = lambda name: builder.end(_local(name))
    parser.CharacterDataHandler = builder.data
    parser.buffer_text = True
    try:
        parser.Parse(body, True)
        return builder.close()
    except expat.ExpatError as exc:
        raise NotXml("%s is not XML (%s: %s)" % (what, expat.ErrorString(exc.code), _excerpt(
            body.decode("utf-8", "replace") if isinstance(body, bytes) else body))) from None
    except (AssertionError, IndexError):  # the tree builder met an unbalanced document
        raise UpnpError("%s is not well-formed XML" % what) from None


def _local(name):
    return name.rsplit(" ", 1)[-1]


def _text(element, tag):
    found = element.find(tag)
    return (found.text or "").strip() if found is not None else ""


def parse_description(body, location, wanted=CONNECTION_SERVICES) -> list[Service]:
    """The WANIPConnection/WANPPPConnection services (those of the types starting with
    ``wanted``; TR-064's are urn:dslforum-org:...) of the device description ``body``
    fetched from ``location``, their control URLs made absolute (against URLBase when the
    description has one). Control URLs on another host than ``location`` are left out.
    Raises UpnpError when there is no such service."""
    from urllib.parse import urljoin

    what = "the device description"
    root = parse_xml(body, what)
    if root.tag != "root":
        raise UpnpError("%s is not a UPnP one (its root element is <%s>)" % (
            what, text.oneline(root.tag, limit=40)))
    base = _text(root, "URLBase") or location
    host = _http_host(location)
    services, offered = [], []
    for element in root.iter("service"):
        service_type = _text(element, "serviceType")
        short = service_type.rsplit(":", 2)[-2] if service_type.count(":") >= 2 else \
            service_type
        if short and short not in offered:
            offered.append(short)
        if not service_type.startswith(wanted):
            continue
        control = _text(element, "controlURL")
        try:
            url = urljoin(base, control) if control else ""
        except ValueError:
            url = ""
        if not url or not host or _http_host(url) != host:
            log.info("UPnP: %s has no control URL on %s (%r): left out", service_type, host,
                     control)
            continue
        services.append(Service(service_type, url))
    if not services:
        raise UpnpError("the router offers no WANIPConnection or WANPPPConnection service "
                        "(it offers: %s)" % text.oneline(", ".join(offered) or "none",
                                                         limit=120))
    return services


def soap_request(service_type, action=ADDRESS_ACTION):
    """(headers, body) of the SOAP call ``action`` (no arguments) on ``service_type``."""
    body = ('<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/'
            'envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
            '<u:%s xmlns:u="%s"/></s:Body></s:Envelope>\r\n' % (action, service_type))
    headers = {"Content-Type": 'text/xml; charset="utf-8"',
               "SOAPAction": '"%s#%s"' % (service_type, action)}
    return headers, body.encode("utf-8")


def parse_soap(body, action):
    """The element tree of a SOAP answer to ``action``; a SOAP fault raises UpnpError
    saying what the router refused ("UPnP error 401 Invalid Action")."""
    what = "the SOAP answer"
    root = parse_xml(body, what)
    if root.tag != "Envelope":
        raise UpnpError("%s is not a SOAP envelope (its root element is <%s>)" % (
            what, text.oneline(root.tag, limit=40)))
    fault = next(root.iter("Fault"), None)
    if fault is not None:
        code = next((e.text or "" for e in fault.iter("errorCode")), "").strip()
        words = next((e.text or "" for e in fault.iter("errorDescription")), "").strip() or \
            next((e.text or "" for e in fault.iter("faultstring")), "").strip()
        raise SoapFault("the router refused %s: %s" % (action, text.oneline(
            " ".join(w for w in ("UPnP error %s" % code if code else "", words) if w)
            or "a SOAP fault", limit=100)), code)
    return root


def value_of(root, tag):
    found = next(root.iter(tag), None)
    if found is None:
        raise UpnpError("the SOAP answer holds no %s" % tag)
    return (found.text or "").strip()


def parse_external_address(body) -> str:
    """The public address in a GetExternalIPAddress answer. A SOAP fault, a missing or
    malformed NewExternalIPAddress raise UpnpError; an empty one or one that is not public
    (private, shared 100.64/10, reserved) NoPublicAddress."""
    value = value_of(parse_soap(body, ADDRESS_ACTION), "NewExternalIPAddress")
    if not value:
        raise NoPublicAddress(CGNAT)
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise UpnpError("NewExternalIPAddress is not an IP address: %s" % _excerpt(
            value)) from None
    if not address.is_global:
        raise NoPublicAddress("the router has no public IPv4 address (its WAN address %s is "
                              "not public): behind carrier-grade NAT?" % address)
    return str(address)


def parse_ipv6_prefix(body, action=PREFIX_ACTION) -> ipaddress.IPv6Network:
    """The IPv6 prefix the provider delegated to the router, from a FRITZ!Box's
    X_AVM_DE_GetIPv6Prefix answer (NewIPv6Prefix, NewPrefixLength; TR-064's
    X_AVM-DE_GetIPv6Prefix says the same). None delegated (both empty or 0, as without
    IPv6) is NoPublicAddress; a malformed or non-public prefix UpnpError."""
    root = parse_soap(body, action)
    value, length = value_of(root, "NewIPv6Prefix"), value_of(root, "NewPrefixLength")
    value = value.split("/", 1)[0]  # some firmware writes it as 2003:a:b:c00::/56
    if not value or length in ("", "0"):
        raise NoPublicAddress("the router has no IPv6 prefix (none delegated by the "
                              "provider)")
    try:
        network = ipaddress.IPv6Network("%s/%s" % (value, length), strict=False)
    except ValueError:
        raise UpnpError("NewIPv6Prefix/NewPrefixLength is not an IPv6 prefix: %s" % _excerpt(
            "%s/%s" % (value, length))) from None
    if not network.is_global:
        raise UpnpError("the router's IPv6 prefix %s is not a public one" % network)
    return network


def prefix_address(network, compared):
    """The address that stands for the router's delegated ``network`` when ``compared``
    leading bits are compared (--v6-prefix); UpnpError when the prefix cannot say them."""
    if compared > network.prefixlen:
        raise UpnpError("the router's IPv6 prefix %s cannot tell the first %d bits of an "
                        "address: compare at most %d (--v6-prefix %d)" % (
                            network, compared, network.prefixlen, network.prefixlen))
    return str(network.network_address)


def _excerpt(value, limit=60):
    return repr(text.oneline(value, limit=limit))


# -- asking the router -----------------------------------------------------------------------

def fetch(where=DISCOVER, timeout=None, v6_prefix=None) -> publicip.Reading:
    """The router's public address: from the device description at URL ``where``, or, with
    DISCOVER, from the gateways an SSDP search finds; within ``timeout`` seconds in all
    (DEFAULT_TIMEOUT of publicip when None, capped by the check's deadline).

    With ``v6_prefix`` (the leading bits an IPv6 comparison looks at, --v6-prefix) the
    reading also holds the network address of the IPv6 prefix the router was delegated (a
    FRITZ!Box's X_AVM_DE_GetIPv6Prefix); ``family_errors`` says why a family has none."""
    source = "UPnP router" if where == DISCOVER else "UPnP router %s" % where
    return publicip.within(source, lambda started, limit: _ask(
        source, where, started, limit, v6_prefix), timeout)


def _ask(source, where, started, limit, v6_prefix):
    reading = publicip.Reading(source)
    try:
        locations = discover(started, limit) if where == DISCOVER else [where]
    except (UpnpError, publicip.HttpError) as exc:
        reading.error = "%s: %s" % (source, exc)
        return reading
    errors, ipv6_errors = [], []
    for location in locations:
        name = "UPnP router %s" % location
        try:
            addresses, problems = ask_gateway(location, started, limit, v6_prefix)
        except (UpnpError, publicip.HttpError) as exc:
            errors.append((isinstance(exc, NoPublicAddress), "%s: %s" % (name, exc)))
            continue
        named = {family: "%s: %s" % (name, exc) for family, exc in problems.items()}
        if addresses:
            reading.source, reading.addresses, reading.family_errors = name, addresses, named
            return reading
        errors.append((isinstance(problems[4], NoPublicAddress), named[4]))
        if 6 in named:
            ipv6_errors.append(named[6])
    # the router's own word that it has no public address first, then the others
    errors.sort(key=lambda error: not error[0])
    reading.error = "; ".join(message for _, message in errors)
    if ipv6_errors:  # IPv4's reasons are the reading's error, of every gateway asked
        reading.family_errors = {6: "; ".join(ipv6_errors)}
    return reading


def ask_gateway(location, started, limit, v6_prefix=None):
    """(addresses, problems) of the gateway whose device description is at ``location``:
    its public IPv4 address from the first connection service that gives one and, with
    ``v6_prefix``, the address standing for its delegated IPv6 prefix (prefix_address,
    asked of its WANIPConnection services);
    ``problems`` ({family: exception}) says why a family has none. Raises UpnpError or
    publicip.HttpError when the gateway cannot be asked at all."""
    services = parse_description(_get(location, started, limit), location)
    addresses, problems = [], {}
    try:
        addresses.append(_first_answer(services, ADDRESS_ACTION, parse_external_address,
                                       started, limit))
    except (UpnpError, publicip.HttpError) as exc:
        problems[4] = exc
    if v6_prefix is not None:
        try:
            network = _first_answer([s for s in services
                                     if s.service_type.startswith(PREFIX_SERVICES)],
                                    PREFIX_ACTION, parse_ipv6_prefix, started, limit)
            log.info("UPnP: the router's delegated IPv6 prefix is %s", network)
            addresses.append(prefix_address(network, v6_prefix))
        except SoapFault as exc:
            problems[6] = UpnpError("the router gives no IPv6 prefix (%s; a FRITZ!Box "
                                    "does)" % exc) if exc.code == "401" else exc
        except (UpnpError, publicip.HttpError) as exc:
            problems[6] = exc
    return addresses, problems


def _first_answer(services, action, parse, started, limit):
    """``parse`` of the answer to ``action`` from the first of ``services`` that gives one.
    Raises the router's own word that it has none (NoPublicAddress) before other errors."""
    if not services:
        raise UpnpError("the router offers no WANIPConnection service for %s" % action)
    problems = []
    for service in services:
        headers, body = soap_request(service.service_type, action)
        log.info("UPnP: POST %s (SOAPAction %s)", service.control_url, headers["SOAPAction"])
        status, reason, answer = publicip.http_request(
            service.control_url, started, limit, method="POST", headers=headers, data=body,
            max_body=MAX_SOAP, what="a SOAP answer", redirects=False, trust_env=False)
        log.debug("UPnP: HTTP %d: %r", status, answer[:400])
        try:
            return parse(answer)
        except NoPublicAddress as exc:
            problems.insert(0, exc)
        except UpnpError as exc:
            problems.append(UpnpError("HTTP %d %s" % (status, reason)) if status != 200 and
                            isinstance(exc, NotXml) else exc)
    raise problems[0]


def _get(location, started, limit):
    log.info("UPnP: GET %s", location)
    status, reason, body = publicip.http_request(
        location, started, limit, headers={"Accept": "text/xml"}, max_body=MAX_DESCRIPTION,
        what="a UPnP device description", redirects=False, trust_env=False)
    if status != 200:
        raise UpnpError("HTTP %d %s for the device description" % (status, reason))
    return body


def discover(started, limit):
    """The LOCATIONs of the gateways answering an SSDP search on the LAN (the interface of
    the route to 239.255.255.250), the first answer within SSDP_WAIT seconds (or half of
    what is left of ``limit``), and the others SSDP_LINGER seconds after it. Raises
    UpnpError when none answered."""
    import select
    import socket

    wait = min(SSDP_WAIT, max(0.05, (limit - (time.monotonic() - started)) / 2))
    end = time.monotonic() + wait
    found, garbage = [], []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 2)
        try:
            for target in SEARCH_TARGETS:
                sock.sendto(search_message(target), SSDP_GROUP)
        except OSError as exc:
            raise UpnpError("cannot send the SSDP search to %s:%d: %s" % (
                SSDP_GROUP + (exc.strerror or exc,))) from None
        log.info("UPnP: SSDP search sent to %s:%d, waiting %.1f s", *SSDP_GROUP, wait)
        while len(found) < MAX_GATEWAYS:
            left = end - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                break
            try:
                datagram, peer = sock.recvfrom(MAX_DATAGRAM)
            except OSError:
                continue
            try:
                answer = parse_ssdp(datagram, peer[0])
            except UpnpError as exc:
                log.info("UPnP: %s", exc)
                garbage.append(str(exc))
                continue
            log.info("UPnP: %s answered: %s (ST %s, SERVER %s)", peer[0], answer.location,
                     answer.st, text.oneline(answer.server, limit=80))
            if answer.location not in found:
                found.append(answer.location)
                end = min(end, time.monotonic() + SSDP_LINGER)
    if not found:
        if garbage:
            raise UpnpError(garbage[0])
        raise UpnpError("no Internet gateway answered the SSDP search on %s:%d within %.1f s"
                        % (SSDP_GROUP + (wait,)))
    return found
