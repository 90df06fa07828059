"""The check kit: the small pieces every check would otherwise write again.

``Verdict`` is what a check's pure ``judge`` returns and runtime renders: findings (state and
words), the summary, perfdata and long-output lines, and for a stateful check the saving of
its state once the output is rendered. ``state_of`` is the warning/critical ladder of one
value.

``worst_first`` orders states as a reader wants them in the status line (CRITICAL before
UNKNOWN), ``by_significance`` as exit codes rank them (UNKNOWN first), ``most_significant``
picks one; ``plural`` is the "s" of a counted noun.
"""
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


def by_significance(items, state=lambda item: item.state):
    """``items`` with the most significant state first, by exit code (UNKNOWN, CRITICAL,
    WARNING, OK: nagiosplugin's order of results and Icinga's of exit codes); items of one
    state keep their order. worst_first is the order of a status line's words instead."""
    return sorted(items, key=lambda item: -state(item).code)


def most_significant(*states):
    """The most significant of ``states`` by exit code (Ok when there is none)."""
    return max(states, key=lambda s: s.code, default=Ok)


def state_of(value, warning=None, critical=None):
    """Critical when ``value`` is outside the ``critical`` range, else Warn when outside
    ``warning``, else Ok (a range of None never alerts): the one ladder every check climbs."""
    if critical is not None and not critical.match(value):
        return Critical
    if warning is not None and not warning.match(value):
        return Warn
    return Ok


class Verdict:
    """A check's judgement as plain data, rendered by runtime.render.

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
        self.state = state if state is not None else most_significant(
            *(found for found, _ in self.findings))

    def __repr__(self):
        return "Verdict(%s, %r)" % (self.state, self.summary)
