"""The check kit (osop_checks/plugin.py): what every check shares."""
import ast
import pathlib

import nagiosplugin
from nagiosplugin import Critical, Ok, Unknown, Warn

from osop_checks import plugin

CHECKS = pathlib.Path(__file__).resolve().parent.parent / "osop_checks" / "checks"


def test_worst_first_puts_unknown_between_critical_and_warning_and_keeps_ties_in_order():
    items = [(Ok, "a"), (Warn, "b"), (Unknown, "c"), (Critical, "d"), (Warn, "e")]
    assert plugin.worst_first(items, state=lambda i: i[0]) == [
        (Critical, "d"), (Unknown, "c"), (Warn, "b"), (Warn, "e"), (Ok, "a")]
    assert [plugin.rank(s) for s in (Critical, Unknown, Warn, Ok)] == [0, 1, 2, 3]


def test_plural():
    assert "%d file%s" % (1, plugin.plural(1)) == "1 file"
    assert "%d file%s" % (0, plugin.plural(0)) == "0 files"
    assert "%d entr%s" % (2, plugin.plural(2, "y", "ies")) == "2 entries"


def test_by_significance_ranks_as_exit_codes_do_and_keeps_ties_in_order():
    items = [(Ok, "a"), (Warn, "b"), (Critical, "c"), (Unknown, "d"), (Warn, "e")]
    assert plugin.by_significance(items, state=lambda i: i[0]) == [
        (Unknown, "d"), (Critical, "c"), (Warn, "b"), (Warn, "e"), (Ok, "a")]
    assert plugin.most_significant(Warn, Critical, Unknown, Ok) == Unknown
    assert plugin.most_significant() == Ok


def test_state_of_is_the_ladder_of_one_value():
    warning, critical = nagiosplugin.Range("10"), nagiosplugin.Range("20")
    assert [plugin.state_of(v, warning, critical) for v in (5, 15, 25)] == [Ok, Warn, Critical]
    assert plugin.state_of(25, warning) == Warn
    assert plugin.state_of(25) == Ok  # no range never alerts


def test_a_verdict_is_as_significant_as_its_worst_finding_unless_told():
    assert plugin.Verdict().state == Ok
    assert plugin.Verdict([(Warn, "w"), (Unknown, "u"), (Critical, "c")]).state == Unknown
    assert plugin.Verdict([(Warn, "w")], state=Critical).state == Critical


def test_no_check_writes_the_kit_again():
    """The state ranking lives in plugin.py, the thread fan-out in fanout.py."""
    for path in sorted(CHECKS.glob("*.py")):
        source = path.read_text()
        assert "Critical: 0" not in source, path
        assert "threading.Thread" not in source, path
        assert "units._atom" not in source, path
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.IfExp) and isinstance(node.body, ast.Constant) and \
                    isinstance(node.orelse, ast.Constant) and \
                    (node.body.value, node.orelse.value) in (("", "s"), ("y", "ies")):
                raise AssertionError("%s:%d: use plugin.plural" % (path, node.lineno))
