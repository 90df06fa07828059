"""A FRITZ!Box's TR-064 interface, built from AVM's published descriptions.

There is no real FRITZ!Box here. This peer serves what AVM documents a box to serve on its
TR-064 port: the device description and the SCPDs of WANIPConnection and WANPPPConnection
(tests/fixtures/tr064/*_constructed-from-avm-docs.xml), and answers the SOAP actions those
SCPDs list, with their output arguments, from the peer's settable state; an action the
service's SCPD does not list is UPnP error 401 Invalid Action (HTTP 500), as on a box.
SOAP calls need HTTP digest authentication (MD5, qop=auth, realm "HTTPS Access" as AVM's
boxes send it); a wrong login gets 401 again. TLS with a self-signed certificate of its own
(``fingerprint``: its SHA-256), as a box's on port 49443; ``tls=False`` serves plain HTTP, as
on 49000.

``connection``: "ppp" (DSL: WANPPPConnection connected, WANIPConnection not) or "ip" (cable,
fibre). ``connected_at``: the time of the last reconnect (NewUptime is counted from it).
"""
import contextlib
import datetime
import hashlib
import http.server
import os
import re
import secrets
import ssl
import tempfile
import threading
import time
from xml.etree import ElementTree

from lab.peers import fixture

REALM = "HTTPS Access"
DESCRIPTION = "fritzbox_tr64desc_constructed-from-avm-docs.xml"
SCPDS = {"/wanipconnSCPD.xml": "fritzbox_wanipconnSCPD_constructed-from-avm-docs.xml",
         "/wanpppconnSCPD.xml": "fritzbox_wanpppconnSCPD_constructed-from-avm-docs.xml"}
DEVICE_NS = "{urn:dslforum-org:device-1-0}"
SCPD_NS = "{urn:dslforum-org:service-1-0}"


def _services():
    """{controlURL: (serviceType, {action: [out argument names]})} from the description
    and the SCPDs."""
    root = ElementTree.fromstring(fixture("tr064", DESCRIPTION))
    services = {}
    for service in root.iter(DEVICE_NS + "service"):
        scpd = service.findtext(DEVICE_NS + "SCPDURL")
        if scpd not in SCPDS:
            continue
        actions = {}
        for action in ElementTree.fromstring(fixture("tr064", SCPDS[scpd])).iter(
                SCPD_NS + "action"):
            actions[action.findtext(SCPD_NS + "name")] = [
                arg.findtext(SCPD_NS + "name") for arg in action.iter(SCPD_NS + "argument")
                if arg.findtext(SCPD_NS + "direction") == "out"]
        services[service.findtext(DEVICE_NS + "controlURL")] = (
            service.findtext(DEVICE_NS + "serviceType"), actions)
    return services


