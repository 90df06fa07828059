"""Quantities with units, and Nagios ranges written in them.

A threshold such as ``-w 26h`` or ``-w 20%,50GiB`` is read here once and turned into a
``nagiosplugin.Range`` in the base unit of its quantity (seconds, bytes, days, percent), so no
check parses a threshold by hand and perfdata always carries base units.
"""
import math
import re

import nagiosplugin


class UnitError(ValueError):
    """A value or range that cannot be read; the message says why, in words."""


class Quantity:
    """A family of units, one of them the base in which values are returned.

    ``units`` maps a suffix to its size in the base unit; ``bare`` is the suffix assumed for a
    number written without one (``None``: a bare number is already in the base unit).
    """

    def __init__(self, name, units, base, bare=None, examples="", shown=None, floor=0):
        self.name = name
        self.units = units
        self.base = base
        self.bare = bare
        self.examples = examples
        # The suffixes a value is written back in, largest first (see ``format``).
        self.shown = shown or (base,)
        # The smallest value a measured quantity can take: ages, sizes, percentages and
        # counts are never negative; days left are, once a certificate has expired.
        self.floor = floor

    def parse(self, text):
        """Read ``text`` (``"26h"``, ``"10GiB"``, ``"7"``) into a float in the base unit."""
        match = re.match(_VALUE, str(text), re.ASCII)
        number, suffix = match.groups() if match else ("", "")
        try:
            value = float(number)  # digits and dots: only as [-+]?(\d+(\.\d*)?|\.\d+) are
            factor = self.units[suffix] if suffix else self.units.get(self.bare, 1)
        except (ValueError, KeyError):
            raise UnitError("%r is not a %s (examples: %s)" % (
                text, self.name, self.examples)) from None
        result = value * factor
        if not math.isfinite(result):
            raise UnitError("%r is out of range for a %s" % (text, self.name))
        return result

    def format(self, value):
        """Write ``value`` (base unit) in the largest of ``shown`` that holds it a whole
        number of times: 93600 s -> '26h', 1.5 d -> '36h'; else in the base unit."""
        if value == 0:
            return "0"
        for suffix in self.shown:
            count = value / self.units.get(suffix, 1)
            whole = round(count)
            if whole and abs(count - whole) < 1e-9 * abs(count):
                return "%d%s" % (whole, suffix)
        return _atom(value) + (self.base if self.base in self.units else "")


# A value of any quantity: a number, then a suffix looked up in the quantity's units. One
# pattern for all (compiled by re on first use, not at import: each pattern compiled costs a
# fresh interpreter a few tenths of a millisecond, and a check reads several quantities).
_VALUE = r"\s*([-+]?[0-9.]+(?:[eE][-+]?[0-9]+)?)\s*(\S*?)\s*\Z"


DURATION = Quantity(
    "duration",
    {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400},
    base="s", bare="s", examples="90s, 15m, 26h, 7d, 2w", shown=("d", "h", "m", "s"))

# Certificates and similar: days are the base unit, shorter units are fractions of a day.
DAYS = Quantity(
    "duration in days",
    {k: v / 86400 for k, v in DURATION.units.items()},
    base="d", bare="d", examples="21, 21d, 36h", shown=("d", "h", "m", "s"),
    floor=-math.inf)

SIZE = Quantity(
    "size",
    {"B": 1,
     "K": 1024, "KiB": 1024, "k": 1024, "M": 1024 ** 2, "MiB": 1024 ** 2,
     "G": 1024 ** 3, "GiB": 1024 ** 3, "T": 1024 ** 4, "TiB": 1024 ** 4,
     "P": 1024 ** 5, "PiB": 1024 ** 5,
     "kB": 1000, "KB": 1000, "MB": 1000 ** 2, "GB": 1000 ** 3, "TB": 1000 ** 4,
     "PB": 1000 ** 5},
    base="B", bare="B", examples="512MiB, 10GB, 2TiB, 4096",
    shown=("PiB", "TiB", "GiB", "MiB", "KiB", "B"))

PERCENT = Quantity("percentage", {"%": 1}, base="%", examples="20%, 5%")

COUNT = Quantity("number", {}, base="", examples="0, 5, 100")


def _atom(value):
    """Write a number so that nagiosplugin.Range reads it back exactly (ints stay ints)."""
    if value == int(value) and abs(value) < 1e18:
        return str(int(value))
    text = repr(value)
    mantissa, e, exponent = text.partition("e")
    # nagiosplugin reads an atom without '.' as an int: '5e-324' must become '5.0e-324'.
    return text if "." in mantissa else mantissa + ".0" + e + exponent


