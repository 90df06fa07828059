"""TLS certificates: the chain a server presents (direct TLS or STARTTLS), and local files.

I/O and parsing only; no judgement. ``fetch`` speaks to one endpoint (every socket step bounded
by ``deadline.remaining()``), ``fetch_all`` runs it for many endpoints in threads,
``load_file`` reads PEM/DER/PKCS#7 files. Trust is decided by OpenSSL in the real handshake
(``ssl``); certificates are read with ``cryptography``. Both, and socket and ipaddress, are
imported inside the functions that need them: a run on local files (--file) loads none of
them once a file's certificates are in the cache (see ``load_file``).
"""
from __future__ import annotations

import datetime
import functools
import logging
import re
import threading
import warnings

from osop_checks import __version__, deadline, text
from osop_checks.record import Record
from osop_checks.address import family_of, socket_family  # "address" names the peer here

log = logging.getLogger("nagiosplugin")

STARTTLS = ("smtp", "imap", "pop3", "ftp", "ldap", "postgres", "xmpp")
# The port a protocol is usually served on, and the protocol a port implies.
PROTOCOL_PORTS = {"smtp": 25, "imap": 143, "pop3": 110, "ftp": 21, "ldap": 389,
                  "postgres": 5432, "xmpp": 5222}
PORT_PROTOCOLS = {25: "smtp", 587: "smtp", 143: "imap", 110: "pop3", 21: "ftp", 389: "ldap",
                  5432: "postgres", 5222: "xmpp"}
TLS_VERSIONS = ("1.0", "1.1", "1.2", "1.3")
# ssl.TLSVersion member names; ssl itself is imported where a connection is made (it costs
# start-up time that --file and usage errors do not need).
_SSL_VERSIONS = {"1.0": "TLSv1", "1.1": "TLSv1_1", "1.2": "TLSv1_2", "1.3": "TLSv1_3"}

# OpenSSL verify codes (X509_V_ERR_*) that tell why a chain is not trusted.
_SELF_SIGNED = 18           # depth zero self-signed certificate
_SELF_SIGNED_IN_CHAIN = 19  # a self-signed root that is not in the trust store
_NO_ISSUER = (2, 20, 21)    # unable to get (local) issuer certificate / verify the first one
_NO_CHECK_TIME = 0x200000   # X509_V_FLAG_NO_CHECK_TIME: validity dates are judged by the check
# Verify codes that no security level changes: the chain is classified from them directly.
_UNTRUSTED_AT_ANY_LEVEL = (_SELF_SIGNED, _SELF_SIGNED_IN_CHAIN) + _NO_ISSUER
_MAX_REPLY = 65536
# Worker threads import cryptography on first use; one at a time, so that no two threads can
# deadlock on the module locks of a package that imports itself in a different order.
_IMPORTING = threading.Lock()


# -- data (records: osop_checks.record, no dataclasses, a cost at every start) -------------

class Certificate(Record):
    """One X.509 certificate, as plain data (times are timezone-aware UTC)."""

    def __init__(self, subject, issuer, subject_cn, issuer_cn, serial, not_before, not_after,
                 dns_names, ip_addresses, key_type, key_bits, signature_hash, fingerprint,
                 der=b"", crl_urls=None, ocsp_urls=None, must_staple=False):
        self.subject = subject
        self.issuer = issuer
        self.subject_cn = subject_cn
        self.issuer_cn = issuer_cn
        self.serial = serial  # hex
        self.not_before = not_before
        self.not_after = not_after
        self.dns_names = dns_names
        self.ip_addresses = ip_addresses
        self.key_type = key_type  # "RSA", "EC secp256r1", "Ed25519" ...
        self.key_bits = key_bits
        self.signature_hash = signature_hash  # None: no hash (Ed25519)
        self.fingerprint = fingerprint  # sha256, hex
        self.der = der
        # Where its revocation is published: CRL distribution points and OCSP responders
        # (HTTP URLs), and whether it demands a stapled OCSP answer (TLS feature must-staple).
        self.crl_urls = crl_urls if crl_urls is not None else []
        self.ocsp_urls = ocsp_urls if ocsp_urls is not None else []
        self.must_staple = must_staple

    def to_json(self):
        return dict(vars(self), not_before=self.not_before.isoformat(),
                    not_after=self.not_after.isoformat(), der=self.der.hex())

    @classmethod
    def from_json(cls, fields):
        """A Certificate from ``to_json``'s fields; KeyError, TypeError or ValueError when
        they are not such fields."""
        fields = dict(fields)
        for name in ("not_before", "not_after"):
            fields[name] = datetime.datetime.fromisoformat(fields[name])
            if fields[name].tzinfo is None:
                raise ValueError("a time without its zone")
        fields["der"] = bytes.fromhex(fields["der"])
        return cls(**fields)

    @property
    def self_issued(self):
        return self.subject == self.issuer

    @property
    def sans(self):
        return ["DNS:" + n for n in self.dns_names] + ["IP:" + a for a in self.ip_addresses]

    @property
    def name(self):
        """A short name for messages: the CN, else the whole subject."""
        return self.subject_cn or self.subject or "(empty subject)"


