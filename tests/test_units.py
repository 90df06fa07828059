import math

import pytest
from hypothesis import given, strategies as st

from osop_checks import units


@pytest.mark.parametrize("text,seconds", [
    ("90s", 90), ("15m", 900), ("26h", 93600), ("7d", 604800), ("2w", 1209600),
    ("10", 10), ("1.5h", 5400), ("15min", 900)])
def test_durations_in_seconds(text, seconds):
    assert units.DURATION.parse(text) == seconds


@pytest.mark.parametrize("text,size", [
    ("512MiB", 512 * 2 ** 20), ("10GB", 10 ** 10), ("2TiB", 2 * 2 ** 40), ("4096", 4096),
    ("1K", 1024), ("1kB", 1000), ("3G", 3 * 2 ** 30)])
def test_sizes_in_bytes(text, size):
    assert units.SIZE.parse(text) == size


def test_days_take_hours_as_fractions():
    assert units.DAYS.parse("36h") == 1.5
    assert units.DAYS.parse("21") == 21


@pytest.mark.parametrize("spec,inside,outside", [
    ("10", [0, 10], [-1, 11]),
    ("10:", [10, 1e9], [9.9]),
    ("~:10", [-1e9, 10], [11]),
    ("10:20", [10, 20], [9, 21]),
    ("@10:20", [9, 21], [10, 15, 20]),
])
def test_nagios_range_syntax(spec, inside, outside):
    rng = units.parse_range(spec)
    assert all(rng.match(v) for v in inside)
    assert not any(rng.match(v) for v in outside)


def test_units_inside_ranges_become_base_units():
    assert str(units.parse_range("26h", units.DURATION)) == "93600"
    assert str(units.parse_range("1h:2h", units.DURATION)) == "3600:7200"
    assert str(units.parse_range("@1GiB:2GiB", units.SIZE)) == "@1073741824:2147483648"


def test_lower_bound_reads_a_bare_value_as_alert_below():
    rng = units.parse_range("20%", units.PERCENT, lower_bound=True)
    assert str(rng) == "20:" and not rng.match(19.9) and rng.match(20)
    # explicit syntax is kept as written
    assert str(units.parse_range("~:20%", units.PERCENT, lower_bound=True)) == "~:20"


@pytest.mark.parametrize("bad", ["foo", "10:5", "@", "~", "", ":", "1:2:3", "10x", "1e999",
                                 "nan", "10 GiB GiB", "\u0661\u0660", "~:", "@~:", "@~",
                                 " ~ : ", "@:"])
@pytest.mark.parametrize("lower", [False, True])
def test_bad_ranges_raise_unit_error(bad, lower):
    with pytest.raises(units.UnitError):
        units.parse_range(bad, units.SIZE, lower)


@pytest.mark.parametrize("spec", ["~", "~:", "@~:", ":", "@"])
@pytest.mark.parametrize("lower", [False, True])
def test_a_range_without_a_bound_is_refused_in_words(spec, lower):
    with pytest.raises(units.UnitError, match="sets no bound"):
        units.parse_range(spec, units.PERCENT, lower)


@pytest.mark.parametrize("spec, quantity, lower, written", [
    ("26h", units.DURATION, False, "26h"), ("26h:", units.DURATION, False, "26h:"),
    ("~:26h", units.DURATION, False, "~:26h"), ("1h:26h", units.DURATION, False, "1h:26h"),
    ("@0:1h", units.DURATION, False, "@0:1h"), (" 2h : 5h ", units.DURATION, False, "2h:5h"),
    ("21d", units.DAYS, True, "21d:"), ("36h", units.DAYS, True, "36h:"),
    ("20%", units.PERCENT, True, "20%:"), ("~:20%", units.PERCENT, True, "~:20%"),
    ("10GiB", units.SIZE, False, "10GiB"), ("@5:10", units.COUNT, False, "@5:10"),
])
def test_range_text_gives_the_range_as_written(spec, quantity, lower, written):
    assert units.range_text(units.parse_range(spec, quantity, lower), quantity) == written


