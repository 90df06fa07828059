"""osop-checks-api as the Debian package installs it, in a booted systemd (Debian bookworm,
systemd 252, systemd-nspawn: tests/peers/systemd_container.py).

The .deb (`make deb`, as tests/integration/test_debian_package.py builds it) is installed with
dpkg in the running container, whose root has the package's dependencies (debian/control)
besides systemd. Then, as docs/api-security.md tells an admin: the daemon's own P-256 key and
CSR made with openssl on the node, the CSR signed by Icinga's CA with `icinga2 pki sign-csr`
(this machine's icinga2 plays the master), ca.crt beside them; a drop-in moves the socket to a
free loopback port (the container shares this machine's network) and the socket is enabled.
The first call starts the service. Asserted: `systemd-analyze security` rates the service 2.5
or lower, it runs as osop-checks-api, and checks asked through it with a certificate whose CN
is the node's answer as the command line does in the same container.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from tests.integration.test_debian_package import deb_package  # noqa: F401 (a fixture)
from tests.peers import ROOT, debian_root, ifw_api, need_root, systemd_container
from tests.peers.tls import free_port

pytestmark = pytest.mark.peer

RELEASE = "bookworm"
# Besides what the package depends on: a system to boot, and openssl for the key pair.
CONTAINER_PACKAGES = ("systemd", "systemd-sysv", "dbus", "openssl")
NODE = "agent1.osop.test"          # the node's Icinga name: the daemon's CN and its one caller
SERVICE = "osop-checks-api.service"
SOCKET = "osop-checks-api.socket"
ETC = "/etc/osop-checks"
MAX_EXPOSURE = 2.5                 # systemd-analyze's "OK"


def package_depends():
    """The binary package's Depends in debian/control, without substvars and versions."""
    with open(os.path.join(ROOT, "debian", "control")) as handle:
        text = handle.read()
    field = re.search(r"^Depends:(.*?)(?=^\S)", text, re.M | re.S).group(1)
    names = [item.split()[0] for item in field.replace("\n", " ").split(",") if item.strip()]
    return tuple(name for name in names if not name.startswith("${"))


def container_root():
    """The cached bookworm root for the container: systemd and the package's dependencies."""
    return debian_root.apt_root(RELEASE, CONTAINER_PACKAGES + package_depends())