class Endpoint(Record):
    """Where to connect: ``sni`` is the name sent and matched (defaults to ``host``)."""

    def __init__(self, host, port, starttls=None, sni=None, family=None):
        self.host = host
        self.port = port
        self.starttls = starttls
        self.sni = sni
        self.family = family  # 4 or 6: only that IP version's addresses (-4/-6)

    @property
    def name(self):
        return self.sni or self.host

    @property
    def label(self):
        host = "[%s]" % self.host if ":" in self.host else self.host
        where = "%s:%d" % (host, self.port)
        if self.sni and self.sni != self.host:
            where = "%s@%s" % (self.sni, where)
        return where + (" (%s)" % self.starttls if self.starttls else "")


class Trust(Record):
    """OpenSSL's verdict on the presented chain (validity dates left out: the check judges
    those). ``problem`` is None, 'self-signed', 'untrusted' or 'incomplete'. ``refused``:
    why OpenSSL at its default security level (Python's default context, what Debian's
    clients use) refuses a chain that leads to a trusted CA at level 0 only (a weak key, a
    SHA-1 signature, a server that needs legacy ciphers or versions); empty when it
    accepts it."""

    def __init__(self, problem=None, reason="", refused=""):
        self.problem = problem
        self.reason = reason
        self.refused = refused


class Presented(Record):
    """What one endpoint presented: its Endpoint, the chain (Certificates), the address
    reached, the TLS version and cipher, OpenSSL's Trust, whether the leaf matches the name,
    the older TLS versions it still accepts."""

    def __init__(self, endpoint, chain, address="", version="", cipher="", trust=None,
                 name_matches=None, older_versions=None, from_store=None, client_asked=False,
                 staple=None):
        self.endpoint = endpoint
        self.chain = chain
        self.address = address
        self.version = version
        self.cipher = cipher
        self.trust = trust if trust is not None else Trust()
        self.name_matches = name_matches
        self.older_versions = older_versions if older_versions is not None else []
        # Certificates of the verified path that came from the trust store (the root, an
        # intermediate the server left out): their dates count as much as the presented ones.
        self.from_store = from_store if from_store is not None else []
        # The server asked for a client certificate (CertificateRequest seen in the handshake).
        self.client_asked = client_asked
        # The OCSP answer the server stapled (DER), as it came: the revocation source reads it.
        self.staple = staple


class ConnectionFailed(Exception):
    """The endpoint could not be read; ``stage`` says where it failed, ``reason`` why in
    words; ``timed_out``: the endpoint gave no answer within the --timeout (``timeout``)."""

    def __init__(self, stage, reason, timed_out=False):
        super().__init__("%s: %s" % (stage, reason))
        self.stage = stage
        self.reason = reason
        self.timed_out = timed_out

    @classmethod
    def timeout(cls, stage):
        return cls(stage, "no answer within the --timeout", timed_out=True)


class Attempt(Record):
    """One endpoint's run: the stage it is in while running, then a result (Presented) or an
    error (ConnectionFailed, or ``crash``: any other exception)."""

    def __init__(self, endpoint, stage="starting", presented=None, error=None, crash=None):
        self.endpoint = endpoint
        self.stage = stage
        self.presented = presented
        self.error = error
        self.crash = crash


# -- certificates -------------------------------------------------------------------------

def _utc(cert, name):
    value = getattr(cert, name + "_utc", None)  # cryptography >= 42
    if value is None:
        value = getattr(cert, name).replace(tzinfo=datetime.timezone.utc)
    return value


