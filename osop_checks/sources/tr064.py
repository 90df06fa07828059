"""The router's public address and WAN connection from a FRITZ!Box's TR-064 interface.

Current FRITZ!OS sends no status over UPnP IGD unless the user switches it on; what is on by
default is TR-064 ("Zugriff für Anwendungen zulassen"), with a login: HTTP digest
authentication, over TLS on port 49443 with the box's own self-signed certificate (plain
HTTP on 49000 is served too). As AVM's TR-064 documents describe it:

1. the device description ``tr64desc.xml`` lists the services, among them
   ``urn:dslforum-org:service:WANIPConnection:1`` (cable, fibre, and where the box is
   behind another router) and ``urn:dslforum-org:service:WANPPPConnection:1`` (DSL), each
   with its controlURL;
2. ``GetStatusInfo`` of each says NewConnectionStatus (Connected, ...), NewUptime (seconds
   since the connection was established) and NewLastConnectionError; the connected one is
   asked ``GetExternalIPAddress`` (NewExternalIPAddress);
3. ``X_AVM-DE_GetIPv6Prefix`` (WANIPConnection) gives the delegated IPv6 prefix.

The certificate is pinned: ``fingerprint`` (--router-fingerprint), else the one remembered
from the first use (``remembered``); a first use trusts what the box shows and says so in
``Reading.facts["trusted"]``, for the check to keep. Every XML answer is parsed as upnp.py
parses them (bounded, expat, no DTD or entities); the router's refusals are told by HTTP
status and UPnP error code, not by their words. ``fetch`` returns a ``publicip.Reading``
and never raises for what a peer answers.
"""
from __future__ import annotations

import hashlib
import logging
import time

from osop_checks import text
from osop_checks.sources import publicip, upnp

log = logging.getLogger("nagiosplugin")

DEFAULT_URL = "https://fritz.box:49443/tr64desc.xml"
SERVICES = ("urn:dslforum-org:service:WANIPConnection:",
            "urn:dslforum-org:service:WANPPPConnection:")
IP_SERVICE = "urn:dslforum-org:service:WANIPConnection:"
STATUS_ACTION = "GetStatusInfo"
PREFIX_ACTION = "X_AVM-DE_GetIPv6Prefix"
CONNECTED = "Connected"
# UPnP error codes of a SOAP fault (UPnP Device Architecture; AVM's TR-064 documents)
INVALID_ACTION = "401"
NOT_AUTHORIZED = "606"


class Tr064Error(upnp.UpnpError):
    """The router could not be asked (a login refused, a certificate not the pinned one,
    no connection up); the text says which."""


def normalize_fingerprint(value):
    """A SHA-256 certificate fingerprint as 64 lower-case hex digits, from hex with or
    without colons ('AB:CD:...', as openssl x509 -fingerprint -sha256 shows it); ValueError
    for anything else."""
    digits = str(value).strip().replace(":", "").lower()
    if len(digits) != 64 or any(c not in "0123456789abcdef" for c in digits):
        raise ValueError("%r is not a SHA-256 fingerprint (64 hex digits, colons allowed)"
                         % value)
    return digits


