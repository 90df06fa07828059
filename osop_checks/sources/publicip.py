"""The current public address, from an HTTP(S) echo service, a local interface or the admin.

An echo service (api.ipify.org, ifconfig.me/ip, icanhazip.com ...) answers a GET with the
caller's address as plain text. ``parse_echo`` is strict: one IP address, whitespace around
it allowed, nothing else; an HTML page (a captive portal, an error page) or other text is
rejected with a message that says what came instead. Every source returns a ``Reading``; a
source that fails returns one with ``error`` set, it never raises.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import logging
import time

from osop_checks import __version__, deadline, text
from osop_checks.address import version_of  # "address" names an address here

log = logging.getLogger("nagiosplugin")

DEFAULT_TIMEOUT = 5.0
# An address is at most 45 characters; anything much longer is not an echo answer.
MAX_BODY = 1024
# An echo service answers directly or after a redirect or two (http -> https, a new host).
MAX_REDIRECTS = 5
USER_AGENT = "osop-checks/%s check_dyndns_match" % __version__


class EchoError(ValueError):
    """An echo answer that is not an IP address; the text says what it was instead."""


@dataclasses.dataclass
class Reading:
    """What one source says the public address is (usually one address, an interface may
    have several), or why it could not say."""
    source: str
    addresses: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    # why a source that gave an address of one family has none of the other: {6: words}
    family_errors: dict = dataclasses.field(default_factory=dict)
    # what a source says beside the address, as plain data for the judgement (a router's
    # connection: its service, status, uptime; the certificate it was trusted with)
    facts: dict = dataclasses.field(default_factory=dict)


def parse_echo(body) -> str:
    """The address in an echo service's answer (bytes or text), normalised
    ('2001:DB8::01' -> '2001:db8::1'); raises EchoError saying what the body is instead."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            raise EchoError("the answer is binary data, not an IP address") from None
    stripped = body.strip()
    if not stripped:
        raise EchoError("the answer is empty, not an IP address")
    lowered = stripped[:200].lower()
    if lowered.startswith(("<!doctype", "<html", "<?xml", "<head", "<body")) or (
            lowered.startswith("<") and ">" in lowered):
        raise EchoError("the answer is an HTML page, not an IP address (%s)" % _excerpt(
            stripped))
    if lowered.startswith(("{", "[")):
        raise EchoError("the answer is JSON or structured data, not a plain IP address (%s)"
                        % _excerpt(stripped))
    if len(stripped) > 45 or any(ch.isspace() for ch in stripped) or "%" in stripped:
        raise EchoError("the answer is not an IP address: %s" % _excerpt(stripped))
    try:
        return str(ipaddress.ip_address(stripped))
    except ValueError:
        raise EchoError("the answer is not an IP address: %s" % _excerpt(stripped)) from None


def _excerpt(body, limit=60):
    return repr(text.oneline(body, limit=limit))


def fetch_echo(url, timeout=None) -> Reading:
    """GET ``url`` and read the address from its body, within ``timeout`` (capped by the
    check's deadline) in all: requests' own timeout bounds each read only, so a server that
    drips its headers a byte at a time, or redirects again and again, is cut off here."""
    log.info("asking echo service %s", url)
    return within(url, lambda started, limit: _fetch(url, started, limit), timeout)


def within(source, read, timeout=None) -> Reading:
    """``read(started, limit)`` (a Reading) in a thread, given at most ``timeout`` seconds
    (DEFAULT_TIMEOUT when None; capped by the check's deadline): a read still running then is
    a Reading of ``source`` with the error "no answer within". Its ``seconds`` are set."""
    from osop_checks import fanout

    started = time.monotonic()
    limit = deadline.remaining(timeout if timeout is not None else DEFAULT_TIMEOUT)
    [(reading, error)] = fanout.run_all([lambda: read(started, limit)], limit)
    if error is not None:
        raise error
    if reading is None:
        reading = Reading(source, error="%s: no answer within %.1f s" % (source, limit))
    reading.seconds = time.monotonic() - started
    if reading.error:
        log.warning("%s", reading.error)
    return reading


def _fetch(url, started, limit):
    reading = Reading(url)
    try:
        status, reason, body = http_request(url, started, limit,
                                            headers={"Accept": "text/plain"})
        if status != 200:
            raise EchoError("HTTP %d %s" % (status, reason))
        log.debug("%s answered %r", url, body[:200])
        reading.addresses = [parse_echo(body)]
    except (HttpError, EchoError) as exc:
        reading.error = "%s: %s" % (url, exc)
    return reading


class HttpError(ValueError):
    """An HTTP exchange that did not give an answer: no connection, no answer in time, a
    TLS error, too many redirects, a body over the cap; the text says which."""