def parse_certificate(der):
    """A DER certificate as a Certificate (cryptography does the X.509 parsing)."""
    with _IMPORTING:  # one thread at a time through cryptography's first import
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
        from cryptography.x509.oid import NameOID

    cert = x509.load_der_x509_certificate(der)

    def common_name(name):
        values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(values[0].value) if values else ""

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
        ips = [str(a) for a in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        dns_names, ips = [], []
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        key_type, bits = "RSA", key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key_type, bits = "EC " + key.curve.name, key.curve.key_size
    elif isinstance(key, dsa.DSAPublicKey):
        key_type, bits = "DSA", key.key_size
    elif isinstance(key, ed25519.Ed25519PublicKey):
        key_type, bits = "Ed25519", 256
    elif isinstance(key, ed448.Ed448PublicKey):
        key_type, bits = "Ed448", 456
    else:
        key_type, bits = type(key).__name__, 0
    crl_urls, ocsp_urls, must_staple = _revocation_pointers(cert, x509)
    try:
        algorithm = cert.signature_hash_algorithm
        signature_hash = algorithm.name if algorithm is not None else None
    except Exception:  # an algorithm cryptography does not know: name it by its OID
        signature_hash = cert.signature_algorithm_oid.dotted_string
    return Certificate(
        subject=cert.subject.rfc4514_string(), issuer=cert.issuer.rfc4514_string(),
        subject_cn=common_name(cert.subject), issuer_cn=common_name(cert.issuer),
        serial="%X" % cert.serial_number,
        not_before=_utc(cert, "not_valid_before"), not_after=_utc(cert, "not_valid_after"),
        dns_names=dns_names, ip_addresses=ips, key_type=key_type, key_bits=bits,
        signature_hash=signature_hash,
        fingerprint=cert.fingerprint(hashes.SHA256()).hex(), der=der,
        crl_urls=crl_urls, ocsp_urls=ocsp_urls, must_staple=must_staple)


def _revocation_pointers(cert, x509):
    """(CRL URLs, OCSP URLs, must-staple) of a cryptography certificate; HTTP URLs only."""
    from cryptography.x509.oid import AuthorityInformationAccessOID

    crl_urls, ocsp_urls, must_staple = [], [], False
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except (x509.ExtensionNotFound, ValueError):
        points = []
    for point in points:
        for name in point.full_name or ():
            if isinstance(name, x509.UniformResourceIdentifier) and \
                    name.value.lower().startswith("http://"):
                crl_urls.append(name.value)
    try:
        access = cert.extensions.get_extension_for_class(
            x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        access = []
    for description in access:
        location = description.access_location
        if (description.access_method == AuthorityInformationAccessOID.OCSP
                and isinstance(location, x509.UniformResourceIdentifier)
                and location.value.lower().startswith("http://")):
            ocsp_urls.append(location.value)
    try:
        features = cert.extensions.get_extension_for_class(x509.TLSFeature).value
        must_staple = x509.TLSFeatureType.status_request in features
    except (x509.ExtensionNotFound, ValueError):
        pass
    return crl_urls, ocsp_urls, must_staple


_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.S)


def parse_bundle(data):
    """Every certificate in PEM (one or many, PKCS#7 too) or DER (X.509 or PKCS#7) bytes."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    ders = []
    blocks = list(_PEM.finditer(data))
    if blocks:
        for block in blocks:
            kind = block.group(1)
            if kind in (b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"):
                pem = block.group(0).replace(b"TRUSTED CERTIFICATE", b"CERTIFICATE")
                ders.append(x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER))
            elif kind == b"PKCS7":
                # a dear import of its own (S/MIME; the OpenSSL backend before cryptography
                # 40): only PKCS#7 input pays it
                from cryptography.hazmat.primitives.serialization import pkcs7

                ders.extend(c.public_bytes(Encoding.DER)
                            for c in pkcs7.load_pem_pkcs7_certificates(block.group(0)))
    else:
        try:
            ders.append(x509.load_der_x509_certificate(data).public_bytes(Encoding.DER))
        except ValueError:
            from cryptography.hazmat.primitives.serialization import pkcs7  # see above

            try:
                ders.extend(c.public_bytes(Encoding.DER)
                            for c in pkcs7.load_der_pkcs7_certificates(data))
            except ValueError:
                pass
    if not ders:
        raise ValueError("no certificate in it (PEM, DER or PKCS#7 expected)")
    return [parse_certificate(der) for der in ders]


def load_file(path, cache=None):
    """The certificates in a local file; OSError or ValueError when it cannot be read.

    ``cache``: a state.Cache of this file, or None. What was read is kept there under the
    file's sha256 (and this version's number), so that an unchanged file, every run but the
    first after a renewal, is not parsed again: importing cryptography costs more than all
    the rest of such a run."""
    from osop_checks import bounded, state

    data = bounded.read_file(path, CAFILE_LIMIT)
    if cache is None or cache.path is None:  # no cache, or no directory to keep it in
        return parse_bundle(data)
    key = [__version__, state.sha256_hex(data)]
    kept = cache.load(key, lambda fields: [Certificate.from_json(c)
                                           for c in fields["certificates"]])
    if kept is not None:
        return kept
    certificates = parse_bundle(data)
    cache.store(key, {"certificates": [c.to_json() for c in certificates]})
    return certificates


def name_matches(cert, name):
    """Whether ``name`` (a host name or an IP address) is one of the certificate's SANs.

    RFC 6125 rules as browsers apply them: DNS names compared case-insensitively, a wildcard
    only as the whole left-most label and matching exactly one label; IP addresses only
    against IP SANs; the subject CN is not used.
    """
    import ipaddress

    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        address = None
    if address is not None:
        return any(_same_ip(address, ip) for ip in cert.ip_addresses)
    wanted = name.rstrip(".").lower()
    try:
        wanted = wanted.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    for pattern in cert.dns_names:
        pattern = pattern.rstrip(".").lower()
        if pattern == wanted:
            return True
        if pattern.startswith("*.") and "*" not in pattern[2:]:
            head, _, rest = wanted.partition(".")
            if head and rest == pattern[2:] and rest.count(".") >= 1:
                return True
    return False


def _same_ip(address, text_value):
    import ipaddress

    try:
        return ipaddress.ip_address(text_value) == address
    except ValueError:
        return False


# -- the connection -----------------------------------------------------------------------

def _timeout():
    return deadline.remaining(None)


class _Wire:
    """A plain socket with the line reading STARTTLS dialogues need; every read bounded."""

    def __init__(self, sock, stage, label=""):
        self.sock = sock
        self.stage = stage
        self.label = label
        self.buffer = b""

    def send(self, data):
        log.debug("%s %s >> %r", self.label, self.stage, data[:200])
        self.sock.settimeout(_timeout())
        self.sock.sendall(data)

    def recv_some(self):
        self.sock.settimeout(_timeout())
        data = self.sock.recv(4096)
        if not data:
            raise ConnectionFailed(self.stage, "the server closed the connection")
        log.debug("%s %s << %r", self.label, self.stage, data[:200])
        self.buffer += data
        if len(self.buffer) > _MAX_REPLY:
            raise ConnectionFailed(self.stage, "the server sent more than %d bytes" % _MAX_REPLY)

    def line(self):
        while b"\n" not in self.buffer:
            self.recv_some()
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def exactly(self, count):
        while len(self.buffer) < count:
            self.recv_some()
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def until(self, marker):
        while marker not in self.buffer:
            self.recv_some()
        data, _, self.buffer = self.buffer.partition(marker)
        return data + marker

    def reply(self):
        """An SMTP/FTP reply, continuation lines ('250-...') included: (code, last line)."""
        while True:
            line = self.line()
            if len(line) >= 4 and line[3] == "-":
                continue
            return line[:3], line

    def refused(self, what):
        return ConnectionFailed(self.stage, "refused by the server: %s" % text.oneline(
            what, limit=120))


def _smtp(wire, endpoint):
    import socket

    code, line = wire.reply()
    if code != "220":
        raise ConnectionFailed(wire.stage, "unexpected greeting: %s" % text.oneline(line))
    wire.send(b"EHLO " + (socket.gethostname() or "localhost").encode("ascii", "replace")
              + b"\r\n")
    code, line = wire.reply()
    if code != "250":
        raise wire.refused(line)
    wire.send(b"STARTTLS\r\n")
    code, line = wire.reply()
    if code != "220":
        raise wire.refused(line)


def _ftp(wire, endpoint):
    code, line = wire.reply()
    if code != "220":
        raise ConnectionFailed(wire.stage, "unexpected greeting: %s" % text.oneline(line))
    wire.send(b"AUTH TLS\r\n")
    code, line = wire.reply()
    if code != "234":
        raise wire.refused(line)


def _imap(wire, endpoint):
    line = wire.line()
    if not line.startswith("* OK"):
        raise ConnectionFailed(wire.stage, "unexpected greeting: %s" % text.oneline(line))
    wire.send(b"a001 STARTTLS\r\n")
    while True:
        line = wire.line()
        if line.startswith("a001 "):
            break
    if not line.startswith("a001 OK"):
        raise wire.refused(line)


def _pop3(wire, endpoint):
    line = wire.line()
    if not line.startswith("+OK"):
        raise ConnectionFailed(wire.stage, "unexpected greeting: %s" % text.oneline(line))
    wire.send(b"STLS\r\n")
    line = wire.line()
    if not line.startswith("+OK"):
        raise wire.refused(line)


# LDAPMessage { messageID 1, extendedReq [APPLICATION 23] { requestName [0] StartTLS OID } }
_LDAP_STARTTLS_OID = b"1.3.6.1.4.1.1466.20037"
_LDAP_STARTTLS = (b"\x30" + bytes([len(_LDAP_STARTTLS_OID) + 7]) + b"\x02\x01\x01"
                  + b"\x77" + bytes([len(_LDAP_STARTTLS_OID) + 2])
                  + b"\x80" + bytes([len(_LDAP_STARTTLS_OID)]) + _LDAP_STARTTLS_OID)


def _ber_length(wire):
    first = wire.exactly(1)[0]
    if first < 0x80:
        return first
    return int.from_bytes(wire.exactly(first & 0x7F), "big")


def _ldap(wire, endpoint):
    wire.send(_LDAP_STARTTLS)
    if wire.exactly(1) != b"\x30":
        raise ConnectionFailed(wire.stage, "the server does not answer in LDAP")
    body = wire.exactly(_ber_length(wire))
    # messageID (INTEGER), then [APPLICATION 24] ExtendedResponse whose first field is the
    # ENUMERATED resultCode: walk the few TLVs rather than guess offsets.
    pos = 2 + body[1]
    if len(body) < pos + 2 or body[pos] != 0x78:
        raise ConnectionFailed(wire.stage, "unexpected LDAP answer (not an ExtendedResponse)")
    pos += 2 if body[pos + 1] < 0x80 else 2 + (body[pos + 1] & 0x7F)
    if len(body) < pos + 3 or body[pos] != 0x0A:
        raise ConnectionFailed(wire.stage, "unexpected LDAP answer (no resultCode)")
    code = int.from_bytes(body[pos + 2:pos + 2 + body[pos + 1]], "big")
    if code != 0:
        raise wire.refused("LDAP resultCode %d" % code)


def _postgres(wire, endpoint):
    import struct

    wire.send(struct.pack("!ii", 8, 80877103))  # SSLRequest
    answer = wire.exactly(1)
    if answer == b"N":
        raise wire.refused("the server does not accept SSL (answered N)")
    if answer != b"S":
        raise ConnectionFailed(wire.stage, "the server does not answer in the PostgreSQL "
                                           "protocol (%r)" % answer)


def _xmpp(wire, endpoint):
    wire.send(("<?xml version='1.0'?><stream:stream to='%s' xmlns='jabber:client' "
               "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
               % endpoint.name).encode("utf-8"))
    features = wire.until(b"</stream:features>")
    if b"urn:ietf:params:xml:ns:xmpp-tls" not in features:
        raise wire.refused("no starttls among the stream features")
    wire.send(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    answer = wire.until(b">")
    if b"<proceed" not in answer:
        raise wire.refused(answer.decode("utf-8", "replace"))


_DIALOGUES = {"smtp": _smtp, "imap": _imap, "pop3": _pop3, "ftp": _ftp, "ldap": _ldap,
              "postgres": _postgres, "xmpp": _xmpp}


def _connect(endpoint, attempt):
    import socket

    attempt.stage = "resolve"
    try:
        infos = socket.getaddrinfo(endpoint.host, endpoint.port, socket_family(endpoint.family),
                                   socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConnectionFailed("resolve", "cannot resolve %s: %s" % (
            endpoint.host, exc.strerror or exc)) from None
    attempt.stage = "connect"
    errors = []
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(_timeout())
            log.info("connecting to %s port %d (%s)", address[0], address[1], endpoint.label)
            sock.connect(address)
            return sock, address[0]
        except (TimeoutError, deadline.Timeout):  # socket.timeout is TimeoutError
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            errors.append("%s: %s" % (address[0], (exc.strerror or str(exc)).lower()))
    raise ConnectionFailed("connect", "; ".join(errors) or "no address")


CAFILE_LIMIT = 16 * 1024 * 1024  # bytes of a certificate file (Debian's bundle: 220 KiB)


@functools.lru_cache(maxsize=None)
def _context(verify, cafile=None, minimum=None, maximum=None, strict=False, client=None):
    """One SSLContext per kind, shared by all endpoints (the trust store is read once).

    ``strict``: Python's default client context as it is (OpenSSL's default security level,
    Python's ciphers and lowest version), the verdict Debian's own clients would give;
    otherwise security level 0, so that old servers are reached too. ``client``: (cert
    file, key file or None), the client certificate to present when the server asks."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    # Python offers no public way to learn that the server asked for a client certificate;
    # the message callback sees its CertificateRequest (TLS 1.2 and 1.3 alike).
    context._msg_callback = _note_handshake
    if client:
        context.load_cert_chain(client[0], client[1], password=_no_password)
    if not strict:
        # Reach old servers too: their certificates expire as well. Weak keys, signatures
        # and protocol versions are the check's policy options, not reasons to fail.
        with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: we only look at them
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion[_SSL_VERSIONS[minimum or "1.0"]]
            if maximum:
                context.maximum_version = ssl.TLSVersion[_SSL_VERSIONS[maximum]]
        try:
            context.set_ciphers("ALL:@SECLEVEL=0")
        except ssl.SSLError:
            pass
    if verify:
        context.verify_mode = ssl.CERT_REQUIRED
        context.verify_flags |= _NO_CHECK_TIME
        if cafile:  # read here, bounded: OpenSSL would read a /dev/zero without end
            from osop_checks import bounded

            context.load_verify_locations(cadata=bounded.read_text(cafile, CAFILE_LIMIT))
        else:
            context.load_default_certs()
    else:
        context.verify_mode = ssl.CERT_NONE
    _ask_for_staples(context)
    return context


