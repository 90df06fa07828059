"""The check kit: the small pieces every check would otherwise write again.

``Verdict`` is what a check's pure ``judge`` returns and runtime renders: findings (state and
words), the summary, perfdata and long-output lines, and for a stateful check the saving of
its state once the output is rendered. ``state_of`` is the warning/critical ladder of one
value.

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


def state_of(value, warning=None, critical=None):
    """Critical when ``value`` is outside the ``critical`` range, else Warn when outside
    ``warning``, else Ok (a range of None never alerts): the one ladder every check climbs."""
    if critical is not None and not critical.match(value):
        return Critical
    if warning is not None and not warning.match(value):
        return Warn
    return Ok


class Verdict:
    """A check's judgement as plain data, rendered by runtime.render_verdict.

    ``findings``: [(state, words)] of everything judged; the verdict's state is the most
    significant of them (UNKNOWN over CRITICAL, as Icinga and nagiosplugin rank exit codes),
    OK without findings, unless ``state`` is given. ``summary``: the status line's words.
    ``perfdata``: nagiosplugin.Performance items (rendered sorted, as nagiosplugin does).
    ``long``: the long-output lines. ``save``: None, or a callable that writes the check's
    state file; runtime calls it after the output is rendered.
    """

    def __init__(self, findings=(), summary="", perfdata=(), long=(), state=None, save=None):
        self.findings = list(findings)
        self.summary = summary
        self.perfdata = list(perfdata)
        self.long = list(long)
        self.save = save
        self.state = state if state is not None else max(
            (found for found, _ in self.findings), key=lambda s: s.code, default=Ok)

    def __repr__(self):
        return "Verdict(%s, %r)" % (self.state, self.summary)
