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


def test_perf_only_is_always_ok_and_carries_the_metric_and_the_limits():
    context = plugin.PerfOnly("age", nagiosplugin.Range("10"), nagiosplugin.Range("20"))
    metric = nagiosplugin.Metric("age", 30, "s", min=0, context="age")
    assert context.evaluate(metric, None).state == Ok
    assert str(context.performance(metric, None)) == "age=30s;10;20;0"
    assert str(plugin.PerfOnly("n").performance(
        nagiosplugin.Metric("n", 3, min=0), None)) == "n=3;;;0"


def test_no_check_writes_the_kit_again():
    """The state ranking and a perfdata-only Context live in plugin.py, the thread fan-out in
    fanout.py."""
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
