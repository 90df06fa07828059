"""DANE: the TLSA records of a TLS endpoint (RFC 6698, 7671; mail: RFC 7672), looked up with
DNSSEC, and which certificates of a served chain they match.

Whether an answer is DNSSEC-validated is the word of a validating resolver: its answer's AD
bit. That bit is only worth what the path to the resolver is worth, so it is trusted when
the resolver is on loopback (127.0.0.0/8, ::1: unbound or systemd-resolved on the host
itself, as DANE-validating mail servers run it) or when the admin states that the path is
trusted (``trust_ad``, e.g. a resolver on the same host reached over a private link). Any
other answer counts as not validated. The resolver is the one given, or else those of
/etc/resolv.conf; the queries go through sources.dns (bounded, dnspython for the messages).

Matching (``compare``) is computed here, with cryptography, so that the judgement gets plain
data: for each record the position in the chain it matches, or None.
"""
from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import logging

from osop_checks.sources import dns as dns_source

log = logging.getLogger("nagiosplugin")

USAGES = {0: "PKIX-TA", 1: "PKIX-EE", 2: "DANE-TA", 3: "DANE-EE"}
SELECTORS = {0: "Cert", 1: "SPKI"}
MATCHING = {0: "Full", 1: "SHA2-256", 2: "SHA2-512"}
# The usages checked: DANE-TA and DANE-EE, which RFC 7672 leaves to SMTP. PKIX-TA/PKIX-EE
# records are reported as not checked.
CHECKED_USAGES = (2, 3)
# How many CNAMEs before a TLSA record are followed (RFC 7671 4.1 allows aliases).
MAX_CNAMES = 8


@dataclasses.dataclass
class Record:
    """One TLSA record: usage, selector, matching type and the association data."""
    usage: int
    selector: int
    mtype: int
    data: bytes

    @property
    def usable(self):
        return (self.usage in CHECKED_USAGES and self.selector in SELECTORS
                and self.mtype in MATCHING)

    def text(self, digits=16):
        """'3 1 1 3b6a27bcceb6a42d…': as in the zone file, the data shortened."""
        hexdata = self.data.hex()
        if len(hexdata) > digits:
            hexdata = hexdata[:digits] + "…"
        return "%d %d %d %s" % (self.usage, self.selector, self.mtype, hexdata)


@dataclasses.dataclass
class Lookup:
    """The TLSA answer for ``name``: ``kind`` as sources.dns (ok, nxdomain, nodata or a
    failure with ``error`` in words); ``validated`` only for an AD answer from a trusted
    resolver, ``trust`` says why (not) in words."""
    name: str
    kind: str
    records: list[Record] = dataclasses.field(default_factory=list)
    server: str = ""
    validated: bool = False
    trust: str = ""
    error: str | None = None


@dataclasses.dataclass
class Comparison:
    """A record and the chain position it matches (0 the leaf), None: none. ``unlinked``:
    a DANE-TA record matches a certificate the server sent, but the chain below it does not
    lead there (a signature does not verify): no match."""
    record: Record
    position: int | None
    unlinked: str | None = None


def tlsa_name(host, port):
    """``_PORT._tcp.HOST.``: where the TLSA records of a TCP endpoint are."""
    return "_%d._tcp.%s." % (port, host.rstrip("."))


def is_loopback(server):
    try:
        return ipaddress.ip_address(server[0]).is_loopback
    except ValueError:
        return False


def validation(ad, server, trust_ad=False):
    """(validated, why in words) of an answer with or without the AD bit from ``server``:
    the bit counts from a resolver on loopback, or where ``trust_ad`` states the path."""
    where = dns_source.format_server(server)
    if not ad:
        return False, "no AD bit in the answer of %s" % where
    if is_loopback(server):
        return True, "DNSSEC-validated by %s (AD bit, resolver on loopback)" % where
    if trust_ad:
        return True, "DNSSEC-validated by %s (AD bit, trusted path stated)" % where
    return False, ("%s set the AD bit, but the path to it is not trusted (not on loopback, "
                   "and --dns-trust-ad not given)" % where)


