"""`make regen` leaves no diff on a clean tree: every file written from the checks' parsers
(the docs' --help blocks, commands.conf, commands-api.conf, the Director basket, the example
inventory) is what its generator makes of them today. The one test of their freshness; the
other tests check what is in them."""
import pytest

from tests import regen


@pytest.mark.parametrize("part", sorted(regen.PARTS))
def test_regen_leaves_no_diff(part):
    generated = regen.outputs([part])
    assert generated
    stale = regen.stale(generated)
    assert not stale, "out of date, run make regen: %s" % ", ".join(stale)
