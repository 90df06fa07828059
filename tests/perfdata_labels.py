"""The list of perfdata labels every check can emit (tests/perfdata-labels.txt, its header says
the format) and what holds the checks and the changelog to it.

``load()`` reads the list; ``unlisted(check, perfdata)`` names the labels (with units) of a
check's perfdata that the list lacks; ``digest()`` is the list's fingerprint over check, label
and unit, which CHANGELOG.md must name ("perfdata labels <digest>"). The graph generator
(icinga2-conf/graphs.py) draws its graphs from the same list.
"""
import collections
import hashlib
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
LIST = os.path.join(HERE, "perfdata-labels.txt")
CHANGELOG = os.path.join(os.path.dirname(HERE), "CHANGELOG.md")
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


class Label(collections.namedtuple("Label", "check label units graph meaning")):
    """One line of the list: ``units`` a tuple ("" for none), ``graph`` None when not drawn."""

    @property
    def pattern(self):
        """The label as a regular expression: a {placeholder} matches any text."""
        parts = PLACEHOLDER.split(self.label)
        return re.compile("".join(re.escape(p) if i % 2 == 0 else "(?P<%s>.+)" % p
                                  for i, p in enumerate(parts)) + r"\Z", re.S)

    @property
    def placeholders(self):
        return PLACEHOLDER.findall(self.label)

    def matches(self, label, unit):
        return unit in self.units and self.pattern.match(label) is not None


def load(path=LIST):
    """[Label] in the order of the list."""
    labels = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            fields = [f.strip() for f in line.split(" | ")]
            if len(fields) != 5 or not all(fields[:4]):
                raise ValueError("%s:%d: want 'check | label | unit | graph | meaning': %r"
                                 % (path, number, line))
            check, label, units, graph, meaning = fields
            labels.append(Label(check, label, tuple("" if u == "-" else u for u in units.split()),
                                None if graph == "-" else graph, meaning))
    return labels


def by_check(labels=None):
    """{check: [Label]}."""
    out = collections.OrderedDict()
    for label in load() if labels is None else labels:
        out.setdefault(label.check, []).append(label)
    return out


def digest(labels=None):
    """12 hex digits over every line's check, label and units (not its graph or meaning)."""
    text = "\n".join("%s|%s|%s" % (x.check, x.label, " ".join(x.units))
                     for x in (load() if labels is None else labels))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def unlisted(check, perfdata, labels=None):
    """["label (unit)"] of ``perfdata`` (nagiosplugin.Performance items, or (label, unit)
    pairs) that no line of ``check`` lists."""
    mine = by_check(labels).get(check, [])
    found = []
    for item in perfdata:
        label, unit = (item.label, item.uom) if hasattr(item, "label") else item
        unit = unit or ""
        if not any(x.matches(label, unit) for x in mine):
            found.append("%s (%s)" % (label, unit or "no unit"))
    return found


def changelog_names_digest(path=CHANGELOG):
    """Whether CHANGELOG.md names today's digest as "perfdata labels <digest>"."""
    with open(path, encoding="utf-8") as handle:
        return ("perfdata labels %s" % digest()) in handle.read()