def lookup(name, servers, trust_ad=False):
    """The TLSA records of ``name`` from the first of ``servers`` ([(ip, port)]) that
    answers; never raises DnsError (a failure is a Lookup with its kind and words)."""
    import dns.flags
    import dns.rcode

    try:
        response, server = dns_source.ask_servers(name, "TLSA", servers, dnssec=True)
    except dns_source.DnsError as exc:
        error = str(exc)
        if exc.kind == dns_source.SERVFAIL:
            error += " (a validating resolver answers so when the DNSSEC signatures are bogus)"
        return Lookup(name, exc.kind, error=error)
    where = dns_source.format_server(server)
    found = Lookup(name, dns_source.OK, server=where)
    found.validated, found.trust = validation(bool(response.flags & dns.flags.AD), server,
                                              trust_ad)
    if response.rcode() == dns.rcode.NXDOMAIN:
        found.kind, found.error = dns_source.NXDOMAIN, "%s does not exist (NXDOMAIN)" % name
        return found
    found.records = _records(response, name)
    if not found.records:
        found.kind, found.error = dns_source.NODATA, "%s has no TLSA record" % name
    log.info("TLSA %s from %s: %s; %s", name, where,
             ", ".join(r.text() for r in found.records) or found.kind, found.trust)
    return found


def _records(response, name):
    import dns.name
    import dns.rdatatype

    target = dns.name.from_text(name)
    for _ in range(MAX_CNAMES + 1):
        rrset = next((r for r in response.answer
                      if r.name == target and r.rdtype == dns.rdatatype.TLSA), None)
        if rrset is not None:
            return [Record(rd.usage, rd.selector, rd.mtype, bytes(rd.cert)) for rd in rrset]
        cname = next((r for r in response.answer
                      if r.name == target and r.rdtype == dns.rdatatype.CNAME), None)
        if cname is None:
            return []
        target = cname[0].target
    return []


def association(der, selector, mtype):
    """The association data of a certificate (DER) for ``selector`` and ``mtype``."""
    if selector == 1:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        data = x509.load_der_x509_certificate(der).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    else:
        data = der
    if mtype == 1:
        return hashlib.sha256(data).digest()
    if mtype == 2:
        return hashlib.sha512(data).digest()
    return data


def signed_by(der, issuer_der):
    """Whether the certificate ``der`` carries a valid signature of ``issuer_der``'s key (RSA
    PKCS#1 v1.5, ECDSA, Ed25519/Ed448; cryptography 38 of Debian 12 has no
    verify_directly_issued_by)."""
    from cryptography import exceptions, x509
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

    cert = x509.load_der_x509_certificate(der)
    key = x509.load_der_x509_certificate(issuer_der).public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                       cert.signature_hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes,
                       ec.ECDSA(cert.signature_hash_algorithm))
        elif isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            key.verify(cert.signature, cert.tbs_certificate_bytes)
        else:
            return False
    except (exceptions.InvalidSignature, ValueError, TypeError,
            exceptions.UnsupportedAlgorithm):
        return False
    return True


def _unlinked(chain_der, position):
    """Why the served chain does not lead from the leaf up to ``position``, or None."""
    for index in range(position):
        if not signed_by(chain_der[index], chain_der[index + 1]):
            return "certificate #%d is not signed by #%d" % (index + 1, index + 2)
    return None


def compare(records, chain_der):
    """Each record with the position in ``chain_der`` (the chain as the server sent it, leaf
    first) it matches: DANE-EE the leaf only, DANE-TA a certificate the server sent above
    the leaf (RFC 7671 5.2: the trust anchor must be in the served chain) to which the
    chain below leads, each certificate signed by the next."""
    compared = []
    for record in records:
        position, unlinked = None, None
        if record.usable:
            places = [0] if record.usage == 3 else range(1, len(chain_der))
            position = next((i for i in places if association(
                chain_der[i], record.selector, record.mtype) == record.data), None)
        if position:
            unlinked = _unlinked(chain_der, position)
            if unlinked:
                position = None
        compared.append(Comparison(record, position, unlinked))
    return compared