def http_request(url, started, limit, method="GET", headers=None, data=None,
                 max_body=MAX_BODY, what="an IP address", redirects=True, trust_env=True,
                 auth=None, fingerprint=None, session=None, with_headers=False):
    """(status, reason, body) of one HTTP request, within ``limit`` seconds from ``started``
    in all and its body at most ``max_body`` bytes (``what`` names what the body should be,
    for the message when it is longer). ``redirects``: follow up to MAX_REDIRECTS;
    ``trust_env``: proxies and .netrc from the environment apply; ``auth``: a requests auth
    (HTTPDigestAuth); ``fingerprint``: the SHA-256 of the one certificate an https server
    may show (hex), instead of a chain to a trusted CA (a router's self-signed one);
    ``session``: one of ``new_session`` that several requests share (one connection, kept
    alive), which then brings ``trust_env`` and ``fingerprint``; ``with_headers``: the
    response headers (case-insensitive) come fourth. Raises HttpError."""
    import contextlib

    import requests

    left = max(0.05, limit - (time.monotonic() - started))
    try:
        with contextlib.ExitStack() as stack:
            if session is None:
                session = stack.enter_context(new_session(trust_env, fingerprint))
            with session.request(method, url, timeout=(left, left), stream=True,
                                 allow_redirects=redirects, data=data, auth=auth,
                                 headers=dict({"User-Agent": USER_AGENT}, **(headers or {}))) \
                    as response:
                body = _read_capped(response, started, limit, max_body, what)
                answer = (response.status_code, text.oneline(response.reason or "", limit=60),
                          body)
                return answer + (response.headers,) if with_headers else answer
    except requests.exceptions.ConnectTimeout:
        raise HttpError("no connection within %.1f s" % limit) from None
    except requests.exceptions.ReadTimeout:
        raise HttpError("no answer within %.1f s" % limit) from None
    except requests.exceptions.TooManyRedirects:
        raise HttpError("more than %d redirects" % MAX_REDIRECTS) from None
    except requests.exceptions.SSLError as exc:
        raise HttpError("TLS error: %s" % _reason(exc)) from None
    except requests.exceptions.ConnectionError as exc:
        raise HttpError("cannot connect: %s" % _reason(exc)) from None
    except requests.exceptions.RequestException as exc:
        raise HttpError(_reason(exc)) from None


def new_session(trust_env=True, fingerprint=None):
    """A requests Session as http_request uses it: at most MAX_REDIRECTS, proxies from the
    environment with ``trust_env``, https pinned to the certificate of SHA-256
    ``fingerprint`` where one is given."""
    import requests

    session = requests.Session()
    session.max_redirects = MAX_REDIRECTS
    session.trust_env = trust_env
    if fingerprint:
        session.mount("https://", _pinned_adapter(fingerprint))
        session.verify = False  # the pin is the verification
    return session


def _pinned_adapter(fingerprint):
    """A requests adapter whose connections accept exactly the certificate of SHA-256
    ``fingerprint`` (urllib3's assert_fingerprint, checked on every TLS handshake)."""
    from requests.adapters import HTTPAdapter

    class Pinned(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            kwargs["assert_fingerprint"] = fingerprint
            super().init_poolmanager(*args, **kwargs)

    return Pinned()


def _read_capped(response, started, limit, max_body=MAX_BODY, what="an IP address"):
    """At most ``max_body`` + 1 bytes, and no longer than ``limit`` from ``started`` in all
    (a server that drips a byte at a time cannot stretch the read timeout)."""
    import requests

    chunks, size = [], 0
    for chunk in response.iter_content(chunk_size=256 if max_body <= MAX_BODY else 4096):
        chunks.append(chunk)
        size += len(chunk)
        if size > max_body:
            raise HttpError("the answer is longer than %d bytes, not %s (%s)" % (
                max_body, what, _excerpt(b"".join(chunks).decode("utf-8", "replace"))))
        if time.monotonic() - started > limit:
            raise requests.exceptions.ReadTimeout()
    return b"".join(chunks)


def _reason(exc):
    """The innermost reason of a requests error ('Connection refused', 'certificate verify
    failed: self-signed certificate'), not its repr soup."""
    import re

    message = str(exc)
    found = re.search(r"\[SSL(?:: [A-Z0-9_]+)?\] (.+?)(?: \(_ssl\.c:\d+\))?['\")]", message)
    if found:
        return found.group(1).strip()
    found = re.findall(r"\[Errno -?\d+\] ([^'\")\]]+)", message)
    if found:
        return found[-1].strip()
    return text.oneline(message, limit=160)


# -- local interfaces -----------------------------------------------------------------------

def global_addresses(entries) -> list[str]:
    """The addresses among ``entries`` (psutil snicaddr-like objects with .family and
    .address) that can be a public address: not loopback, link-local, multicast, unspecified
    or IPv6 unique-local (fc00::/7)."""
    found = []
    for entry in entries:
        if version_of(entry.family) is None:  # AF_PACKET, the interface's MAC address
            continue
        try:
            address = ipaddress.ip_address(entry.address.split("%")[0])
        except ValueError:
            continue
        if (address.is_loopback or address.is_link_local or address.is_multicast
                or address.is_unspecified):
            continue
        if address.version == 6 and address in ipaddress.ip_network("fc00::/7"):
            continue
        found.append(str(address))
    return found


def interface_addresses(name, net_if_addrs=None) -> Reading:
    """The global addresses of the local interface ``name`` (psutil.net_if_addrs)."""
    started = time.monotonic()
    if net_if_addrs is None:
        import psutil

        net_if_addrs = psutil.net_if_addrs
    reading = Reading("interface %s" % name)
    log.info("reading the addresses of interface %s (psutil.net_if_addrs)", name)
    interfaces = net_if_addrs()
    if name not in interfaces:
        reading.error = "interface %s does not exist (there are: %s)" % (
            name, ", ".join(sorted(interfaces)) or "none")
    else:
        reading.addresses = global_addresses(interfaces[name])
        if not reading.addresses:
            reading.error = "interface %s has no global address" % name
    reading.seconds = time.monotonic() - started
    return reading


def fixed_address(address) -> Reading:
    """--expect: the admin's own word for the public address."""
    return Reading("expected", [str(ipaddress.ip_address(address))])
