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

    def __init__(self, name, units, base, bare=None, examples=""):
        self.name = name
        self.units = units
        self.base = base
        self.bare = bare
        self.examples = examples
        self._pattern = None

    def _compiled(self):
        # Compiled on first use, not at import: each pattern costs about a millisecond in a
        # fresh interpreter, and a check run reads one or two of the five quantities.
        if self._pattern is None:
            # Longest suffix first, so "MiB" wins over "B" and "min" over "m".
            self._pattern = re.compile(
                r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(%s)?\s*$"
                % "|".join(re.escape(u) for u in sorted(self.units, key=len, reverse=True)
                           if u),
                re.ASCII)
        return self._pattern

    def parse(self, text):
        """Read ``text`` (``"26h"``, ``"10GiB"``, ``"7"``) into a float in the base unit."""
        match = self._compiled().match(str(text))
        if not match:
            raise UnitError("%r is not a %s (examples: %s)" % (text, self.name, self.examples))
        number, suffix = match.groups()
        value = float(number)
        factor = self.units[suffix] if suffix else self.units.get(self.bare, 1)
        result = value * factor
        if not math.isfinite(result):
            raise UnitError("%r is out of range for a %s" % (text, self.name))
        return result


DURATION = Quantity(
    "duration",
    {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400},
    base="s", bare="s", examples="90s, 15m, 26h, 7d, 2w")

# Certificates and similar: days are the base unit, shorter units are fractions of a day.
DAYS = Quantity(
    "duration in days",
    {k: v / 86400 for k, v in DURATION.units.items()},
    base="d", bare="d", examples="21, 21d, 36h")

SIZE = Quantity(
    "size",
    {"B": 1,
     "K": 1024, "KiB": 1024, "k": 1024, "M": 1024 ** 2, "MiB": 1024 ** 2,
     "G": 1024 ** 3, "GiB": 1024 ** 3, "T": 1024 ** 4, "TiB": 1024 ** 4,
     "P": 1024 ** 5, "PiB": 1024 ** 5,
     "kB": 1000, "KB": 1000, "MB": 1000 ** 2, "GB": 1000 ** 3, "TB": 1000 ** 4,
     "PB": 1000 ** 5},
    base="B", bare="B", examples="512MiB, 10GB, 2TiB, 4096")

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
    Returns a ``nagiosplugin.Range`` in the quantity's base unit; raises UnitError.
    """
    spec = str(text).strip()
    if not spec:
        raise UnitError("empty threshold")
    invert = spec.startswith("@")
    body = spec[1:] if invert else spec
    if body.count(":") > 1:
        raise UnitError("%r has more than one ':'" % text)
    if ":" in body:
        start, end = body.split(":")
    elif lower_bound and not invert:
        start, end = body, ""
    else:
        start, end = "", body
    if start == "" and end == "":
        raise UnitError("%r sets no bound" % text)
    parts = []
    if start == "~":
        parts.append("~:")
    elif start != "":
        parts.append(_atom(quantity.parse(start)) + ":")
    if end != "":
        parts.append(_atom(quantity.parse(end)))
    try:
        return nagiosplugin.Range(("@" if invert else "") + "".join(parts))
    except ValueError as exc:
        raise UnitError("%r: %s" % (text, exc)) from None


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