def _note_handshake(conn, direction, version, content_type, msg_type, data):
    """The message callback: notes on the connection what Python does not tell, the
    server's CertificateRequest and its stapled OCSP answer (TLS 1.2 CertificateStatus,
    TLS 1.3 the status_request extension of the leaf's entry in Certificate)."""
    import ssl

    if direction != "read" or content_type != ssl._TLSContentType.HANDSHAKE:
        return
    if msg_type == ssl._TLSMessageType.CERTIFICATE_REQUEST:
        conn.osop_client_asked = True
    elif msg_type == ssl._TLSMessageType.CERTIFICATE_STATUS:
        conn.osop_staple = _status_body(data, 4)
    elif msg_type == ssl._TLSMessageType.CERTIFICATE and version == ssl.TLSVersion.TLSv1_3:
        conn.osop_staple = _tls13_staple(data)


def _status_body(data, pos):
    """The OCSPResponse DER of a CertificateStatus structure at ``pos`` (status_type ocsp,
    uint24 length), or None."""
    if len(data) < pos + 4 or data[pos] != 1:
        return None
    length = int.from_bytes(data[pos + 1:pos + 4], "big")
    body = data[pos + 4:pos + 4 + length]
    return body if len(body) == length and length else None


def _tls13_staple(data):
    """The status_request extension of the first (leaf) entry of a TLS 1.3 Certificate
    message (RFC 8446 4.4.2), or None; a message cut short gives None."""
    try:
        pos = 4 + 1 + data[4] + 3  # header, certificate_request_context, list length
        pos += 3 + int.from_bytes(data[pos:pos + 3], "big")  # the leaf's cert_data
        end = pos + 2 + int.from_bytes(data[pos:pos + 2], "big")
        pos += 2
        while pos + 4 <= end:
            kind = int.from_bytes(data[pos:pos + 2], "big")
            length = int.from_bytes(data[pos + 2:pos + 4], "big")
            if kind == 5:  # status_request
                return _status_body(data, pos + 4)
            pos += 4 + length
    except IndexError:
        pass
    return None