def self_signed(directory, name="fritz.box"):
    """(certificate path, key path, SHA-256 hex) of a new self-signed certificate, as a
    FRITZ!Box makes its own."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = os.path.join(directory, "box.crt"), os.path.join(directory, "box.key")
    with open(cert_path, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return cert_path, key_path, cert.fingerprint(hashes.SHA256()).hex()


def _md5(text):
    return hashlib.md5(text.encode("utf-8")).hexdigest()


class FritzBox:
    def __init__(self, user="monitoring", password="s3cret box", connection="ppp",
                 external="80.81.82.83", prefix="2003:a:1234:5600::", prefix_length=56,
                 connected_at=None, tls=True):
        self.user, self.password = user, password
        self.connection = connection
        self.external = external
        self.prefix, self.prefix_length = prefix, prefix_length
        self.connected_at = time.time() - 3 * 3600 if connected_at is None else connected_at
        self.last_error = "ERROR_NONE"
        self.tls = tls
        self.services = _services()
        self.nonce = secrets.token_hex(16)
        self.calls = []  # (action, authenticated)
        self.httpd = None
        self.fingerprint = None
        self._tmp = None

    @property
    def url(self):
        host, port = self.httpd.server_address[:2]
        return "%s://%s:%d/tr64desc.xml" % ("https" if self.tls else "http", host, port)

    def reconnect(self, at=None):
        self.connected_at = time.time() if at is None else at

    def _authorized(self, header, method, uri):
        if not header or not header.startswith("Digest "):
            return False
        fields = dict(re.findall(r'(\w+)="?([^",]*)"?', header[7:]))
        if fields.get("username") != self.user or fields.get("nonce") != self.nonce or \
                fields.get("realm") != REALM:
            return False
        ha1 = _md5("%s:%s:%s" % (self.user, REALM, self.password))
        ha2 = _md5("%s:%s" % (method, fields.get("uri", uri)))
        expected = _md5("%s:%s:%s:%s:%s:%s" % (ha1, self.nonce, fields.get("nc", ""),
                                               fields.get("cnonce", ""),
                                               fields.get("qop", ""), ha2))
        return secrets.compare_digest(expected, fields.get("response", ""))

    def _values(self, service_type, action):
        ip = "WANIPConnection" in service_type
        up = (self.connection == "ip") == ip
        if action == "GetStatusInfo":
            return {"NewConnectionStatus": "Connected" if up else "Unconfigured",
                    "NewLastConnectionError": self.last_error if up else "ERROR_NONE",
                    "NewUptime": str(int(time.time() - self.connected_at)) if up else "0"}
        if action == "GetExternalIPAddress":
            return {"NewExternalIPAddress": self.external if up else ""}
        if action == "X_AVM-DE_GetIPv6Prefix":
            return {"NewIPv6Prefix": self.prefix or "",
                    "NewPrefixLength": str(self.prefix_length if self.prefix else 0),
                    "NewValidLifetime": "6764", "NewPreferedLifetime": "3164"}
        return {}

    def _handler(self):
        box = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def send(self, status, body, content_type='text/xml; charset="utf-8"',
                     headers=()):
                data = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                if path == "/tr64desc.xml":
                    return self.send(200, fixture("tr064", DESCRIPTION))
                if path in SCPDS:
                    return self.send(200, fixture("tr064", SCPDS[path]))
                self.send(404, "<html><body>404 Not Found</body></html>", "text/html")

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(min(length, 65536))
                service = box.services.get(self.path)
                soap_action = (self.headers.get("SOAPAction") or "").strip('"')
                service_type, _, action = soap_action.partition("#")
                authorized = box._authorized(self.headers.get("Authorization"), "POST",
                                             self.path)
                box.calls.append((action, authorized))
                if not authorized:
                    return self.send(401, "<html><body>401 Unauthorized</body></html>",
                                     "text/html", [("WWW-Authenticate",
                                                    'Digest realm="%s", nonce="%s", '
                                                    'algorithm=MD5, qop="auth"'
                                                    % (REALM, box.nonce))])
                if service is None or service_type != service[0] or \
                        action not in service[1]:
                    return self.send(500, FAULT % (401, "Invalid Action"))
                values = box._values(service_type, action)
                out = "".join("<%s>%s</%s>" % (name, values.get(name, ""), name)
                              for name in service[1][action])
                self.send(200, RESPONSE % (action, service_type, out, action))

        return Handler

    def start(self):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        if self.tls:
            self._tmp = tempfile.mkdtemp(prefix="osop-fritzbox-")
            cert, key, self.fingerprint = self_signed(self._tmp)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
        if self._tmp:
            import shutil
            shutil.rmtree(self._tmp, ignore_errors=True)


RESPONSE = ('<?xml version="1.0"?>\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/'
            'envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">\n'
            '<s:Body>\n<u:%sResponse xmlns:u="%s">\n%s\n</u:%sResponse>\n</s:Body>\n'
            '</s:Envelope>\n')
FAULT = ('<?xml version="1.0"?>\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/'
         'envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">\n<s:Body>\n'
         '<s:Fault>\n<faultcode>s:Client</faultcode>\n<faultstring>UPnPError</faultstring>\n'
         '<detail>\n<UPnPError xmlns="urn:schemas-upnp-org:control-1-0">\n'
         '<errorCode>%d</errorCode>\n<errorDescription>%s</errorDescription>\n'
         '</UPnPError>\n</detail>\n</s:Fault>\n</s:Body>\n</s:Envelope>\n')


@contextlib.contextmanager
def running(**settings):
    """A FritzBox started with ``settings``, stopped afterwards."""
    box = FritzBox(**settings).start()
    try:
        yield box
    finally:
        box.stop()


if __name__ == "__main__":  # python -m lab.peers.fritzbox_tr064: one to try by hand
    with running() as box:
        print("%s  user %s  password %r  SHA-256 %s" % (box.url, box.user, box.password,
                                                       box.fingerprint))
        threading.Event().wait()
