"""Revocation of the certificates of a TLS chain: CRLs over HTTP, OCSP answers.

I/O and parsing only; no judgement. ``Revocation.check(chain)`` gives one Status per
certificate of a chain (tls.Certificate, leaf first, with the trust store's part), from

- the OCSP answer the server stapled (no network),
- the CRL every certificate names (CRL distribution points, HTTP), each URL fetched once per
  run for every endpoint (``check_all`` runs the chains concurrently; a second chain naming
  the same URL waits for the first one's answer), its size capped, its signature checked
  against the certificate's issuer, and kept in the cache directory: used without asking
  while younger than REFRESH, and, when its server cannot be reached, until its nextUpdate;
- with ``ocsp``, the OCSP responder the certificate names (AIA), asked over HTTP.

Every fetch obeys the run's --timeout (deadline.remaining). cryptography is imported inside
the functions, like in sources.tls.
"""
from __future__ import annotations

import base64
import collections
import datetime
import functools
import logging
import threading
import time

from osop_checks import deadline, fanout

log = logging.getLogger("nagiosplugin")

CRL_LIMIT = 20 * 1024 * 1024  # bytes of one CRL (the largest public ones are a few MiB)
OCSP_LIMIT = 64 * 1024        # bytes of one OCSP answer
# A cached CRL younger than this is used without asking its server again; an older one is
# refreshed, and kept (until its nextUpdate) when its server does not answer.
REFRESH = 3600.0
MODES = ("auto", "crl", "ocsp", "off")
# Seconds of the --timeout a fetch leaves to the others: it gives up (and names its URL)
# before the run as a whole stops waiting for the chains.
RESERVE = 0.3


def _fetch_limit():
    left = deadline.remaining(None)
    return 30.0 if left is None else max(0.05, left - RESERVE)


class Status(collections.namedtuple(
        "Status", "state source why note revoked_at reason", defaults=("", "", "", None, None))):
    """What is known of one certificate's revocation. ``state``: 'good', 'revoked',
    'unknown' (published, but no valid answer could be had: ``why``) or 'unpublished' (it
    names no CRL or responder, or it is the trust anchor). ``source``: where the answer
    came from ('stapled OCSP', 'CRL http://...', 'OCSP http://...'); ``note``: how fresh
    it is (from the cache, valid until ...); ``revoked_at`` (datetime) and ``reason``."""
    __slots__ = ()


def _utc(value):
    return value if value is None or value.tzinfo else value.replace(
        tzinfo=datetime.timezone.utc)


def _attr_utc(obj, name):
    value = getattr(obj, name + "_utc", None)  # cryptography >= 42
    return _utc(value if value is not None else getattr(obj, name))