def parse_range(text, quantity=COUNT, lower_bound=False):
    """Read a Nagios range (``10``, ``10:``, ``~:10``, ``10:20``, ``@10:20``) with units.

    ``lower_bound=True`` is for quantities where less is worse (free space, days left): a bare
    ``20%`` then means "alert below 20%", i.e. ``20%:``. Explicit range syntax is taken as written.
    A range without a finite bound (``~``, ``~:``, ``@~:``, ``:``) judges nothing and is refused.
    Returns a ``nagiosplugin.Range`` in the quantity's base unit that also keeps, as
    ``written``, the range as the user wrote it (see ``range_text``); raises UnitError.
    """
    spec = str(text).strip()
    if not spec:
        raise UnitError("empty threshold")
    invert = spec.startswith("@")
    body = spec[1:] if invert else spec
    if body.count(":") > 1:
        raise UnitError("%r has more than one ':'" % text)
    if ":" in body:
        start, end = (part.strip() for part in body.split(":"))
    elif lower_bound and not invert:
        start, end = body.strip(), ""
    else:
        start, end = "", body.strip()
    if end == "~" and start == "":
        start, end = "~", ""  # a bare '~' is '~:', the whole line
    if start in ("", "~") and end == "":
        raise UnitError("%r sets no bound (a range needs a number: 10, 10:, ~:10, 10:20, "
                        "@10:20)" % text)
    parts = []
    if start == "~":
        parts.append("~:")
    elif start != "":
        parts.append(_atom(quantity.parse(start)) + ":")
    if end != "":
        parts.append(_atom(quantity.parse(end)))
    try:
        rng = nagiosplugin.Range(("@" if invert else "") + "".join(parts))
    except ValueError as exc:
        raise UnitError("%r: %s" % (text, exc)) from None
    rng.written = "%s%s%s" % ("@" if invert else "", start + ":" if start else "", end)
    return rng


def range_of(start=0, end=math.inf, invert=False):
    """A ``nagiosplugin.Range`` from numbers in a base unit (perfdata limits a check works
    out itself): ``range_of(end=300)`` alerts above 300, ``range_of(start=5)`` below 5."""
    return nagiosplugin.Range("%s%s%s" % (
        "@" if invert else "",
        "~:" if start == -math.inf else "" if start == 0 else _atom(start) + ":",
        "" if end == math.inf else _atom(end)))


def range_text(rng, quantity=COUNT):
    """A range for a status line, in the units it was written in: ``26h``, ``2h:``,
    ``~:10m``, ``@0:1h`` (a range not read by ``parse_range``: its bounds in ``quantity``)."""
    written = getattr(rng, "written", None)
    if written:
        return written
    return "%s%s%s" % (
        "@" if rng.invert else "",
        "~:" if rng.start == -math.inf else "" if rng.start == 0 and not rng.invert
        else quantity.format(rng.start) + ":",
        "" if rng.end == math.inf else quantity.format(rng.end))


def _alerts(rng, floor):
    """Where ``rng`` alerts among the values from ``floor`` up: a list of disjoint intervals
    (low, low included, high, high included); an infinite end counts as included."""
    inf = math.inf
    if rng.invert:  # alerts inside start..end, both included
        low = max(rng.start, floor)
        return [(low, True, rng.end, True)] if low <= rng.end else []
    out = []
    if rng.start > floor:  # alerts below start
        out.append((floor, True, rng.start, False))
    if rng.end < inf:  # alerts above end
        out.append((rng.end, False, inf, True) if rng.end >= floor else (floor, True, inf, True))
    return out


def _within(inner, outer):
    low, low_in, high, high_in = inner
    o_low, o_low_in, o_high, o_high_in = outer
    return ((o_low < low or (o_low == low and (o_low_in or not low_in)))
            and (high < o_high or (high == o_high and (o_high_in or not high_in))))


def _covers(critical, warning, quantity=COUNT):
    """True when ``critical`` alerts on every value of ``quantity`` that ``warning`` alerts
    on (the same range covers itself)."""
    inner, outer = _alerts(warning, quantity.floor), _alerts(critical, quantity.floor)
    return all(any(_within(part, whole) for whole in outer) for part in inner)


def never_fires(warning, critical, quantity=COUNT):
    """True when the warning range can never fire: every value it alerts on is critical
    already, while the two ranges differ (-w 50h -c 26h, -w 5%: -c 10%:). Equal ranges
    (only critical, no warning stage) and a warning that alerts on nothing at all (switched
    off, e.g. 0: for a count) are fine."""
    alerts = _alerts(warning, quantity.floor)
    return (bool(alerts) and alerts != _alerts(critical, quantity.floor)
            and _covers(critical, warning, quantity))


def format_size(value):
    """Human-readable bytes with binary prefixes, as df -h writes them: '92.1 GiB'."""
    value = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            if unit == "B":
                return "%d B" % value
            return "%.1f %s" % (value, unit)
        value /= 1024
    raise AssertionError("unreachable")


def format_seconds(value):
    """A time limit in words: '30 s', '2.5 s', or '0.1 s' for less (a deadline nearly used up)."""
    shown = "%.1f" % max(value, 0.1)
    return "%s s" % (shown[:-2] if shown.endswith(".0") else shown)


def format_time(epoch, fmt="%Y-%m-%d %H:%M:%S", utc=False):
    """A moment (seconds since the epoch) in words, in the admin's local time (TZ) or, with
    ``utc``, in UTC: the one way a check writes a time of day."""
    import time

    return time.strftime(fmt, (time.gmtime if utc else time.localtime)(epoch))


def format_duration(seconds):
    """Human-readable duration in its two largest units: '3d 4h', '42m 5s', '17s'."""
    seconds = int(round(seconds))
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    units = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    for i, (unit, size) in enumerate(units):
        if seconds >= size or unit == "s":
            text = "%d%s" % (seconds // size, unit)
            if i + 1 < len(units):
                next_unit, next_size = units[i + 1]
                rest = (seconds % size) // next_size
                if rest:
                    text += " %d%s" % (rest, next_unit)
            return sign + text
    raise AssertionError("unreachable")