@pytest.mark.parametrize("spec, quantity, text", [
    ("93600", units.DURATION, "26h"), ("@0:3600", units.DURATION, "@0:1h"),
    ("7200:", units.DURATION, "2h:"), ("~:600", units.DURATION, "~:10m"),
    ("90061", units.DURATION, "90061s"), ("1.5", units.DAYS, "36h"),
    ("1073741824", units.SIZE, "1GiB"), ("10", units.SIZE, "10B"),
    ("12.5:", units.PERCENT, "12.5%:"), ("2.5", units.COUNT, "2.5"),
])
def test_range_text_of_a_range_built_in_base_units(spec, quantity, text):
    import nagiosplugin

    assert units.range_text(nagiosplugin.Range(spec), quantity) == text


def test_range_of_builds_ranges_from_base_units():
    assert str(units.range_of(end=300)) == "300"
    assert str(units.range_of(start=5)) == "5:"
    assert str(units.range_of(start=2.5, end=7)) == "2.5:7"
    assert units.range_of(end=5e-324).end == 5e-324


@given(st.text(max_size=30))
def test_parse_range_raises_only_its_own_error(text):
    for quantity in (units.DURATION, units.SIZE, units.PERCENT, units.COUNT, units.DAYS):
        for lower in (False, True):
            try:
                rng = units.parse_range(text, quantity, lower)
            except units.UnitError:
                continue
            assert rng.start <= rng.end
            assert not math.isnan(rng.start) and not math.isnan(rng.end)


@given(st.floats(min_value=0, max_value=1e15), st.sampled_from(["s", "m", "h", "d", "w"]))
def test_durations_roundtrip_through_ranges(value, unit):
    text = "%r%s" % (value, unit)
    rng = units.parse_range(text, units.DURATION)
    assert rng.end == pytest.approx(value * units.DURATION.units[unit])


def test_human_formats():
    assert units.format_size(99 * 2 ** 30 + 2 ** 29) == "99.5 GiB"
    assert units.format_size(512) == "512 B"
    assert units.format_duration(3 * 86400 + 4 * 3600 + 5) == "3d 4h"
    assert units.format_duration(42 * 60 + 5) == "42m 5s"
    assert units.format_duration(17) == "17s"
    assert units.format_duration(-90) == "-1m 30s"


@pytest.mark.parametrize("text", ["5e-324s", "1e20", "1.5e-7", "@1e-5:2e30"])
def test_extreme_numbers_survive_the_trip_through_nagiosplugin(text):
    rng = units.parse_range(text, units.DURATION)
    assert rng.end > 0


@pytest.mark.parametrize("warning, critical, quantity, lower, never", [
    ("50h", "26h", units.DURATION, False, True),
    ("26h", "50h", units.DURATION, False, False),
    ("26h", "26h", units.DURATION, False, False),  # equal: only critical, accepted
    ("~:26h", "26h", units.DURATION, False, False),  # the same for a value never below 0
    ("@30h:40h", "26h", units.DURATION, False, True),
    ("@26h:40h", "26h", units.DURATION, False, False),  # at 26h exactly it warns
    ("@0:1h", "2h", units.DURATION, False, False),
    ("2h:", "5h", units.DURATION, False, False),
    ("1h:", "2h:", units.DURATION, False, True),
    ("5:30", "10:20", units.COUNT, False, True),
    ("10:20", "5:30", units.COUNT, False, False),
    ("0:", "50", units.COUNT, False, False),  # a warning that alerts on nothing: off
    ("7d", "21d", units.DAYS, True, True),
    ("21d", "7d", units.DAYS, True, False),
    ("~:0", "0", units.DAYS, False, True),  # days left can be negative: 0 alerts below 0 too
    ("5%", "10%", units.PERCENT, True, True),
    ("10%", "10%", units.PERCENT, True, False),
])
def test_a_warning_that_can_never_fire(warning, critical, quantity, lower, never):
    w, c = (units.parse_range(t, quantity, lower) for t in (warning, critical))
    assert units.never_fires(w, c, quantity) is never


@pytest.mark.parametrize("seconds, shown", [
    (30, "30 s"), (1, "1 s"), (2.5, "2.5 s"), (12.5, "12.5 s"), (29.87, "29.9 s"),
    (0.04, "0.1 s"), (1.04, "1 s")])
def test_time_limits_in_words(seconds, shown):
    assert units.format_seconds(seconds) == shown
