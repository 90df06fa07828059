"""check_tls_expiry --ari against pebble 2.6 from Debian 13 (lab/peers/pebble.py), which
serves ACME Renewal Information: certificates issued by it through a real ACME exchange, the
window it suggests watched as time passes (libfaketime on the check), and moved by a
revocation. pebble's window: two thirds into the certificate's lifetime, one day either
side (90 days: days 59 to 61); after a revocation it ended half an hour ago. Retry-After: 6h.
"""
import os
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from lab.peers import faked_clock, need, need_root, run_plugin
from lab.peers.pebble import AcmeClient, Pebble
from lab.peers.tls import TestCA, TLSServer

pytestmark = pytest.mark.peer


class Site:
    """pebble, an ACME account at it, and the TestCA root its HTTPS listener is trusted by."""

    def __init__(self, directory, pebble, ca):
        self.directory = directory
        self.pebble = pebble
        self.ca = ca
        self.client = AcmeClient(pebble.directory_url, ca.ca_path)
        self.count = 0

    def issue(self, name):
        """A certificate from pebble: the chain file and the leaf's DER."""
        self.count += 1
        chain, key = self.client.issue([name])
        path = os.path.join(self.directory, "issued-%d.pem" % self.count)
        with open(path, "w") as handle:
            handle.write(chain)
        with open(path + ".key", "wb") as handle:
            from cryptography.hazmat.primitives import serialization

            handle.write(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        return path, x509.load_pem_x509_certificate(chain.encode()).public_bytes(Encoding.DER)

    def check(self, *argv, cache=None, shift=None):
        """The check as Icinga runs it; HTTPS to pebble trusted through REQUESTS_CA_BUNDLE,
        ``shift``: a libfaketime offset (e.g. '+1428h') for the check's clock."""
        cache = cache or os.path.join(self.directory, "cache")
        os.makedirs(cache, mode=0o700, exist_ok=True)
        return run_plugin("check_tls_expiry", list(argv) + [
            "--ari", self.pebble.directory_url, "--cache-dir", cache, "-v"],
            env={"REQUESTS_CA_BUNDLE": self.ca.ca_path},
            wrap=faked_clock(shift) if shift else ())


@pytest.fixture(scope="module")
def acme(tmp_path_factory):
    need("faketime", "unshare", "debootstrap")
    need_root()  # pebble runs chrooted in the trixie root
    directory = str(tmp_path_factory.mktemp("ari"))
    ca = TestCA(os.path.join(directory, "ca"))
    issued = ca.issue("pebble", names=("localhost",), ips=("127.0.0.1",))
    with Pebble(os.path.join(directory, "pebble"), issued) as pebble:
        yield Site(directory, pebble, ca)


def test_pebble_offers_renewal_info(acme):
    assert "renewalInfo" in acme.client.directory


def test_the_window_as_time_passes(acme):
    path, _ = acme.issue("www.ari.test")
    now = acme.check("--file", path)
    assert now.exitcode == 0, now.output
    assert re.search(r"ARI: the CA suggests renewing between \S+ \S+ and \S+ \S+ \(https://"
                     r"127\.0\.0\.1:\d+/\S+/renewalInfo/[\w-]+\.[\w-]+, asked now\)", now.output)
    inside = acme.check("--file", path, shift="+1428h")  # day 59.5 of 90
    assert inside.exitcode == 1, inside.output
    assert re.search(r"WARNING - \S+ ARI: the CA suggests renewing since \d{4}-\d\d-\d\d "
                     r"\S+ \(window until ", inside.status_line), inside.output
    past = acme.check("--file", path, shift="+1488h")  # day 62: 28 days left, -w 21d is fine
    assert past.exitcode == 2, past.output
    assert re.search(r"CRITICAL - \S+ ARI: the CA's suggested renewal window ended 1 day ago "
                     r"\(.*\): renew now", past.status_line), past.output


def test_a_revocation_moves_the_window_seen_after_retry_after(acme, tmp_path):
    path, der = acme.issue("revoked.ari.test")
    cache = str(tmp_path / "cache")
    before = acme.check("--file", path, cache=cache)
    assert before.exitcode == 0, before.output
    acme.client.revoke(der)
    cached = acme.check("--file", path, cache=cache)
    assert cached.exitcode == 0, cached.output  # the CA's Retry-After (6h) is not yet over
    assert "cached answer of" in cached.output
    after = acme.check("--file", path, cache=cache, shift="+365m")  # 6h05
    assert after.exitcode == 2, after.output
    # pebble's window for a revoked certificate ended half an hour before it was asked
    assert re.search(r"ARI: the CA's suggested renewal window ended [67] hours ago",
                     after.status_line), after.output
    assert "asked now" in after.output


def test_an_endpoint_serving_the_certificate(acme, tmp_path):
    path, _ = acme.issue("tls.ari.test")
    root = tmp_path / "pebble-root.pem"
    root.write_text(acme.pebble.root_pem())
    with TLSServer(path, path + ".key") as server:
        outcome = acme.check("-H", "127.0.0.1", "-p", server.port, "--sni", "tls.ari.test",
                             "--ca-file", root)
    assert outcome.exitcode == 0, outcome.output
    assert "trusted" in outcome.output and "ARI: the CA suggests renewing between" \
        in outcome.output


def test_a_directory_without_renewal_info_is_unknown(acme, tmp_path):
    path, _ = acme.issue("none.ari.test")
    outcome = run_plugin("check_tls_expiry", [
        "--file", path, "--ari", acme.pebble.directory_url.replace("/dir", "/nothing-here"),
        "--cache-dir", tmp_path], env={"REQUESTS_CA_BUNDLE": acme.ca.ca_path})
    assert outcome.exitcode == 3, outcome.output
    assert re.search(r"UNKNOWN - \S+ ARI: no renewal information: https://\S+/nothing-here: "
                     r"HTTP 404", outcome.status_line), outcome.output
