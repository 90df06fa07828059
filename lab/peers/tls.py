"""Real TLS peers on loopback: a test CA, TLS and STARTTLS servers, a black hole.

``TestCA`` makes a root and an intermediate with cryptography and issues leaves (valid,
expiring, expired, not yet valid, wrong name, self-signed, weak ...). ``TLSServer`` serves a
chain with Python's ssl on 127.0.0.1 and an ephemeral port, optionally behind a STARTTLS
dialogue (SMTP, IMAP, POP3, FTP, LDAP, PostgreSQL, XMPP) that speaks the real greeting and
upgrade. ``BlackHole`` accepts TCP and never answers; ``PlainHTTP`` answers a ClientHello the
way a plain HTTP server does. ``start_scenarios`` starts the whole set, for the tests,
``make demo`` and bench/.
"""
import contextlib
import datetime
import os
import socket
import ssl
import struct
import time
import warnings

import pytest

from lab.peers import blackhole
from lab.peers.blackhole import BlackHole

DAY = datetime.timedelta(days=1)


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class Issued:
    """A certificate with its key, and the files a server loads (chain PEM, key PEM)."""

    def __init__(self, cert, key, chain_path, key_path, chain):
        self.cert = cert
        self.key = key
        self.chain_path = chain_path
        self.key_path = key_path
        self.chain = chain


