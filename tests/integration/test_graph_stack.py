"""Our graph templates on a real graph stack: Debian 12's graphite-carbon and graphite-web fed
by icinga2's GraphiteWriter, icingaweb2-module-graphite 1.2 beside the Director stack
(lab/peers/director.py, Stack(graphs=True)). A host given the fleet-vm role by the basket gets
its services; after a few forced check rounds, 10 s apart on icinga2's clock (Graphite keeps
10 s points here; libfaketime steps the clock of icinga2, which stamps the points, from 10 s
behind per round to this machine's: nothing waits for time to pass), Graphite holds one point
per round and the service's page in a headless Chromium shows our disk graph with data
plotted in it, checked on the screenshot's pixels (docs/graphs-disk-space.png is one)."""
import os
import shutil

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
    with director_peer.Stack(str(tmp / "stack"), graphs=True, clock=behind(0)) as stack:
        stack.restore_basket()
        stack.create("host", HOST, {"object_type": "object", "imports": ["osop-host"],
                                    "address": "127.0.0.1", "vars": {
                                        "osop_role": "fleet-vm",
                                        # the command's var on the host, as a fleet sets it
                                        "disk_partitions_path": ["/"]}})
        stack.deploy()
        stack.wait_for("the role's services", lambda: len(stack.services()) == 3)
        # after the deploy's reload icinga2 connects to carbon anew: a result before is lost
        stack.wait_for("icinga2's GraphiteWriter", stack.graphite_connected, "icinga2")
        for number in range(ROUNDS):
            # at least 10 s after the last round on icinga2's clock, never ahead of carbon's
            stack.set_clock(behind(number))
            since = stack.now()
            stack.force_checks()
            _, pending = stack.wait_for_results(since, timeout=180)
            assert not pending, pending
        prefix = "icinga2.%s.services.disks.osop_disk_partitions.perfdata" % HOST.replace(
            ".", "_")
        last = since - since % 10  # the last round's 10 s slot
        stack.wait_for("graphite's point of the last round", lambda: any(
            when >= last for _, when in stack.graphite_points(prefix + "._.value")),
            "carbon", timeout=60)
        yield stack, prefix, tmp


def behind(number):
    """icinga2's clock at check round ``number``: 10 s behind this machine's per round left."""
    return -10 * (ROUNDS - 1 - number)


def test_graphite_has_our_series_with_thresholds(graphed):
    stack, prefix, _ = graphed
    values = stack.graphite_metrics(prefix + ".*.value")
    assert prefix + "._.value" in values, values  # the mount point / is '_'
    assert prefix + "._.max" in stack.graphite_metrics(prefix + "._.*")
    # a point per round, each in a 10 s slot of its own: a line, not a dot
    points = stack.graphite_points(prefix + "._.value")
    assert len({when for _, when in points}) >= ROUNDS, points


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
