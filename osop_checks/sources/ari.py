"""ACME Renewal Information (RFC 9773): the renewal window a CA suggests for a certificate.

``certificate_id`` builds the identifier of RFC 9773 4.1 (base64url of the Authority Key
Identifier's keyIdentifier "." base64url of the serial number's DER content bytes, no
padding). ``renewal_info`` asks the CA: its ACME directory names the ``renewalInfo`` URL,
a GET of ``renewalInfo/<id>`` answers ``suggestedWindow`` {start, end} and maybe an
``explanationURL``. The answer is kept in a cache file (sources' callers choose the
directory, see osop_checks.state) until the Retry-After the CA gave, held between one
minute and one day (RFC 9773 4.3.2), six hours when the CA gives none or garbage; while it
is fresh the CA is not asked. A CA that does not answer: the last cached answer is used
(and said to be), else the Renewal carries the error.

HTTP goes through sources.publicip.http_request (requests, size-capped, the check's deadline).
"""
from __future__ import annotations

import base64
import dataclasses
import datetime
import email.utils
import json
import logging
import re
import time

from osop_checks import text

log = logging.getLogger("nagiosplugin")

MIN_RETRY, MAX_RETRY, DEFAULT_RETRY = 60, 86400, 6 * 3600  # seconds (RFC 9773 4.3)
MAX_BODY = 64 * 1024  # a directory or renewalInfo object is a few hundred bytes
DEFAULT_TIMEOUT = 10.0
_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\d)[Tt ](\d\d:\d\d:\d\d)(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")


class AriError(ValueError):
    """No usable renewal information; the text says why."""


@dataclasses.dataclass
class Renewal:
    """The CA's suggestion for one certificate. ``start``/``end`` are aware UTC datetimes
    (None with ``error``); ``retry_at``: epoch seconds until which the answer is fresh;
    ``asked_at``: when the CA answered; ``cached``: this run took it from the cache;
    ``error``: why there is no (fresh) answer, in words."""
    url: str
    cert_id: str = ""
    start: datetime.datetime | None = None
    end: datetime.datetime | None = None
    explanation: str | None = None
    retry_at: float = 0.0
    asked_at: float = 0.0
    cached: bool = False
    error: str | None = None

    def to_json(self):
        return {"url": self.url, "cert_id": self.cert_id, "start": self.start.isoformat(),
                "end": self.end.isoformat(), "explanation": self.explanation,
                "retry_at": self.retry_at, "asked_at": self.asked_at}

    @classmethod
    def from_json(cls, data):
        return cls(str(data["url"]), str(data["cert_id"]),
                   _aware(datetime.datetime.fromisoformat(data["start"])),
                   _aware(datetime.datetime.fromisoformat(data["end"])),
                   data.get("explanation"), float(data["retry_at"]), float(data["asked_at"]))


def _aware(moment):
    if moment.tzinfo is None:
        raise ValueError("a time without a time zone")
    return moment.astimezone(datetime.timezone.utc)


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def certificate_id(der):
    """The RFC 9773 identifier of the certificate ``der``; AriError when it has no
    Authority Key Identifier with a keyIdentifier."""
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        aki = None
    if aki is None or not aki.key_identifier:
        raise AriError("the certificate has no Authority Key Identifier, so the CA cannot "
                       "be asked for it")
    serial = cert.serial_number
    # the DER INTEGER's content: two's complement, a leading zero byte when the top bit is set
    serial_bytes = serial.to_bytes(serial.bit_length() // 8 + 1, "big")
    return "%s.%s" % (_b64url(aki.key_identifier), _b64url(serial_bytes))


def parse_time(value):
    """An RFC 3339 timestamp as an aware UTC datetime (fractions beyond microseconds, as Go
    writes them, are cut); AriError for anything else."""
    found = _RFC3339.match(str(value)) if isinstance(value, str) else None
    if not found:
        raise AriError("%r is not an RFC 3339 time" % (value,))
    day, clock, fraction, zone = found.groups()
    iso = "%sT%s%s%s" % (day, clock, (fraction or "")[:7],
                        "+00:00" if zone in ("Z", "z") else zone)
    try:
        return datetime.datetime.fromisoformat(iso).astimezone(datetime.timezone.utc)
    except ValueError as exc:
        raise AriError("%r is not a valid time: %s" % (value, exc)) from None


def parse_renewal_info(body):
    """(start, end, explanationURL) of a renewalInfo object; AriError when it is not one
    (RFC 9773 4.2: an end not after the start is no answer)."""
    try:
        data = json.loads(body)
        window = data["suggestedWindow"]
        start, end = parse_time(window["start"]), parse_time(window["end"])
    except (ValueError, KeyError, TypeError) as exc:
        raise AriError("the renewalInfo answer is not a renewal information object (%s)"
                       % exc) from None
    if end <= start:
        raise AriError("the suggested window ends (%s) before it starts (%s)" % (
            end.isoformat(), start.isoformat()))
    explanation = data.get("explanationURL")
    # the CA's text reaches the plugin output: one line, no '|'
    return start, end, text.oneline(explanation, 300) if isinstance(explanation, str) else None


def retry_after(value, now):
    """Seconds until the CA wants to be asked again, from a Retry-After header (seconds or
    an HTTP date), held between MIN_RETRY and MAX_RETRY; DEFAULT_RETRY without one."""
    seconds = None
    if value:
        value = value.strip()
        if value.isdigit():
            seconds = int(value)
        else:
            try:
                seconds = email.utils.parsedate_to_datetime(value).timestamp() - now
            except (TypeError, ValueError):
                seconds = None
    if seconds is None:
        return DEFAULT_RETRY
    return min(MAX_RETRY, max(MIN_RETRY, seconds))


def _get_json(url, started, limit, what):
    from osop_checks.sources import publicip

    try:
        status, reason, body, headers = publicip.http_request(
            url, started, limit, headers={"Accept": "application/json"}, max_body=MAX_BODY,
            what=what, with_headers=True)
    except publicip.HttpError as exc:
        raise AriError("%s: %s" % (url, exc)) from None
    if status != 200:
        raise AriError("%s: HTTP %d %s" % (url, status, reason))
    return body, headers


def ask(directory_url, cert_id, now, timeout=None):
    """Ask the CA (no cache): its directory, then the renewalInfo of ``cert_id``; a Renewal,
    AriError when there is no usable answer. ``now``: epoch seconds."""
    from osop_checks import deadline

    started = time.monotonic()
    try:
        limit = deadline.remaining(timeout if timeout is not None else DEFAULT_TIMEOUT)
    except deadline.Timeout as exc:
        raise AriError("%s: %s" % (directory_url, exc)) from None
    body, _ = _get_json(directory_url, started, limit, "an ACME directory")
    try:
        base = json.loads(body)["renewalInfo"]
        if not isinstance(base, str) or not base:
            raise TypeError()
    except (ValueError, TypeError):
        raise AriError("%s is not an ACME directory" % directory_url) from None
    except KeyError:
        raise AriError("the ACME directory %s offers no renewalInfo (the CA does not "
                       "support ARI)" % directory_url) from None
    url = base.rstrip("/") + "/" + cert_id
    log.info("asking %s", url)
    body, headers = _get_json(url, started, limit, "a renewalInfo object")
    start, end, explanation = parse_renewal_info(body)
    return Renewal(url, cert_id, start, end, explanation,
                   retry_at=now + retry_after(headers.get("Retry-After"), now), asked_at=now)


def renewal_info(directory_url, der, cache_for, now, timeout=None):
    """The Renewal of the certificate ``der``: from ``cache_for(cert_id)`` (a state.Cache,
    or None) while it is fresh, else asked; a CA that does not answer leaves the cached
    answer in use. Never raises AriError: a Renewal with ``error`` instead."""
    try:
        cert_id = certificate_id(der)
    except AriError as exc:
        return Renewal(directory_url, error=str(exc))
    except ValueError as exc:  # cryptography could not read it
        return Renewal(directory_url, error="cannot read the certificate: %s" % exc)
    key = ["renewalInfo", 1]
    cache = cache_for(cert_id) if cache_for else None
    kept = cache.load(key, lambda data: Renewal.from_json(data["renewal"])) if cache else None
    if kept is not None and now < kept.retry_at:
        kept.cached = True
        log.info("renewalInfo of %s from the cache, fresh until %s", cert_id,
                 time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(kept.retry_at)))
        return kept
    try:
        renewal = ask(directory_url, cert_id, now, timeout)
    except AriError as exc:
        if kept is not None:
            log.warning("%s; the cached answer of %s stays in use", exc,
                        time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(kept.asked_at)))
            kept.cached = True
            kept.error = str(exc)
            return kept
        return Renewal(directory_url, cert_id, error=str(exc))
    if cache:
        cache.store(key, {"renewal": renewal.to_json()})
    return renewal