def _ask_for_staples(context):
    """Make ``context`` send the status_request extension, so that servers staple their
    OCSP answer. Python's ssl has no call for it: OpenSSL's SSL_CTX_ctrl is called through
    ctypes on the SSL_CTX the context wraps, found at the start of the context object
    (CPython's PySSLContext: the object header, then SSL_CTX *ctx) and taken only when
    OpenSSL confirms it is that context (its verify mode and security level agree).
    Returns whether it was done; a build where it cannot be done checks without staples."""
    import ctypes
    import ssl
    import sys

    # Reading the pointer of another layout would hand OpenSSL garbage (a crash, not an
    # exception): only the CPython releases whose PySSLContext starts with SSL_CTX *ctx.
    if sys.implementation.name != "cpython" or not (3, 9) <= sys.version_info[:2] <= (3, 14):
        log.info("no OCSP stapling requests: this Python's SSLContext layout is not known")
        return False
    try:
        lib = ctypes.CDLL(getattr(ssl._ssl, "__file__", None))
        ctrl, level, mode = (lib.SSL_CTX_ctrl, lib.SSL_CTX_get_security_level,
                             lib.SSL_CTX_get_verify_mode)
    except (OSError, AttributeError) as exc:
        log.info("no OCSP stapling requests: %s", exc)
        return False
    ctrl.restype, ctrl.argtypes = ctypes.c_long, [ctypes.c_void_p, ctypes.c_int,
                                                  ctypes.c_long, ctypes.c_void_p]
    level.restype = mode.restype = ctypes.c_int
    level.argtypes = mode.argtypes = [ctypes.c_void_p]
    pointer = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
    expected_mode = {ssl.CERT_NONE: 0, ssl.CERT_OPTIONAL: 1, ssl.CERT_REQUIRED: 3}
    if not pointer or level(pointer) != context.security_level or \
            mode(pointer) != expected_mode[context.verify_mode]:
        log.info("no OCSP stapling requests: this Python's SSLContext layout is not known")
        return False
    # SSL_CTX_set_tlsext_status_type(ctx, TLSEXT_STATUSTYPE_ocsp)
    return ctrl(pointer, _SET_TLSEXT_STATUS_REQ_TYPE, 1, None) == 1


