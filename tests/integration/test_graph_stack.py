"""Our graph templates on a real graph stack: Debian 12's graphite-carbon and graphite-web fed
by icinga2's GraphiteWriter, icingaweb2-module-graphite 1.2 beside the Director stack
(lab/peers/director.py, Stack(graphs=True)). A host given the fleet-vm role by the basket gets
its services; after a few forced check rounds (10 s apart: Graphite keeps 10 s points here)
the service's page in a headless Chromium shows our disk graph with data plotted in it,
checked on the screenshot's pixels (docs/graphs-disk-space.png is one)."""
import os
import shutil
import time

import pytest

from lab.peers import ROOT, need, need_root
from lab.peers import director as director_peer

pytestmark = pytest.mark.peer
HOST = "vm01.dc.example"
ROUNDS = 4
# The first curve's colour, and its area (areaAlpha 0.3) on the light and the dark theme.
LINE = (0x1a, 0x7d, 0xd7)
AREAS = [tuple(round(0.3 * c + 0.7 * b) for c, b in zip(LINE, back))
         for back in ((255, 255, 255), (0x28, 0x2e, 0x39))]


@pytest.fixture(scope="module")
def graphed(tmp_path_factory):
    need_root()
    need("debootstrap", "unshare", "chromium")
    tmp = tmp_path_factory.mktemp("graphs")
    with director_peer.Stack(str(tmp / "stack"), graphs=True) as stack:
        stack.restore_basket()
        stack.create("host", HOST, {"object_type": "object", "imports": ["osop-host"],
                                    "address": "127.0.0.1", "vars": {
                                        "osop_role": "fleet-vm",
                                        # the command's var on the host, as a fleet sets it
                                        "disk_partitions_path": ["/"]}})
        stack.deploy()
        stack.wait_for("the role's services", lambda: len(stack.services()) == 3)
        for number in range(ROUNDS):
            if number:
                time.sleep(11)  # the next 10 s point of Graphite
            since = time.time()
            stack.force_checks()
            _, pending = stack.wait_for_results(since, timeout=180)
            assert not pending, pending
        prefix = "icinga2.%s.services.disks.osop_disk_partitions.perfdata" % HOST.replace(
            ".", "_")
        stack.wait_for("graphite's metrics", lambda: stack.graphite_metrics(
            prefix + ".*.value"), "carbon", timeout=60)
        yield stack, prefix, tmp


def test_graphite_has_our_series_with_thresholds(graphed):
    stack, prefix, _ = graphed
    values = stack.graphite_metrics(prefix + ".*.value")
    assert prefix + "._.value" in values, values  # the mount point / is '_'
    assert prefix + "._.max" in stack.graphite_metrics(prefix + "._.*")


def test_the_service_page_shows_our_graph_with_data(graphed):
    from PIL import Image

    stack, _, tmp = graphed
    shot = str(tmp / "disks.png")
    dom = stack.screenshot(shot, page="/icingaweb2/monitoring/service/show?host=%s&service=disks"
                           % HOST, expect=["graphite/graph"], size=(1400, 1400))
    assert "graphite/graph" in dom, dom[-3000:]
    image = Image.open(shot).convert("RGB")

    def near(pixel, colour, distance):
        return sum((a - b) ** 2 for a, b in zip(pixel, colour)) <= distance ** 2

    # the legend's two squares are 200 pixels of the line's colour; the plotted data more
    plotted = sum(1 for p in image.getdata()
                  if near(p, LINE, 30) or any(near(p, area, 12) for area in AREAS))
    assert plotted > 600, plotted
    if os.environ.get("OSOP_UPDATE_DOCS"):
        shutil.copy(shot, os.path.join(ROOT, "docs", "graphs-disk-space.png"))
    assert os.path.exists(os.path.join(ROOT, "docs", "graphs-disk-space.png"))
