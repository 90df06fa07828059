"""pebble, Let's Encrypt's ACME test server, as Debian 13 ships it (2.6, with ACME Renewal
Information: ``renewalInfo`` in its directory), and a small ACME client to get certificates
from it.

pebble runs from a cached trixie root (lab/peers/debian_root.apt_root) in a mount
namespace, chrooted, sharing this machine's network; this machine's / is at /mnt inside
(as icinga2 2.14 runs in lab/peers/icinga2.py). It listens on 127.0.0.1 with a certificate
of a ``TestCA`` (so clients trust it with that CA's root), validates every challenge
without looking (PEBBLE_VA_ALWAYS_VALID) and never rejects a nonce. Its renewalInfo
suggests the window around two thirds of a certificate's lifetime (one day either side),
and a window that ended half an hour ago once the certificate is revoked.

``AcmeClient`` speaks RFC 8555 with cryptography and requests: an account (ES256), an order
for DNS names, the http-01 challenges answered, a CSR, the certificate; and revocation.
"""
import base64
import json
import os
import subprocess
import time

from lab.peers import Started, end_process
from lab.peers.dns import free_port

RELEASE = "trixie"
PACKAGES = ("pebble",)
# as icinga2.CHROOT: this machine's / at /mnt, /proc, /dev
CHROOT = ('mount --rbind / "$0/mnt" && mount -t proc proc "$0/proc" && mount --rbind /dev '
          '"$0/dev" && exec chroot "$0" "$@"')


def pebble_root():
    from lab.peers import debian_root

    return debian_root.apt_root(RELEASE, PACKAGES)


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Pebble(Started):
    """pebble on 127.0.0.1 with ``issued`` (a lab.peers.tls Issued for 127.0.0.1) as its
    HTTPS certificate; ``validity``: seconds a certificate it issues is valid."""

    def __init__(self, directory, issued, validity=90 * 86400):
        self.directory = directory
        self.issued = issued
        self.validity = validity
        self.process = None
        self.port = None

    @property
    def directory_url(self):
        return "https://127.0.0.1:%d/dir" % self.port

    def start(self):
        import requests

        root = pebble_root()
        os.makedirs(self.directory, exist_ok=True)
        self.port, self.management = free_port(), free_port()
        config = os.path.join(self.directory, "pebble-config.json")
        with open(config, "w") as handle:
            json.dump({"pebble": {
                "listenAddress": "127.0.0.1:%d" % self.port,
                "managementListenAddress": "127.0.0.1:%d" % self.management,
                "certificate": "/mnt" + os.path.abspath(self.issued.chain_path),
                "privateKey": "/mnt" + os.path.abspath(self.issued.key_path),
                "httpPort": free_port(), "tlsPort": free_port(),
                "ocspResponderURL": "", "externalAccountBindingRequired": False,
                "retryAfter": {"authz": 1, "order": 1},
                "certificateValidityPeriod": self.validity}}, handle)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PEBBLE_VA_ALWAYS_VALID": "1",
               "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0",
               "PEBBLE_AUTHZREUSE": "0"}
        self.log = os.path.join(self.directory, "pebble.log")
        self.process = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", CHROOT, root,
             "/usr/bin/pebble", "-config", "/mnt" + os.path.abspath(config)],
            env=env, stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        for _ in range(100):
            if self.process.poll() is not None:
                break
            try:
                requests.get(self.directory_url, verify=self.ca_path, timeout=1)
                return self
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("pebble did not start: %s" % open(self.log).read()[-2000:])

    @property
    def ca_path(self):
        """The root that issued pebble's own HTTPS certificate (the TestCA's)."""
        return os.path.join(os.path.dirname(self.issued.chain_path), "ca.pem")

    def root_pem(self):
        """The root pebble issues under (made afresh at each start), from its management
        interface: the trust anchor for servers that use its certificates."""
        import requests

        return requests.get("https://127.0.0.1:%d/roots/0" % self.management,
                            verify=self.ca_path, timeout=10).text

    def stop(self):
        end_process(self.process)


class AcmeClient:
    """An ACME account at ``directory_url`` (RFC 8555), its key ES256."""

    def __init__(self, directory_url, ca_path):
        import requests
        from cryptography.hazmat.primitives.asymmetric import ec

        self.session = requests.Session()
        # per request: a Session's verify loses to REQUESTS_CA_BUNDLE from the environment
        self.verify = ca_path
        self.directory = self.session.get(directory_url, timeout=10, verify=ca_path).json()
        self.key = ec.generate_private_key(ec.SECP256R1())
        numbers = self.key.public_key().public_numbers()
        self.jwk = {"crv": "P-256", "kty": "EC", "x": _b64(numbers.x.to_bytes(32, "big")),
                    "y": _b64(numbers.y.to_bytes(32, "big"))}
        self.kid = None
        answer = self.post(self.directory["newAccount"], {"termsOfServiceAgreed": True})
        self.kid = answer.headers["Location"]

    def post(self, url, payload):
        """A JWS POST (``payload`` None: POST-as-GET); the response, which must be 2xx."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, utils

        nonce = self.session.head(self.directory["newNonce"], timeout=10,
                                  verify=self.verify).headers["Replay-Nonce"]
        protected = {"alg": "ES256", "nonce": nonce, "url": url}
        if self.kid:
            protected["kid"] = self.kid
        else:
            protected["jwk"] = self.jwk
        head = _b64(json.dumps(protected).encode())
        body = "" if payload is None else _b64(json.dumps(payload).encode())
        r, s = utils.decode_dss_signature(self.key.sign(
            ("%s.%s" % (head, body)).encode(), ec.ECDSA(hashes.SHA256())))
        response = self.session.post(url, timeout=10, verify=self.verify, data=json.dumps({
            "protected": head, "payload": body,
            "signature": _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))}),
            headers={"Content-Type": "application/jose+json"})
        if response.status_code >= 300:
            raise RuntimeError("ACME %s: HTTP %d %s" % (url, response.status_code,
                                                       response.text[:500]))
        return response

    def _until(self, url, done, what):
        for _ in range(100):
            answer = self.post(url, None).json()
            if answer["status"] in done:
                return answer
            if answer["status"] == "invalid":
                raise RuntimeError("%s invalid: %s" % (what, answer))
            time.sleep(0.1)
        raise RuntimeError("%s never became %s" % (what, done))

    def issue(self, names):
        """A certificate for the DNS ``names``: (chain PEM text, the leaf's private key)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        response = self.post(self.directory["newOrder"], {
            "identifiers": [{"type": "dns", "value": name} for name in names]})
        order_url, order = response.headers["Location"], response.json()
        for authz_url in order["authorizations"]:
            authz = self.post(authz_url, None).json()
            challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
            self.post(challenge["url"], {})
            self._until(authz_url, ("valid",), "authorization")
        key = ec.generate_private_key(ec.SECP256R1())
        csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, names[0])])).add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        ).sign(key, hashes.SHA256())
        self.post(order["finalize"], {"csr": _b64(csr.public_bytes(
            serialization.Encoding.DER))})
        order = self._until(order_url, ("valid",), "order")
        return self.post(order["certificate"], None).text, key

    def revoke(self, cert_der, reason=None):
        payload = {"certificate": _b64(cert_der)}
        if reason is not None:
            payload["reason"] = reason
        self.post(self.directory["revokeCert"], payload)