_SET_TLSEXT_STATUS_REQ_TYPE = 65  # SSL_CTRL_SET_TLSEXT_STATUS_REQ_TYPE


def _no_password():
    # An encrypted key: OpenSSL would prompt on the terminal and wait for an answer.
    raise ValueError("the client key is encrypted (a check has nobody to type its "
                     "passphrase: give an unencrypted key, readable by the check only)")


KEY_LIMIT = 1024 * 1024  # bytes of a client certificate or key file


def load_client_identity(certfile, keyfile=None):
    """Check the client certificate and key before any endpoint is asked: the key file
    (the certificate file when ``keyfile`` is None) not readable nor writable by others,
    not writable by its group (Debian's ssl-cert group may read it), both files readable
    and within KEY_LIMIT, the key unencrypted and matching the certificate. Returns the
    client certificate (a Certificate); raises OSError or ValueError in words."""
    import os
    import ssl
    import stat

    from osop_checks import bounded

    key_path = keyfile or certfile
    info = os.stat(key_path)
    if not stat.S_ISREG(info.st_mode):
        raise ValueError("the key file %s is not a regular file" % key_path)
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o027:
        raise ValueError(
            "the key file %s is %s (mode %04o): refused, a private key that others can "
            "read or change is nobody's secret; chmod o=,g-w it (readable by its group, as "
            "Debian's ssl-cert, is fine)" % (key_path, "readable by others" if mode & 0o004
                                             else "writable by its group" if mode & 0o020
                                             else "open to others", mode))
    try:
        certs = parse_bundle(bounded.read_file(certfile, KEY_LIMIT))
    except ValueError as exc:
        raise ValueError("the client certificate %s: %s" % (certfile, exc)) from None
    if keyfile:
        bounded.read_file(keyfile, KEY_LIMIT)  # refuses a device or an endless file
    try:
        _context(False, client=(certfile, keyfile))
    except ssl.SSLError as exc:
        reason = (exc.reason or str(exc)).replace("_", " ").lower()
        raise ValueError("the client certificate %s does not go with its key (OpenSSL: %s)"
                         % (certfile, reason)) from None
    return certs[0]


def load_cafile(cafile):
    """Read ``cafile`` into the verifying context now (kept for the handshakes); a file that
    holds no PEM certificate raises ValueError in words, before any endpoint is asked."""
    import ssl

    try:
        _context(True, cafile, None, None, True, None)
    except ssl.SSLError as exc:
        reason = re.sub(r" \(_ssl\.c:\d+\)$", "", exc.reason or exc.strerror or str(exc))
        reason = reason.replace("_", " ").lower()
        raise ValueError("holds no PEM certificate (OpenSSL: %s)" % reason) from None


def _chain(tls, verified=False):
    """DER certificates the peer presented (or OpenSSL's verified chain, anchor included)."""
    import ssl

    method = "get_verified_chain" if verified else "get_unverified_chain"
    getter = getattr(tls, method, None) or getattr(getattr(tls, "_sslobj", None), method, None)
    if getter is None:  # Python < 3.10: the leaf only
        leaf = tls.getpeercert(binary_form=True)
        return [leaf] if leaf else []
    return [c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER)
            for c in (getter() or [])]