def _stamp(moment):
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def verify_signature(public_key, signature, data, hash_algorithm):
    """Raise InvalidSignature (or ValueError for a key type not known) unless ``signature``
    over ``data`` verifies with ``public_key``: OCSP answers and delegated responder
    certificates, which cryptography reads but does not verify."""
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa

    if isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(signature, data, padding.PKCS1v15(), hash_algorithm)
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(signature, data, ec.ECDSA(hash_algorithm))
    elif isinstance(public_key, dsa.DSAPublicKey):
        public_key.verify(signature, data, hash_algorithm)
    elif isinstance(public_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        public_key.verify(signature, data)
    else:
        raise ValueError("a key of type %s" % type(public_key).__name__)


def issuer_of(cert, chain):
    """The certificate of ``chain`` that issued ``cert`` (by name; None when not there)."""
    for other in chain:
        if other is not cert and other.subject == cert.issuer:
            return other
    return None


class Revocation:
    """One run's revocation answers: ``mode`` (auto, crl, ocsp), ``cache_dir`` (None: no
    cache files), ``now`` (an aware datetime). CRLs are kept in memory for the run, so that
    every endpoint of it shares them."""

    def __init__(self, mode="auto", cache_dir=None, now=None, http=None):
        from osop_checks.sources.publicip import http_request

        self.mode = mode
        self.cache_dir = cache_dir
        self.now = now or datetime.datetime.now(datetime.timezone.utc)
        self.http = http or http_request
        self._crls = {}  # url -> [Event, (DER or None, why, note)]
        self._checked = {}  # (url, issuer fingerprint) -> the verified CRL, or None
        self._lock = threading.Lock()

    # -- CRLs -----------------------------------------------------------------------------

    def check_all(self, items):
        """``check`` for every (chain, staple) of ``items`` concurrently, within the run's
        --timeout: a list of Status lists (None for a chain still unanswered then). A CRL
        several chains name is fetched once, the others wait for it."""
        results = [None] * len(items)
        asking = []
        for index, (chain, staple) in enumerate(items):
            if self._needs_network(chain):
                asking.append(index)
            else:  # nothing to fetch (a staple at most): answered even with no time left
                results[index] = self.check(chain, staple)
        if not asking:
            return results
        try:
            limit = deadline.remaining(None)
        except deadline.Timeout:
            return results
        answers = fanout.run_all([functools.partial(self.check, *items[index])
                                  for index in asking], limit=limit)
        for index, (answer, error) in zip(asking, answers):
            if error is not None and not isinstance(error, deadline.Timeout):
                raise error  # a bug: the runner reports it
            results[index] = answer
        return results

    def _needs_network(self, chain):
        return any(cert.crl_urls or (self.mode == "ocsp" and cert.ocsp_urls)
                   for cert in chain if not cert.self_issued)

    def _crl(self, url):
        """(DER, why, note) of the CRL at ``url``: from memory, the cache, or its server;
        the first to ask fetches it, the others wait for that answer."""
        with self._lock:
            entry = self._crls.get(url)
            mine = entry is None
            if mine:
                entry = self._crls[url] = [threading.Event(), None]
        if not mine:
            if not entry[0].wait(deadline.remaining(None)):
                return self._fallback(url, "no answer within the --timeout")
            return entry[1]
        try:
            cached = self._cached(url)
            if cached is not None and time.time() - cached[1] < REFRESH:
                entry[1] = (cached[0], "", "cached %s" % _stamp(
                    datetime.datetime.fromtimestamp(cached[1], datetime.timezone.utc)))
            else:
                entry[1] = self._download(url)
        finally:
            if entry[1] is None:
                entry[1] = (None, "CRL %s: no answer" % url, "")
            entry[0].set()
        return entry[1]

    def _download(self, url):
        from osop_checks.sources.publicip import HttpError

        started = time.monotonic()
        try:
            status, reason, body = self.http(url, started, _fetch_limit(),
                                             max_body=CRL_LIMIT, what="a CRL",
                                             headers={"Accept": "application/pkix-crl"})
            if status != 200:
                raise HttpError("HTTP %d %s" % (status, reason))
            crl = _load_crl(body)
        except (HttpError, ValueError, deadline.Timeout) as exc:
            log.info("CRL %s: %s", url, exc)
            return self._fallback(url, str(exc) or "no answer within the --timeout")
        der = _crl_der(crl)
        self._store(url, der, _attr_utc(crl, "next_update"))
        return der, "", "fetched now"

    def _fallback(self, url, why):
        """The cached CRL of ``url`` while it is valid, else none with the reason."""
        cached = self._cached(url)
        if cached is not None:
            crl = _load_crl(cached[0])
            next_update = _attr_utc(crl, "next_update")
            if next_update is not None and next_update > self.now:
                return cached[0], "", "its server failed (%s): the copy cached %s, valid " \
                    "until %s" % (why, _stamp(datetime.datetime.fromtimestamp(
                        cached[1], datetime.timezone.utc)), _stamp(next_update))
            why += "; the cached copy expired %s" % _stamp(next_update) \
                if next_update else ""
        return None, "CRL %s unreachable: %s" % (url, why), ""

    def _cache(self, url):
        from osop_checks import state

        return state.Cache(self.cache_dir, "tls_expiry-crl", {"crl": url}, "the CRL's server",
                           limit=CRL_LIMIT * 2)

    def _cached(self, url):
        """(DER, time fetched) of the cached CRL of ``url``, or None."""
        if not self.cache_dir:
            return None
        return self._cache(url).load(url, lambda data: (
            base64.b64decode(data["der"], validate=True), float(data["time"])))

    def _store(self, url, der, next_update):
        if self.cache_dir and next_update is not None and next_update > self.now:
            self._cache(url).store(url, {"der": base64.b64encode(der).decode("ascii"),
                                         "next_update": _stamp(next_update)})

    # -- one chain ------------------------------------------------------------------------

    def check(self, chain, staple=None):
        """One Status per certificate of ``chain`` (leaf first; tls.Certificate with the
        trust store's part), ``staple`` the leaf's stapled OCSP answer (DER) or None."""
        statuses = []
        for index, cert in enumerate(chain):
            issuer = issuer_of(cert, chain)
            if cert.self_issued:
                statuses.append(Status("unpublished", why="the trust anchor"))
                continue
            answers = []
            if index == 0 and staple is not None and self.mode in ("auto", "ocsp"):
                answers.append(self._ocsp_answer(cert, issuer, staple, "stapled OCSP"))
            # auto: a stapled answer that decides is enough (no network for the leaf)
            if self.mode != "auto" or not (answers and answers[0].state in (
                    "good", "revoked")):
                answers += [self._crl_status(cert, issuer, url) for url in cert.crl_urls]
            if self.mode == "ocsp":
                answers += [self._ask_responder(cert, issuer, url) for url in cert.ocsp_urls]
            statuses.append(_combine(answers))
        return statuses

    def _crl_status(self, cert, issuer, url):
        from cryptography import x509

        source = "CRL %s" % url
        der, why, note = self._crl(url)
        if der is None:
            return Status("unknown", source, why)
        if issuer is None:
            return Status("unknown", source, "its issuer %r is not known, so the CRL's "
                          "signature cannot be checked" % cert.issuer)
        crl = self._verified(url, der, issuer)
        if crl is None:
            return Status("unknown", source, "the CRL at %s is not signed by the issuer %r"
                          % (url, issuer.name))
        next_update = _attr_utc(crl, "next_update")
        if next_update is not None and next_update <= self.now:
            return Status("unknown", source, "the CRL at %s expired %s (its CA publishes "
                          "no newer one)" % (url, _stamp(next_update)))
        entry = crl.get_revoked_certificate_by_serial_number(int(cert.serial, 16))
        note = note + (", valid until %s" % _stamp(next_update) if next_update else "")
        if entry is None:
            return Status("good", source, note=note)
        return Status("revoked", source, note=note,
                      revoked_at=_attr_utc(entry, "revocation_date"),
                      reason=_crl_reason(entry, x509))

    def _verified(self, url, der, issuer):
        """The CRL ``der`` of ``url`` once its signature verifies against ``issuer``, else
        None; each (CRL, issuer) is loaded and verified once per run, whatever the number
        of endpoints whose chains name it."""
        from cryptography import x509

        key = (url, issuer.fingerprint)
        with self._lock:
            if key in self._checked:
                return self._checked[key]
        crl = _load_crl(der)
        issuer_cert = x509.load_der_x509_certificate(issuer.der)
        if crl.issuer != issuer_cert.subject or not crl.is_signature_valid(
                issuer_cert.public_key()):
            crl = None
        with self._lock:
            return self._checked.setdefault(key, crl)

    def _ask_responder(self, cert, issuer, url):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.serialization import Encoding
        from cryptography.x509 import ocsp

        from osop_checks.sources.publicip import HttpError

        source = "OCSP %s" % url
        if issuer is None:
            return Status("unknown", source, "its issuer %r is not known" % cert.issuer)
        request = ocsp.OCSPRequestBuilder().add_certificate(
            x509.load_der_x509_certificate(cert.der),
            x509.load_der_x509_certificate(issuer.der), hashes.SHA1()).build()
        started = time.monotonic()
        try:
            status, reason, body = self.http(
                url, started, _fetch_limit(), method="POST",
                data=request.public_bytes(Encoding.DER), max_body=OCSP_LIMIT,
                what="an OCSP answer", headers={"Content-Type": "application/ocsp-request"})
            if status != 200:
                raise HttpError("HTTP %d %s" % (status, reason))
        except (HttpError, deadline.Timeout) as exc:
            return Status("unknown", source, "OCSP responder %s: %s" % (
                url, exc or "no answer within the --timeout"))
        return self._ocsp_answer(cert, issuer, body, source)

    def _ocsp_answer(self, cert, issuer, der, source):
        """The Status an OCSP answer (DER) gives ``cert``, once its signature (by the
        issuer or a responder the issuer delegated to), its subject and its dates check."""
        from cryptography import x509
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509 import ocsp
        from cryptography.x509.oid import ExtendedKeyUsageOID

        try:
            answer = ocsp.load_der_ocsp_response(der)
        except ValueError as exc:
            return Status("unknown", source, "the %s answer cannot be read (%s)" % (
                source, exc))
        if answer.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            return Status("unknown", source, "the %s answer is %s" % (
                source, answer.response_status.name.lower()))
        if issuer is None:
            return Status("unknown", source, "its issuer %r is not known" % cert.issuer)
        issuer_cert = x509.load_der_x509_certificate(issuer.der)
        expected = ocsp.OCSPRequestBuilder().add_certificate(
            x509.load_der_x509_certificate(cert.der), issuer_cert,
            answer.hash_algorithm).build()
        if answer.serial_number != int(cert.serial, 16) or \
                answer.issuer_key_hash != expected.issuer_key_hash:
            return Status("unknown", source, "the %s answer is about another certificate"
                          % source)
        signer = issuer_cert
        for responder in answer.certificates:
            if responder.issuer == issuer_cert.subject:
                try:
                    verify_signature(issuer_cert.public_key(), responder.signature,
                                     responder.tbs_certificate_bytes,
                                     responder.signature_hash_algorithm)
                    usage = responder.extensions.get_extension_for_class(
                        x509.ExtendedKeyUsage).value
                except (InvalidSignature, ValueError, x509.ExtensionNotFound):
                    continue
                if ExtendedKeyUsageOID.OCSP_SIGNING in usage:
                    signer = responder
        try:
            verify_signature(signer.public_key(), answer.signature, answer.tbs_response_bytes,
                             answer.signature_hash_algorithm or hashes.SHA256())
        except (InvalidSignature, ValueError):
            return Status("unknown", source, "the %s answer's signature does not verify "
                          "against the issuer %r" % (source, issuer.name))
        this_update = _attr_utc(answer, "this_update")
        next_update = _attr_utc(answer, "next_update")
        if next_update is not None and next_update <= self.now:
            return Status("unknown", source, "the %s answer expired %s" % (
                source, _stamp(next_update)))
        if this_update > self.now + datetime.timedelta(minutes=5):
            return Status("unknown", source, "the %s answer is from the future (%s)" % (
                source, _stamp(this_update)))
        note = "produced %s%s" % (_stamp(this_update), ", valid until %s" % _stamp(
            next_update) if next_update else "")
        if answer.certificate_status == ocsp.OCSPCertStatus.GOOD:
            return Status("good", source, note=note)
        if answer.certificate_status == ocsp.OCSPCertStatus.REVOKED:
            reason = answer.revocation_reason
            return Status("revoked", source, note=note,
                          revoked_at=_attr_utc(answer, "revocation_time"),
                          reason=_reason_words(reason) if reason else None)
        return Status("unknown", source, "the %s answer says the certificate is unknown to "
                      "its CA" % source)


def _combine(answers):
    """One Status from several sources: revoked by any, else good by any, else the first
    unknown; none at all: unpublished."""
    for state in ("revoked", "good", "unknown"):
        for answer in answers:
            if answer.state == state:
                return answer
    return Status("unpublished", why="it names no CRL (nor stapled an OCSP answer)")


def _load_crl(data):
    from cryptography import x509

    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def _crl_der(crl):
    from cryptography.hazmat.primitives.serialization import Encoding

    return crl.public_bytes(Encoding.DER)


def _crl_reason(entry, x509):
    try:
        return _reason_words(entry.extensions.get_extension_for_class(x509.CRLReason)
                             .value.reason)
    except x509.ExtensionNotFound:
        return None


def _reason_words(flag):
    """'keyCompromise' as RFC 5280 names it (cryptography: ReasonFlags.key_compromise)."""
    words = flag.name.split("_")
    return words[0] + "".join(w.capitalize() for w in words[1:])