def endpoint(url):
    """'host:port' of an https URL: the key a fingerprint is remembered under."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return "%s:%d" % (parts.hostname, parts.port or 443)


def peer_fingerprint(url, started, limit):
    """The SHA-256 fingerprint of the certificate the https server of ``url`` shows (not
    verified: a router's is self-signed; the caller compares it with the pin)."""
    import socket
    import ssl
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    left = max(0.05, limit - (time.monotonic() - started))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((parts.hostname, parts.port or 443), timeout=left) as raw:
            with context.wrap_socket(raw, server_hostname=parts.hostname) as tls:
                der = tls.getpeercert(binary_form=True)
    except socket.timeout:
        raise publicip.HttpError("no TLS handshake within %.1f s" % limit) from None
    except ssl.SSLError as exc:
        raise publicip.HttpError("TLS error: %s" % (exc.reason or exc)) from None
    except OSError as exc:
        raise publicip.HttpError("cannot connect: %s" % (exc.strerror or exc)) from None
    return hashlib.sha256(der).hexdigest()


def parse_status(body):
    """(status, uptime seconds or None, last error) of a GetStatusInfo answer."""
    root = upnp.parse_soap(body, STATUS_ACTION)
    status = upnp.value_of(root, "NewConnectionStatus")
    uptime = upnp.value_of(root, "NewUptime")
    try:
        seconds = int(uptime)
    except ValueError:
        raise upnp.UpnpError("NewUptime is not a number of seconds: %r"
                             % text.oneline(uptime, limit=40)) from None
    error = next((e.text or "" for e in root.iter("NewLastConnectionError")), "").strip()
    return status, (seconds if seconds >= 0 else None), error


class _Router:
    """One FRITZ!Box asked over TR-064: the URL of its description, the login, the pin."""

    def __init__(self, url, user, password, pin, started, limit):
        from requests.auth import HTTPDigestAuth

        self.url, self.user, self.pin = url, user, pin
        self.auth = HTTPDigestAuth(user, password)
        self.started, self.limit = started, limit
        # one connection for every call: a FRITZ!Box's TLS handshake is slow
        self.session = publicip.new_session(trust_env=False, fingerprint=pin)

    def request(self, url, what, method="GET", headers=None, data=None, max_body=upnp.MAX_SOAP):
        status, reason, body = publicip.http_request(
            url, self.started, self.limit, method=method, headers=headers, data=data,
            max_body=max_body, what=what, redirects=False, auth=self.auth,
            session=self.session)
        if status == 401:
            raise Tr064Error("the router refused the login of user %r (HTTP 401): wrong "
                             "--router-user or --router-password-file?" % self.user)
        return status, reason, body

    def call(self, service, action, parse):
        headers, body = upnp.soap_request(service.service_type, action)
        log.info("TR-064: POST %s (SOAPAction %s)", service.control_url,
                 headers["SOAPAction"])
        status, reason, answer = self.request(service.control_url, "a SOAP answer", "POST",
                                              headers, body)
        log.debug("TR-064: HTTP %d: %r", status, answer[:400])
        try:
            return parse(answer)
        except upnp.SoapFault as exc:
            if exc.code == NOT_AUTHORIZED:
                raise Tr064Error("the router refused %s to user %r (UPnP error 606, not "
                                 "authorized): give the user the right 'FRITZ!Box Settings'"
                                 % (action, self.user)) from None
            raise
        except upnp.NotXml:
            if status != 200:
                raise upnp.UpnpError("HTTP %d %s for %s" % (status, reason, action)) from None
            raise


def fetch(url=DEFAULT_URL, user="", password="", fingerprint=None, remembered=None,
          timeout=None, v6_prefix=None) -> publicip.Reading:
    """The router's public address and its WAN connection (``facts``: service, status,
    uptime, last_error; ``trusted``: the fingerprint a first use trusted), within
    ``timeout`` seconds in all (capped by the check's deadline). ``remembered``:
    {endpoint: fingerprint} of earlier runs. With ``v6_prefix`` (--v6-prefix bits) also the
    address standing for the delegated IPv6 prefix (upnp.prefix_address)."""
    source = "TR-064 router %s" % url
    return publicip.within(source, lambda started, limit: _ask(
        source, url, user, password, fingerprint, remembered or {}, started, limit,
        v6_prefix), timeout)


def _ask(source, url, user, password, fingerprint, remembered, started, limit, v6_prefix):
    reading = publicip.Reading(source)
    try:
        pin = None
        if url.startswith("https:"):
            seen = peer_fingerprint(url, started, limit)
            pin = fingerprint or remembered.get(endpoint(url))
            if pin and seen != pin:
                where = "--router-fingerprint" if fingerprint else (
                    "trusted on first use, kept in the state file: remove it there or give "
                    "--router-fingerprint")
                raise Tr064Error("the router's certificate is not the pinned one: SHA-256 %s, "
                                 "pinned %s (%s)" % (text.colon_hex(seen), text.colon_hex(pin),
                                                     where))
            if not pin:
                pin = seen
                reading.facts["trusted"] = {endpoint(url): seen}
                log.info("TR-064: trusting %s's certificate on first use: SHA-256 %s",
                         endpoint(url), text.colon_hex(seen))
        router = _Router(url, user, password, pin, started, limit)
        try:
            _read(router, reading, v6_prefix)
        finally:
            router.session.close()
    except (upnp.UpnpError, publicip.HttpError) as exc:
        reading.error = "%s: %s" % (source, exc)
    return reading


def _read(router, reading, v6_prefix):
    log.info("TR-064: GET %s", router.url)
    status, reason, body = router.request(router.url, "a TR-064 device description",
                                          headers={"Accept": "text/xml"},
                                          max_body=upnp.MAX_DESCRIPTION)
    if status != 200:
        raise upnp.UpnpError("HTTP %d %s for the device description" % (status, reason))
    services = upnp.parse_description(body, router.url, SERVICES)
    states = []
    for service in services:
        try:
            states.append((service, router.call(service, STATUS_ACTION, parse_status)))
        except upnp.SoapFault as exc:
            log.info("TR-064: %s: %s", service.service_type, exc)
    connected = [(s, state) for s, state in states if state[0] == CONNECTED]
    if not connected:
        raise Tr064Error("no WAN connection of the router is up (%s)" % (", ".join(
            "%s: %s%s" % (_short(s), state[0] or "no status",
                          ", last error %s" % state[2] if state[2] else "")
            for s, state in states) or "no connection service answered %s" % STATUS_ACTION))
    service, (status_word, uptime, last_error) = connected[0]
    reading.facts.update(service=_short(service), status=status_word, uptime=uptime,
                         last_error=last_error)
    reading.source = "TR-064 router %s (%s)" % (router.url, _short(service))
    try:
        reading.addresses.append(router.call(service, upnp.ADDRESS_ACTION,
                                             upnp.parse_external_address))
    except upnp.UpnpError as exc:
        reading.family_errors[4] = str(exc)
    if v6_prefix is not None:
        try:
            prefixed = [s for s, _ in connected if s.service_type.startswith(IP_SERVICE)] + [
                s for s in services if s.service_type.startswith(IP_SERVICE)]
            if not prefixed:
                raise upnp.UpnpError("the router offers no WANIPConnection for %s"
                                     % PREFIX_ACTION)
            network = router.call(prefixed[0], PREFIX_ACTION, lambda answer: upnp.
                                  parse_ipv6_prefix(answer, PREFIX_ACTION))
            reading.facts["ipv6_prefix"] = str(network)
            reading.addresses.append(upnp.prefix_address(network, v6_prefix))
        except upnp.SoapFault as exc:
            reading.family_errors[6] = ("the router gives no IPv6 prefix (%s)" % exc
                                        if exc.code == INVALID_ACTION else str(exc))
        except upnp.UpnpError as exc:
            reading.family_errors[6] = str(exc)
    if not reading.addresses:
        reading.error = "%s: %s" % (reading.source, reading.family_errors.get(4) or
                                    reading.family_errors.get(6))


def _short(service):
    """'WANPPPConnection' of urn:dslforum-org:service:WANPPPConnection:1."""
    parts = service.service_type.split(":")
    return parts[-2] if len(parts) >= 2 else service.service_type
