"""The check kit: the small pieces every check would otherwise write again.

``worst_first`` orders states as a reader wants them in the status line, ``PerfOnly`` is the
Context of a metric that is only perfdata (its judgement is another Context's), ``plural``
the "s" of a counted noun, ``Remembering`` the Check of a plugin that writes a state file once
the run is judged.
"""
import nagiosplugin
from nagiosplugin import Critical, Ok, Unknown, Warn

# Worst first: UNKNOWN (we could not look) after CRITICAL, before WARNING.
RANK = {Critical: 0, Unknown: 1, Warn: 2, Ok: 3}


def rank(state):
    """The place of ``state`` in the status line: 0 (Critical) to 3 (Ok)."""
    return RANK[state]


def worst_first(items, state=lambda item: item.state):
    """``items`` (results, or anything ``state`` maps to a state) sorted worst first; items
    of the same state keep their order."""
    return sorted(items, key=lambda item: RANK[state(item)])


def plural(count, one="", many="s"):
    """The ending of a noun counted ``count`` times: ``"%d file%s" % (n, plural(n))``,
    ``"%d entr%s" % (n, plural(n, "y", "ies"))``."""
    return one if count == 1 else many


class PerfOnly(nagiosplugin.Context):
    """Perfdata only, always OK: the metric's value, uom, min and max, with the limits given
    here (the judgement of the quantity is another Context's, in words)."""

    def __init__(self, name, warning=None, critical=None):
        super().__init__(name)
        self.warning = warning
        self.critical = critical

    def evaluate(self, metric, resource):
        return nagiosplugin.Result(Ok, metric=metric)

    def performance(self, metric, resource):
        return nagiosplugin.Performance(metric.name, metric.value, metric.uom, self.warning,
                                        self.critical, metric.min, metric.max)


class Remembering(nagiosplugin.Check):
    """The check, then ``remember(results)``: where a check that keeps state writes its state
    file, from the judged results (never in a probe, a Context or the Summary)."""

    def __init__(self, remember, *objects):
        super().__init__(*objects)
        self.remember = remember

    def __call__(self):
        super().__call__()
        self.remember(self.results)