def _handshake(endpoint, attempt, context, client=None):
    """Connect, run STARTTLS if asked, shake hands. Returns (tls socket, peer address).
    A server that asked for a client certificate and refused ours (``client``), or our
    having none, is a ConnectionFailed that says so."""
    import ssl

    sock, address = _connect(endpoint, attempt)
    try:
        if endpoint.starttls:
            attempt.stage = "STARTTLS"
            _DIALOGUES[endpoint.starttls](_Wire(sock, attempt.stage, endpoint.label), endpoint)
        attempt.stage = "TLS handshake"
        sock.settimeout(_timeout())
        server_name = None
        if endpoint.name and family_of(endpoint.name.strip("[]")) is None:
            server_name = endpoint.name
        tls = context.wrap_socket(sock, server_hostname=server_name,
                                  do_handshake_on_connect=False)
        tls.settimeout(_timeout())
        try:
            tls.do_handshake()
        except ssl.SSLError as exc:
            # (a chain that fails verification is that, whatever the server asked of us)
            if getattr(tls, "osop_client_asked", False) and not isinstance(
                    exc, ssl.SSLCertVerificationError):
                raise _refused_client(exc, client) from None
            raise
        if getattr(tls, "osop_client_asked", False) and tls.version() == "TLSv1.3":
            _client_accepted(tls, client)
        return tls, address
    except BaseException:
        sock.close()
        raise


# How long a TLS 1.3 server that asked for a client certificate is given to refuse ours
# (its alert follows the handshake at once); only servers that ask pay for it.
_REFUSAL_WAIT = 1.0


def _refused_client(exc, client):
    reason = (exc.reason or str(exc)).replace("_", " ").lower()
    if client is None:
        return ConnectionFailed("TLS handshake", "the server demands a client certificate "
                                "(give --client-cert and --client-key; OpenSSL: %s)" % reason)
    return ConnectionFailed("TLS handshake", "the server refused our client certificate "
                            "(OpenSSL: %s)" % reason)


def _client_accepted(tls, client):
    """In TLS 1.3 the server judges the client certificate after the client's handshake
    is done: wait a moment for its refusal (an alert), raised as ConnectionFailed."""
    import ssl

    tls.settimeout(min(_REFUSAL_WAIT, _timeout()))
    try:
        tls.recv(1)
    except ssl.SSLError as exc:
        raise _refused_client(exc, client) from None
    except (TimeoutError, ssl.SSLWantReadError):
        pass  # no refusal: accepted (or asked for but optional)
    finally:
        tls.settimeout(_timeout())


def _describe(stage, exc):
    """A ConnectionFailed naming the stage and the reason in words."""
    import ssl

    if isinstance(exc, ConnectionFailed):
        return exc
    if isinstance(exc, (TimeoutError, deadline.Timeout)):
        return ConnectionFailed.timeout(stage)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ConnectionFailed(stage, exc.verify_message or str(exc))
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError)):
        return ConnectionFailed(stage, "the server closed the connection (not TLS, or it "
                                       "refused our TLS versions and ciphers)")
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or str(exc)).replace("_", " ").lower()
        if reason in ("wrong version number", "record layer failure", "http request",
                      "packet length too long", "unknown protocol"):
            return ConnectionFailed(stage, "the server does not speak TLS here (OpenSSL: %s)"
                                    % reason)
        return ConnectionFailed(stage, "failed: %s" % reason)
    if isinstance(exc, ConnectionRefusedError):
        return ConnectionFailed(stage, "connection refused")
    if isinstance(exc, UnicodeError):  # the idna codec refused the name: '..', a 64-char label
        return ConnectionFailed(stage, "not a valid host name (%s)" % exc)
    if isinstance(exc, OSError):
        return ConnectionFailed(stage, (exc.strerror or str(exc) or type(exc).__name__).lower())
    raise exc


def _classify(verify_code, message, chain):
    """Turn OpenSSL's verify error into self-signed / incomplete / untrusted, in words."""
    leaf = chain[0] if chain else None
    if verify_code == _SELF_SIGNED:
        return Trust("self-signed", "the certificate is self-signed")
    if verify_code == _SELF_SIGNED_IN_CHAIN:
        return Trust("untrusted", "the root %r is not trusted" % (chain[-1].name if chain
                                                                  else "?"))
    if verify_code in _NO_ISSUER and leaf is not None:
        top = chain[-1]
        if len(chain) == 1 and not leaf.self_issued:
            return Trust("incomplete", "the server sent no intermediate for the issuer %r "
                                       "(nor is it trusted)" % (leaf.issuer_cn or leaf.issuer))
        return Trust("untrusted", "the issuer %r is not trusted" % (top.issuer_cn or top.issuer))
    return Trust("untrusted", message)


