"""Icinga 2's InfluxdbWriter into a real InfluxDB 1.6 (Debian 12's): the series of our checks
are there, under the measurement of their command with the tags the Grafana dashboards
(icinga2-conf/grafana/influxdb/) query, in the units Icinga normalised: a certificate's days
left stored in seconds, a disk's used space in bytes."""
import contextlib
import os
import time

import pytest

from lab.peers import icinga2, need, need_root

pytestmark = pytest.mark.peer
HOST = "this-machine"


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    need_root()
    need("icinga2", "influxd")
    from lab.peers.influxdb import Influxdb
    from lab.peers.tls import TestCA

    tmp = tmp_path_factory.mktemp("influx")
    leaf = TestCA(str(tmp / "ca")).issue("cloud", days=90)
    text = icinga2.local_inventory(HOST) + icinga2.service_objects(
        HOST, [("tls_expiry", "certificate file", ["--file", leaf.chain_path])])
    with contextlib.ExitStack() as stack:
        influx = stack.enter_context(Influxdb())
        instance = stack.enter_context(icinga2.running(
            str(tmp / "icinga2"), text + influx.writer_object(), perfdata=True))
        since = time.time()
        instance.force_checks()
        services, pending = instance.wait_for_results(since, timeout=120)
        assert not pending, pending
        deadline = time.monotonic() + 60
        while True:  # the writer flushes every second
            rows = series(influx, 'SELECT last("value"), last("unit") FROM /^osop_/ '
                                  'GROUP BY "hostname", "service", "metric"')
            if len(rows) >= 3 or time.monotonic() > deadline:
                break
            time.sleep(1)
        yield rows, leaf


def series(influx, text):
    """{(measurement, service, metric): (value, unit)} of a grouped query."""
    out = {}
    for result in influx.query(text):
        for item in result.get("series", []):
            tags = item.get("tags", {})
            value, unit = item["values"][-1][1:3]
            out[(item["name"], tags.get("service"), tags.get("metric"))] = (value, unit)
    return out


def test_a_query_returns_our_series_in_the_units_icinga_normalised(written):
    rows, leaf = written
    label = leaf.chain_path.replace("'", "_")
    days, unit = rows[("osop_tls_expiry", "tls_expiry 1", label + "_days_leaf")]
    assert unit == "seconds" and abs(days - 90 * 86400) < 2 * 86400, (days, unit)
    used, unit = rows[("osop_disk_partitions", "disk /", "/")]
    st = os.statvfs("/")
    assert unit == "bytes" and abs(used - (st.f_blocks - st.f_bfree) * st.f_frsize) < 2 ** 30


def test_every_series_is_a_listed_label(written):
    from tests import perfdata_labels

    rows, _ = written
    for (measurement, service, metric) in rows:
        check = measurement[len("osop_"):]
        assert perfdata_labels.by_check().get(check), measurement
        assert any(x.pattern.match(metric) for x in perfdata_labels.by_check()[check]), (
            service, metric)