class TestCA:
    """A root CA and an intermediate; leaves are issued by the intermediate by default.
    ``root_days`` (negative: expired that many days ago) is the root's time left."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory, root_days=3650):
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self._serial = 1000
        self.root_key = self.new_key()
        root_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "osop tests"),
                               x509.NameAttribute(NameOID.COMMON_NAME, "osop Test Root CA")])
        self.root = self._sign(root_name, root_name, self.root_key.public_key(), self.root_key,
                               _now() - DAY * max(1, 1 - 2 * root_days),
                               _now() + root_days * DAY, ca=True)
        self.ca_path = self.write("ca.pem", [self.root])
        self.intermediate, self.intermediate_key = self.make_intermediate(
            "osop Test Intermediate CA", 1800)

    # -- making certificates --

    @staticmethod
    def new_key(kind="ec"):
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        if kind == "ec":
            return ec.generate_private_key(ec.SECP256R1())
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))

    def _sign(self, subject, issuer, public_key, signing_key, not_before, not_after,
              ca=False, names=(), ips=(), hash_name="sha256", issuer_cert=None,
              subject_key=None, crl_url=None, ocsp_url=None, must_staple=False):
        """A certificate signed with ``hash_name``. cryptography 43 and later refuse to sign
        with SHA-1 (the weak-signature scenario), though the check reads such certificates
        fine: that one is made self-signed with ``subject_key``, then signed with SHA-1 by the
        openssl command line as ``issuer_cert`` with ``signing_key`` (itself when None).
        openssl re-signs only a self-signed certificate valid now."""
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        self._serial += 1
        sha1 = hash_name == "sha1"
        builder = (x509.CertificateBuilder().subject_name(subject)
                   .issuer_name(subject if sha1 else issuer)
                   .public_key(public_key).serial_number(self._serial)
                   .not_valid_before(not_before).not_valid_after(not_after)
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if ca:
            builder = builder.add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        sans = [x509.DNSName(n) for n in names] + [
            x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        if crl_url:
            builder = builder.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                [x509.UniformResourceIdentifier(crl_url)], None, None, None)]), critical=False)
        if ocsp_url:
            from cryptography.x509.oid import AuthorityInformationAccessOID

            builder = builder.add_extension(x509.AuthorityInformationAccess([
                x509.AccessDescription(AuthorityInformationAccessOID.OCSP,
                                       x509.UniformResourceIdentifier(ocsp_url))]),
                critical=False)
        if must_staple:
            builder = builder.add_extension(
                x509.TLSFeature([x509.TLSFeatureType.status_request]), critical=False)
        if hash_name not in ("sha256", "sha1"):
            raise ValueError("hash_name: sha256 or sha1, not %r" % hash_name)
        cert = builder.sign(subject_key if sha1 else signing_key, hashes.SHA256())
        return self._openssl_sha1(cert, signing_key, issuer_cert) if sha1 else cert

    def _openssl_sha1(self, own, signing_key, issuer_cert):
        """``own`` (self-signed) signed with SHA-1 by ``issuer_cert``/``signing_key``."""
        import subprocess
        import tempfile

        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding

        with tempfile.TemporaryDirectory(dir=self.directory) as work:
            paths = {name: os.path.join(work, name) for name in ("in", "key", "ca", "out")}
            self.write(paths["in"], [own])
            self.write_key(paths["key"], signing_key)
            cmd = ["openssl", "x509", "-in", paths["in"], "-out", paths["out"], "-sha1",
                   "-preserve_dates"]
            if issuer_cert is None:
                cmd += ["-signkey", paths["key"]]
            else:
                with open(paths["ca"], "wb") as handle:
                    handle.write(issuer_cert.public_bytes(Encoding.PEM))
                cmd += ["-CA", paths["ca"], "-CAkey", paths["key"],
                        "-set_serial", str(own.serial_number)]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            if proc.returncode:
                raise RuntimeError("%s: %s" % (" ".join(cmd), proc.stderr))
            with open(paths["out"], "rb") as handle:
                return x509.load_pem_x509_certificate(handle.read())

    def make_intermediate(self, common_name, days, not_before=None, crl_url=None):
        """(certificate, key) of an intermediate issued by the root; ``crl_url``: the
        root's CRL it names."""
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        key = self.new_key()
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "osop tests"),
                          x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        cert = self._sign(name, self.root.subject, key.public_key(), self.root_key,
                          not_before or _now() - DAY, _now() + days * DAY, ca=True,
                          crl_url=crl_url)
        return cert, key

    def issue(self, label, names=("localhost",), ips=("127.0.0.1",), days=90.0,
              not_before=None, key_kind="ec", hash_name="sha256", self_signed=False,
              issuer=None, send_intermediate=True, crl_url=None, ocsp_url=None,
              must_staple=False):
        """A leaf valid until now + ``days`` (negative: expired), written as <label>.pem
        (the chain the server sends) and <label>.key; ``crl_url``, ``ocsp_url``: where its
        revocation is published; ``must_staple``: the TLS feature status_request."""
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        key = self.new_key(key_kind)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                names[0] if names else label)])
        issuer_cert, issuer_key = issuer or (self.intermediate, self.intermediate_key)
        if self_signed:
            issuer_cert, issuer_key = None, key
        start = not_before if not_before is not None else min(
            _now() - DAY, _now() + days * DAY - 90 * DAY)
        cert = self._sign(subject, subject if self_signed else issuer_cert.subject,
                          key.public_key(), issuer_key, start, _now() + days * DAY,
                          names=names, ips=ips, hash_name=hash_name,
                          issuer_cert=None if self_signed else issuer_cert, subject_key=key,
                          crl_url=crl_url, ocsp_url=ocsp_url, must_staple=must_staple)
        chain = [cert] + ([issuer_cert] if issuer_cert is not None and send_intermediate
                          else [])
        return Issued(cert, key, self.write(label + ".pem", chain),
                      self.write_key(label + ".key", key), chain)

    def write_crl(self, filename, revoked=(), issuer=None, directory=None, next_days=30,
                  der=False):
        """A CRL of ``issuer`` (cert, key; the intermediate, which issues the leaves, by
        default) that revokes ``revoked`` (Issued or certificates; key compromise), valid
        ``next_days``, written as PEM (DER with ``der``) into ``directory`` (default: the
        CA's); its path."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.serialization import Encoding

        issuer_cert, issuer_key = issuer or (self.intermediate, self.intermediate_key)
        builder = (x509.CertificateRevocationListBuilder().issuer_name(issuer_cert.subject)
                   .last_update(_now() - DAY).next_update(_now() + next_days * DAY))
        for item in revoked:
            cert = getattr(item, "cert", item)
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(cert.serial_number)
                .revocation_date(_now() - DAY)
                .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
                .build())
        path = os.path.join(directory or self.directory, filename)
        with open(path, "wb") as handle:
            handle.write(builder.sign(issuer_key, hashes.SHA256()).public_bytes(
                Encoding.DER if der else Encoding.PEM))
        return path

    def ocsp_response(self, issued, revoked=False, issuer=None, next_days=2):
        """A DER OCSP answer for ``issued`` signed by its issuer (the intermediate by
        default): good, or revoked a day ago for key compromise."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.serialization import Encoding
        from cryptography.x509 import ocsp

        issuer_cert, issuer_key = issuer or (self.intermediate, self.intermediate_key)
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=issued.cert, issuer=issuer_cert, algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD,
            this_update=_now() - DAY / 24, next_update=_now() + next_days * DAY,
            revocation_time=_now() - DAY if revoked else None,
            revocation_reason=x509.ReasonFlags.key_compromise if revoked else None,
        ).responder_id(ocsp.OCSPResponderEncoding.HASH, issuer_cert)
        return builder.sign(issuer_key, hashes.SHA256()).public_bytes(Encoding.DER)

    def write(self, filename, certs, der=False):
        from cryptography.hazmat.primitives.serialization import Encoding

        path = os.path.join(self.directory, filename)
        with open(path, "wb") as handle:
            for cert in certs:
                handle.write(cert.public_bytes(Encoding.DER if der else Encoding.PEM))
        return path

    def write_key(self, filename, key):
        from cryptography.hazmat.primitives import serialization

        path = os.path.join(self.directory, filename)
        with open(path, "wb") as handle:
            handle.write(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        return path


# -- servers ------------------------------------------------------------------------------

class _Listener(blackhole._Peer):
    """A loopback listener on an ephemeral port (the black hole's base), each connection
    handled in a thread and closed when its handler is done."""

    def _guarded(self, conn):
        try:
            conn.settimeout(10)
            self.handle(conn)
        except (OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()


class PlainHTTP(_Listener):
    """Answers whatever arrives (a ClientHello) as a plain HTTP server would: 400."""

    def handle(self, conn):
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Length: 0\r\n"
                     b"Connection: close\r\n\r\n")


def _lines(conn):
    buffer = b""
    while True:
        while b"\n" not in buffer:
            data = conn.recv(4096)
            if not data:
                return
            buffer += data
        line, _, buffer = buffer.partition(b"\n")
        yield line.rstrip(b"\r").decode("utf-8", "replace")


def _smtp(conn, refuse):
    conn.sendall(b"220 mail.test.example ESMTP Postfix (Debian/GNU)\r\n")
    for line in _lines(conn):
        verb = line.split(" ")[0].upper()
        if verb in ("EHLO", "HELO"):
            conn.sendall(b"250-mail.test.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
                         + (b"" if refuse else b"250-STARTTLS\r\n")
                         + b"250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n")
        elif verb == "STARTTLS":
            if refuse:
                conn.sendall(b"502 5.5.1 Error: command not implemented\r\n")
                continue
            conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
            return True
        elif verb == "QUIT":
            conn.sendall(b"221 2.0.0 Bye\r\n")
            return False
        else:
            conn.sendall(b"502 5.5.2 Error: command not recognized\r\n")
    return False


def _imap(conn, refuse):
    conn.sendall(b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE "
                 + (b"" if refuse else b"STARTTLS ") + b"LOGINDISABLED] Dovecot (Debian) "
                 b"ready.\r\n")
    for line in _lines(conn):
        tag, _, command = line.partition(" ")
        if command.upper() == "STARTTLS" and not refuse:
            conn.sendall(tag.encode() + b" OK Begin TLS negotiation now.\r\n")
            return True
        conn.sendall(tag.encode() + b" BAD Error in IMAP command received by server.\r\n")
    return False


def _pop3(conn, refuse):
    conn.sendall(b"+OK Dovecot (Debian) ready.\r\n")
    for line in _lines(conn):
        if line.upper() == "STLS" and not refuse:
            conn.sendall(b"+OK Begin TLS negotiation now.\r\n")
            return True
        conn.sendall(b"-ERR Unknown command.\r\n")
    return False


def _ftp(conn, refuse):
    conn.sendall(b"220 (vsFTPd 3.0.3)\r\n")
    for line in _lines(conn):
        if line.upper() in ("AUTH TLS", "AUTH SSL") and not refuse:
            conn.sendall(b"234 Proceed with negotiation.\r\n")
            return True
        conn.sendall(b"530 Please login with USER and PASS.\r\n")
    return False


def _recv_exactly(conn, count):
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


def _ldap(conn, refuse):
    head = _recv_exactly(conn, 2)
    _recv_exactly(conn, head[1])  # the ExtendedRequest (messageID 1, StartTLS OID)
    code = b"\x34" if refuse else b"\x00"  # 52 unavailable / 0 success
    # LDAPMessage { messageID 1, ExtendedResponse { resultCode, matchedDN "", diag "" } }
    conn.sendall(b"\x30\x0c\x02\x01\x01\x78\x07\x0a\x01" + code + b"\x04\x00\x04\x00")
    return not refuse


def _postgres(conn, refuse):
    length, code = struct.unpack("!ii", _recv_exactly(conn, 8))
    if (length, code) != (8, 80877103):
        return False
    conn.sendall(b"N" if refuse else b"S")
    return not refuse


def _xmpp(conn, refuse):
    buffer = b""
    while b"version='1.0'>" not in buffer and b'version="1.0">' not in buffer:
        data = conn.recv(4096)
        if not data:
            return False
        buffer += data
    conn.sendall(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                 b"xmlns:stream='http://etherx.jabber.org/streams' id='osop1' "
                 b"from='localhost' version='1.0' xml:lang='en'><stream:features>"
                 + (b"" if refuse else b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
                    b"<required/></starttls>")
                 + b"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>"
                 b"PLAIN</mechanism></mechanisms></stream:features>")
    if refuse:
        return False
    buffer = b""
    while b"/>" not in buffer:
        data = conn.recv(4096)
        if not data:
            return False
        buffer += data
    conn.sendall(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    return True


DIALOGUES = {"smtp": _smtp, "imap": _imap, "pop3": _pop3, "ftp": _ftp, "ldap": _ldap,
             "postgres": _postgres, "xmpp": _xmpp}

_VERSIONS = {"1.0": ssl.TLSVersion.TLSv1, "1.1": ssl.TLSVersion.TLSv1_1,
             "1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class TLSServer(_Listener):
    """Serves ``chain_path``/``key_path`` with ssl, after a STARTTLS dialogue if asked.

    ``min_version``/``max_version`` ('1.0' ... '1.3') bound the versions it accepts;
    ``delay`` seconds pass before it answers (for the concurrency benchmark);
    ``client_ca``: a CA file, and the server demands a client certificate it issued.
    """

    def __init__(self, chain_path, key_path, starttls=None, refuse=False, min_version="1.2",
                 max_version=None, delay=0.0, host="127.0.0.1", port=0, client_ca=None):
        super().__init__(host, port)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.set_ciphers("ALL:@SECLEVEL=0")
        with warnings.catch_warnings():  # TLS 1.0 on purpose: the --min-tls-version scenario
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = _VERSIONS[min_version]
            if max_version:
                context.maximum_version = _VERSIONS[max_version]
        context.load_cert_chain(chain_path, key_path)
        if client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(client_ca)
        self.context = context
        self.starttls = starttls
        self.refuse = refuse
        self.delay = delay

    def handle(self, conn):
        if self.delay:
            time.sleep(self.delay)
        if self.starttls and not DIALOGUES[self.starttls](conn, self.refuse):
            return
        with self.context.wrap_socket(conn, server_side=True) as tls:
            while tls.recv(4096):
                pass


class FilesOverHTTP:
    """A directory served over plain HTTP on 127.0.0.1 (http.server in a thread): a CA's
    CRLs. ``stop()`` takes it down (the "CRL server down" scenarios); ``url(name)``."""

    def __init__(self, directory):
        import functools
        import http.server

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

        self.directory = directory
        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Quiet, directory=directory))
        self.port = self.httpd.server_address[1]
        self.requests = 0
        self._thread = None

    def url(self, name):
        return "http://127.0.0.1:%d/%s" % (self.port, name)

    def __enter__(self):
        import threading

        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self._thread = None

    def __exit__(self, *exc):
        self.stop()


class StaplingServer:
    """``openssl s_server`` serving ``issued`` with ``status_file`` (a DER OCSP answer)
    stapled to every handshake, on 127.0.0.1 and a free port, until the context ends;
    ``tls12``: TLS 1.2 at most (the staple in its own CertificateStatus message)."""

    def __init__(self, issued, status_file, directory, tls12=False):
        import subprocess

        from cryptography.hazmat.primitives.serialization import Encoding

        self.port = free_port()
        extra = os.path.join(directory, "stapling-chain.pem")
        with open(extra, "wb") as handle:
            for cert in issued.chain[1:]:
                handle.write(cert.public_bytes(Encoding.PEM))
        self.process = subprocess.Popen(
            ["openssl", "s_server", "-accept", "127.0.0.1:%d" % self.port, "-cert",
             issued.chain_path, "-key", issued.key_path, "-cert_chain", extra,
             "-status_file", status_file, "-www", "-quiet"]
            + (["-no_tls1_3"] if tls12 else []),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_port(self.port, self.process, "openssl s_server")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()


class OCSPResponder:
    """``openssl ocsp`` answering on ``port`` for the certificates the CA's intermediate
    issued, from an index (openssl ca's index.txt) that lists ``good`` and ``revoked``
    (Issued), signed by the intermediate; ``url`` for the certificates' AIA."""

    def __init__(self, ca, directory, good=(), revoked=(), port=None):
        import subprocess

        from cryptography.hazmat.primitives.serialization import Encoding

        os.makedirs(directory, exist_ok=True)
        self.port = port or free_port()
        self.url = "http://127.0.0.1:%d/" % self.port
        index = os.path.join(directory, "index.txt")
        with open(index, "w") as handle:
            for issued, state in [(i, "V") for i in good] + [(i, "R") for i in revoked]:
                serial = "%X" % issued.cert.serial_number
                serial = "0" * (len(serial) % 2) + serial
                when = _now().strftime("%y%m%d%H%M%SZ")
                expiry = getattr(issued.cert, "not_valid_after_utc", None) or \
                    issued.cert.not_valid_after  # cryptography < 42
                handle.write("%s\t%s\t%s\t%s\tunknown\t/CN=%s\n" % (
                    state, expiry.strftime("%y%m%d%H%M%SZ"),
                    when + ",keyCompromise" if state == "R" else "", serial,
                    issued.cert.subject.rfc4514_string()[3:]))
        signer = os.path.join(directory, "signer.pem")
        with open(signer, "wb") as handle:
            handle.write(ca.intermediate.public_bytes(Encoding.PEM))
        key = ca.write_key(os.path.join(directory, "signer.key"), ca.intermediate_key)
        self.process = subprocess.Popen(
            # OpenSSL 3's responder takes a port only (it listens on every address while
            # the test runs; it answers for the test CA's throwaway certificates only)
            ["openssl", "ocsp", "-index", index, "-port", str(self.port),
             "-rsigner", signer, "-rkey", key, "-CA", signer, "-ndays", "1"],
            # a standard input at its end makes it answer nothing: an open pipe it is
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        # It serves one connection at a time and waits without end on one that says
        # nothing: no probe connection, its "ACCEPT [::]:PORT" line says it listens.
        import select

        ready, _, _ = select.select([self.process.stdout], [], [], 10)
        if not ready or not self.process.stdout.readline().startswith(b"ACCEPT"):
            self.process.kill()
            raise RuntimeError("openssl ocsp did not start on port %d" % self.port)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()
        self.process.stdin.close()
        self.process.stdout.close()


def _wait_for_port(port, process, what):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("%s did not start on port %d" % (what, port))


def serve_in(net, ns, issued, host, port=0, starttls=None):
    """A TLSServer for ``issued`` on ``host``:``port`` inside network namespace ``ns`` of
    ``net`` (lab/peers/ipv6.py), as a process of its own that ``net`` ends; its port."""
    import subprocess
    import sys

    process = net.popen(ns, [sys.executable, "-m", "lab.peers.tls", issued.chain_path,
                             issued.key_path, host, str(port), starttls or ""],
                        stdout=subprocess.PIPE, text=True,
                        cwd=os.path.dirname(os.path.dirname(os.path.dirname(
                            os.path.abspath(__file__)))))
    line = process.stdout.readline()
    if not line.strip().isdigit():
        raise RuntimeError("the TLS server in %s did not start: %r" % (ns, line))
    return int(line)


def _serve(chain_path, key_path, host, port, starttls):
    """``python -m lab.peers.tls CHAIN KEY HOST PORT [STARTTLS]``: serve until killed,
    after printing the port."""
    import threading

    with TLSServer(chain_path, key_path, starttls=starttls or None, host=host,
                   port=int(port)) as server:
        print(server.port, flush=True)
        threading.Event().wait()


def free_port():
    """A loopback port nothing listens on (just released): connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the scenarios of the issue -----------------------------------------------------------

class Scenario:
    """A started peer and the check arguments that point at it."""

    def __init__(self, name, port, args, issued=None, server=None):
        self.name = name
        self.port = port
        self.args = list(args)
        self.issued = issued
        self.server = server


def start_scenarios(stack, directory, only=None):
    """Start every scenario's server on ``stack``; returns {name: Scenario}.

    Endpoints are reached as 127.0.0.1 with the SNI name 'localhost'; ``--ca-file`` is the
    test root. ``only`` limits the set (names).
    """
    ca = TestCA(directory)
    trust = ["--ca-file", ca.ca_path]
    soon_intermediate = ca.make_intermediate("osop Short-lived Intermediate CA", 5.5)
    leaves = {
        "valid": dict(days=90.3),
        "soon": dict(days=3.1),
        # a 6-day certificate (Let's Encrypt's short-lived profile) with 4 days left
        "sixday": dict(days=4, not_before=_now() - 2 * DAY),
        "expired": dict(days=-2),
        "notyet": dict(days=95, not_before=_now() + 5 * DAY),
        "wronghost": dict(names=("other.example.org",), ips=()),
        "selfsigned": dict(self_signed=True),
        "nointermediate": dict(send_intermediate=False),
        "intermediate_soon": dict(days=60, issuer=soon_intermediate),
        "weak": dict(key_kind="rsa1024", hash_name="sha1", days=700,
                     not_before=_now() - 100 * DAY),
        # RSA-1024 alone (SHA-256): below OpenSSL's default security level, which Debian's
        # curl and python3 refuse, though the chain leads to the trusted root
        "rsa1024": dict(key_kind="rsa1024"),
    }
    scenarios = {}
    wanted = set(only) if only else None

    def serve(name, leaf, **server):
        if wanted is not None and name not in wanted:
            return
        issued = ca.issue(name, **leaves.get(leaf, {}))
        peer = stack.enter_context(TLSServer(issued.chain_path, issued.key_path, **server))
        scenarios[name] = Scenario(name, peer.port, ["-H", "127.0.0.1", "-p", str(peer.port),
                                                     "--sni", "localhost"] + trust
                                   + (["--starttls", server["starttls"]]
                                      if server.get("starttls") else []), issued, peer)

    for leaf in leaves:
        serve(leaf, leaf)
    for protocol in DIALOGUES:
        serve(protocol, "valid", starttls=protocol)
    serve("smtp_refused", "valid", starttls="smtp", refuse=True)
    serve("tls10", "valid", min_version="1.0")
    serve("clientcert", "valid", client_ca=ca.ca_path)  # demands a client certificate
    if wanted is None or "blackhole" in wanted:
        hole = stack.enter_context(BlackHole())
        scenarios["blackhole"] = Scenario("blackhole", hole.port,
                                          ["-H", "127.0.0.1", "-p", str(hole.port)] + trust)
    if wanted is None or "http" in wanted:
        http = stack.enter_context(PlainHTTP())
        scenarios["http"] = Scenario("http", http.port,
                                     ["-H", "127.0.0.1", "-p", str(http.port)] + trust)
    if wanted is None or "refused" in wanted:
        port = free_port()
        scenarios["refused"] = Scenario("refused", port,
                                        ["-H", "127.0.0.1", "-p", str(port)] + trust)
    for scenario in scenarios.values():
        scenario.ca = ca
    return scenarios


class RevocationPKI:
    """The revocation scenarios, for the tests and ``make demo``: a TestCA whose CRLs are
    served over HTTP (FilesOverHTTP; ``cached_http`` a second server that a test takes
    down), a BlackHole as a CRL server that never answers, TLS servers for good, revoked
    and under-a-revoked-intermediate leaves, a must-staple leaf served without a staple,
    openssl s_server stapling a revoked answer (TLS 1.3, and 1.2 as ``stapled12``), and
    leaves that name an openssl ocsp responder. ``args(name, cache)``: the check's
    arguments for a scenario, with a cache directory of that name."""

    def __init__(self, stack, directory):
        self.directory = directory
        self.ca = ca = TestCA(os.path.join(directory, "ca"))
        crls = os.path.join(directory, "crls")
        cached = os.path.join(directory, "crls-cached")
        os.makedirs(crls)
        os.makedirs(cached)
        self.http = stack.enter_context(FilesOverHTTP(crls))
        self.cached_http = stack.enter_context(FilesOverHTTP(cached))
        self.hole = stack.enter_context(BlackHole())
        # two intermediates that name the root's CRL; the second is revoked in it
        issuing = ca.make_intermediate("osop Issuing CA", 1000, crl_url=self.http.url("root.crl"))
        revoked_ca = ca.make_intermediate("osop Revoked CA", 1000,
                                          crl_url=self.http.url("root.crl"))
        leaves = {
            "good": ca.issue("good", issuer=issuing, crl_url=self.http.url("issuing.crl")),
            "revoked": ca.issue("revoked", issuer=issuing,
                                crl_url=self.http.url("issuing.crl")),
            "under_revoked_ca": ca.issue("under", issuer=revoked_ca,
                                         crl_url=self.http.url("revoked-ca.crl")),
            "cached": ca.issue("cached", crl_url=self.cached_http.url("intermediate.crl")),
            "black_hole": ca.issue("hole", crl_url="http://127.0.0.1:%d/x.crl"
                                   % self.hole.port),
            "must_staple": ca.issue("must-staple", must_staple=True),
        }
        ca.write_crl("root.crl", [revoked_ca[0]], issuer=(ca.root, ca.root_key),
                     directory=crls, der=True)
        ca.write_crl("issuing.crl", [leaves["revoked"]], issuer=issuing, directory=crls)
        ca.write_crl("revoked-ca.crl", [], issuer=revoked_ca, directory=crls)
        ca.write_crl("intermediate.crl", [], directory=cached)
        self.ports = {name: stack.enter_context(TLSServer(
            issued.chain_path, issued.key_path)).port for name, issued in leaves.items()}
        self.leaves = leaves
        # a server stapling a "revoked" OCSP answer; its leaf's CRL is the black hole, so
        # only an answer that needs no network can be on time
        stapled = ca.issue("stapled", crl_url="http://127.0.0.1:%d/x.crl" % self.hole.port)
        answer = os.path.join(directory, "stapled-revoked.der")
        with open(answer, "wb") as handle:
            handle.write(ca.ocsp_response(stapled, revoked=True))
        self.leaves["stapled"] = stapled
        self.ports["stapled"] = stack.enter_context(
            StaplingServer(stapled, answer, directory)).port
        self.leaves["stapled12"] = stapled
        self.ports["stapled12"] = stack.enter_context(
            StaplingServer(stapled, answer, directory, tls12=True)).port
        # leaves that name an OCSP responder (openssl ocsp) and no CRL
        responder_port = free_port()
        url = "http://127.0.0.1:%d/" % responder_port
        asked = {"ocsp_good": ca.issue("ocsp-good", ocsp_url=url),
                 "ocsp_revoked": ca.issue("ocsp-revoked", ocsp_url=url)}
        self.responder = stack.enter_context(OCSPResponder(
            ca, os.path.join(directory, "ocsp"), good=[asked["ocsp_good"]],
            revoked=[asked["ocsp_revoked"]], port=responder_port))
        for name, issued in asked.items():
            self.leaves[name] = issued
            self.ports[name] = stack.enter_context(TLSServer(
                issued.chain_path, issued.key_path)).port

    def args(self, name, cache="cache"):
        directory = os.path.join(self.directory, cache)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        return ["-H", "127.0.0.1", "-p", str(self.ports[name]), "--sni", "localhost",
                "--ca-file", self.ca.ca_path, "--cache-dir", directory]


@pytest.fixture(scope="session")
def tls_ca(tmp_path_factory):
    """A TestCA in a temporary directory (root + intermediate), for tests that issue more."""
    return TestCA(str(tmp_path_factory.mktemp("tls-ca")))


@pytest.fixture(scope="session")
def tls_scenarios(tmp_path_factory):
    """Every scenario's server running on loopback for the session: {name: Scenario}."""
    with contextlib.ExitStack() as stack:
        yield start_scenarios(stack, str(tmp_path_factory.mktemp("tls-scenarios")))


if __name__ == "__main__":
    import signal
    import sys

    # A server process of a demo or test: Ctrl-C at the terminal ends it quietly (its
    # parent, which got the same Ctrl-C, cleans up).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    _serve(*(sys.argv[1:] + [""])[:5])