def fetch(endpoint, cafile=None, min_version=None, attempt=None, client=None):
    """The chain ``endpoint`` presents, with OpenSSL's trust verdict and the name match.

    Raises ConnectionFailed naming the stage (resolve, connect, STARTTLS, TLS handshake).
    With ``min_version``, a second handshake capped below it tells whether the server still
    accepts older TLS versions. ``client``: (cert file, key file or None) presented when the
    server asks for a client certificate (load_client_identity checked them).
    """
    import ssl

    attempt = attempt or Attempt(endpoint)

    def shake(verify, **kind):
        context = _context(verify, kind.get("cafile"), None, kind.get("maximum"),
                           kind.get("strict", False), client)
        return _handshake(endpoint, attempt, context, client)

    trust = Trust()
    verified_ders = []
    refused = ""
    try:
        try:
            tls, address = shake(True, cafile=cafile, strict=True)
            failure = None
        except (ssl.SSLError, ConnectionResetError) as exc:
            tls, address, failure, refused = _at_level_zero(endpoint, attempt, cafile, exc,
                                                            shake)
        if failure is None:
            verified_ders = _chain(tls, verified=True)
        client_asked = getattr(tls, "osop_client_asked", False)
        staple = getattr(tls, "osop_staple", None)
        with tls:
            ders = _chain(tls)
            version = tls.version() or ""
            cipher = (tls.cipher() or ("",))[0]
    except Exception as exc:
        raise _describe(attempt.stage, exc) from None
    attempt.stage = "reading certificates"
    chain = [parse_certificate(der) for der in ders]
    if failure is not None:
        trust = _classify(failure[0], failure[1], chain)
    trust.refused = refused
    from_store = []
    if failure is None and verified_ders:
        presented = set(ders)
        stored = [d for d in verified_ders if d not in presented]
        from_store = [parse_certificate(d) for d in stored]
        # an intermediate the server left out (the anchor is the store's by right)
        middle = set(verified_ders[1:-1])
        borrowed = [c for d, c in zip(stored, from_store) if d in middle]
        if borrowed:
            trust = Trust("incomplete", "the server did not send the intermediate %s (found "
                          "in the trust store)" % ", ".join(repr(c.name) for c in borrowed))
    result = Presented(endpoint, chain, address, version, cipher, trust,
                       name_matches(chain[0], endpoint.name) if chain else None,
                       from_store=from_store, client_asked=client_asked, staple=staple)
    if min_version and min_version != TLS_VERSIONS[0]:
        attempt.stage = "probing TLS versions below %s" % min_version
        below = TLS_VERSIONS[TLS_VERSIONS.index(min_version) - 1]
        try:
            old, _ = shake(False, maximum=below)
        except Exception as exc:
            log.info("%s: nothing below TLS %s accepted (%s)", endpoint.label, min_version,
                     _describe(attempt.stage, exc).reason)
        else:
            with old:
                result.older_versions.append(old.version() or "below " + min_version)
    attempt.stage = "done"
    return result


def _at_level_zero(endpoint, attempt, cafile, strict_error, shake):
    """After the handshake at OpenSSL's default security level failed with
    ``strict_error``: the handshake that reads the chain anyway. Returns (tls, address,
    failure, refused): ``failure`` (verify code, message) when the chain leads to no trusted
    CA at any level (then read unverified), ``refused`` why the default level refused a
    chain that verifies at level 0."""
    import ssl

    if isinstance(strict_error, ssl.SSLCertVerificationError):
        message = strict_error.verify_message or str(strict_error)
        log.info("%s: verification at the default security level failed: %s (%s)",
                 endpoint.label, message, strict_error.verify_code)
        if strict_error.verify_code in _UNTRUSTED_AT_ANY_LEVEL:
            tls, address = shake(False)
            return tls, address, (strict_error.verify_code, message), ""
        refused = "OpenSSL at its default security level refuses the chain: %s" % message
    else:
        reason = _describe(attempt.stage, strict_error).reason
        log.info("%s: no handshake at the default security level: %s", endpoint.label, reason)
        refused = "no handshake at OpenSSL's default security level (%s)" % reason
    try:
        tls, address = shake(True, cafile=cafile)
    except ssl.SSLCertVerificationError as exc:
        log.info("%s: verification failed: %s (%s)", endpoint.label, exc.verify_message,
                 exc.verify_code)
        tls, address = shake(False)
        return tls, address, (exc.verify_code, exc.verify_message or str(exc)), ""
    return tls, address, None, refused


def fetch_all(endpoints, fetch=fetch, **options):
    """Run ``fetch`` for every endpoint concurrently; one Attempt per endpoint, in order.

    Waits at most until the run's deadline; an endpoint still busy then keeps the stage it
    was stuck in and gets a timeout error naming it.
    """
    attempts = [Attempt(e) for e in endpoints]
    lock = threading.Lock()
    closed = []

    def work(attempt):
        presented = error = crash = None
        try:
            presented = fetch(attempt.endpoint, attempt=attempt, **options)
        except ConnectionFailed as exc:
            error = exc
        except (OSError, deadline.Timeout) as exc:
            error = _describe(attempt.stage, exc)
        except Exception as exc:  # a bug or a missing module: the runner reports it
            crash = exc
        with lock:
            if not closed:
                attempt.presented, attempt.error, attempt.crash = presented, error, crash

    # Load cryptography while the first connections are on the wire.
    threads = [threading.Thread(target=_warm_up, daemon=True)]
    threads += [threading.Thread(target=work, args=(a,), daemon=True,
                                 name="tls %s" % a.endpoint.label) for a in attempts]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join(deadline.remaining(None))
    except deadline.Timeout:
        pass
    with lock:
        closed.append(True)
        for attempt in attempts:
            if attempt.crash is not None:
                raise attempt.crash
            if attempt.presented is None and attempt.error is None:
                attempt.error = ConnectionFailed.timeout(attempt.stage)
    return attempts


def _warm_up():
    try:
        with _IMPORTING:
            import cryptography.x509  # noqa: F401 - loaded while the handshakes run
    except ImportError:
        pass  # parse_certificate raises it where the runner reports it
