"""A validating resolver on loopback: unbound from Debian, serving zones signed with ldns.

``ValidatingResolver(directory, zones)`` writes each zone (``{origin: [record lines]}``,
SOA and NS added), signs those in ``signed`` with ldns-keygen/ldns-signzone (ECDSA P-256,
a KSK and a ZSK), and starts unbound on 127.0.0.1 and an ephemeral port with the zones as
``auth-zone`` (for-upstream: its answers go through unbound's validator as if fetched) and
each signed zone's KSK as a trust anchor. An answer from a signed zone carries the AD bit;
one from an unsigned zone (no anchor above it) does not. ``tlsa_record`` writes a TLSA line
for a certificate, as an admin would with ``ldns-dane`` or ``openssl``.
"""
import hashlib
import os
import subprocess
import time

from lab.peers import Started, end_process
from lab.peers.dns import free_port

UNBOUND = "/usr/sbin/unbound"


def tlsa_record(owner, cert, usage=3, selector=1, mtype=1):
    """The TLSA zone-file line at ``owner`` for ``cert`` (cryptography x509)."""
    from cryptography.hazmat.primitives import serialization

    if selector == 1:
        data = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    else:
        data = cert.public_bytes(serialization.Encoding.DER)
    if mtype == 1:
        data = hashlib.sha256(data).digest()
    elif mtype == 2:
        data = hashlib.sha512(data).digest()
    return "%s 300 IN TLSA %d %d %d %s" % (owner, usage, selector, mtype, data.hex())


class ValidatingResolver(Started):
    """unbound on 127.0.0.1:``port`` answering for ``zones``, validating ``signed`` ones."""

    def __init__(self, directory, zones, signed=()):
        self.directory = directory
        self.zones = zones
        self.signed = set(signed)
        self.process = None
        self.port = None

    @property
    def server(self):
        return "127.0.0.1:%d" % self.port

    def _zone_file(self, origin, lines):
        path = os.path.join(self.directory, origin.rstrip(".") + ".zone")
        with open(path, "w") as handle:
            handle.write("$ORIGIN %s\n$TTL 300\n" % origin)
            handle.write("@ IN SOA ns.%s hostmaster.%s 1 3600 600 86400 300\n" % (
                origin, origin))
            handle.write("@ IN NS ns.%s\nns IN A 127.0.0.1\n" % origin)
            handle.write("\n".join(lines) + "\n")
        if origin not in self.signed:
            return path, None
        run = dict(cwd=self.directory, check=True, capture_output=True, text=True, timeout=60)
        ksk = subprocess.run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", origin],
                             **run).stdout.strip()
        zsk = subprocess.run(["ldns-keygen", "-a", "ECDSAP256SHA256", origin],
                             **run).stdout.strip()
        subprocess.run(["ldns-signzone", "-o", origin, path, ksk, zsk], **run)
        return path + ".signed", os.path.join(self.directory, ksk + ".key")

    def start(self):
        os.makedirs(self.directory, exist_ok=True)
        config = ["server:", "  do-daemonize: no", '  username: ""', '  chroot: ""',
                  '  pidfile: ""', "  use-syslog: no", "  verbosity: 1",
                  "  directory: \"%s\"" % self.directory, "  do-not-query-localhost: no",
                  '  module-config: "validator iterator"', "  val-log-level: 2",
                  "  interface: 127.0.0.1", "  do-ip6: no", "  num-threads: 1",
                  "  so-reuseport: no", "  harden-dnssec-stripped: yes"]
        # RFC 6761 names (test., invalid. ...) are local zones of unbound by default
        config += ['  local-zone: "%s" nodefault' % tld for tld in sorted(
            {origin.rstrip(".").rsplit(".", 1)[-1] for origin in self.zones})]
        auth = []
        for origin, lines in self.zones.items():
            path, anchor = self._zone_file(origin, lines)
            if anchor:
                config.append('  trust-anchor-file: "%s"' % anchor)
            auth += ["auth-zone:", '  name: "%s"' % origin, '  zonefile: "%s"' % path,
                     "  for-upstream: yes", "  for-downstream: no", "  fallback-enabled: no"]
        config_path = os.path.join(self.directory, "unbound.conf")
        for _ in range(5):
            self.port = free_port()
            with open(config_path, "w") as handle:
                handle.write("\n".join(config + ["  port: %d" % self.port] + auth
                                       + ["remote-control:", "  control-enable: no"]) + "\n")
            subprocess.run(["unbound-checkconf", config_path], check=True,
                           capture_output=True, timeout=30)
            self.process = subprocess.Popen([UNBOUND, "-d", "-c", config_path],
                                            stdout=subprocess.DEVNULL,
                                            stderr=open(config_path + ".log", "w"))
            if self._ready():
                return self
            end_process(self.process)
        raise RuntimeError("unbound did not start: %s" % open(config_path + ".log").read())

    def _ready(self):
        import dns.message
        import dns.query

        for _ in range(100):
            if self.process.poll() is not None:
                return False
            try:
                dns.query.udp(dns.message.make_query(next(iter(self.zones)), "SOA"),
                              "127.0.0.1", timeout=0.2, port=self.port)
                return True
            except Exception:  # noqa: BLE001 (not up yet: any failure means try again)
                time.sleep(0.1)
        return False

    def stop(self):
        end_process(self.process)


NAMES = ("mail.dane.test", "mail.unsigned.test")


def start_dane_site(stack, directory):
    """mail.dane.test after a certificate rollover from ``old`` to ``new``, for the tests and
    ``make demo``: three STARTTLS SMTP servers (lab/peers/tls.py) on 127.0.0.1 serving
    ``new``, published in the signed zone dane.test with the TLSA of the new key (3 1 1) on
    ``current``, of the old key (the rollover forgotten) on ``stale``, of the intermediate
    that issued both (2 0 1, unchanged by a rollover) on ``anchor``; the unsigned zone
    unsigned.test publishes the TLSA of ``current`` too. Returns (TestCA, {name: port},
    the started ValidatingResolver)."""
    from lab.peers.tls import TestCA, TLSServer

    ca = TestCA(os.path.join(directory, "ca"))
    old = ca.issue("old", names=NAMES, ips=())
    new = ca.issue("new", names=NAMES, ips=())
    ports = {name: stack.enter_context(TLSServer(new.chain_path, new.key_path,
                                                 starttls="smtp")).port
             for name in ("current", "stale", "anchor")}
    dane = ["mail IN A 127.0.0.1",
            tlsa_record("_%d._tcp.mail" % ports["current"], new.cert),
            tlsa_record("_%d._tcp.mail" % ports["stale"], old.cert),
            tlsa_record("_%d._tcp.mail" % ports["anchor"], ca.intermediate,
                        usage=2, selector=0)]
    unsigned = [tlsa_record("_%d._tcp.mail" % ports["current"], new.cert)]
    resolver = stack.enter_context(ValidatingResolver(
        os.path.join(directory, "unbound"), {"dane.test.": dane, "unsigned.test.": unsigned},
        signed={"dane.test."}))
    return ca, ports, resolver
