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


STATE_NAMES = {"Critical", "Warn", "Unknown", "Ok"}
SORTS = {"sorted", "sort", "min", "max"}
PLURAL_ENDINGS = ({"", "s"}, {"y", "ies"})
THREADS = {"threading", "concurrent", "concurrent.futures", "multiprocessing.pool"}


def _is_state(node):
    """``Critical``, ``nagiosplugin.Warn``, ...: one of the four states by name."""
    return (isinstance(node, ast.Name) and node.id in STATE_NAMES) or (
        isinstance(node, ast.Attribute) and node.attr in STATE_NAMES)


def _rank_tables(tree):
    """Names bound to a dict literal that maps states to numbers: a rank of their own."""
    tables = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict) and \
                len(node.value.keys) >= 2 and all(_is_state(k) for k in node.value.keys) and \
                all(isinstance(v, ast.Constant) and isinstance(v.value, int)
                    for v in node.value.values):
            tables.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return tables


def _ranks_states(key, tables):
    """Whether the sort key ``key`` is a state's rank by itself: its exit code (``s.code``,
    ``-s.state.code``, ``attrgetter("code")``) or a look-up in a rank table of the module's
    own. A tuple that orders by state and then by something else is not one kit call and
    is left alone."""
    if isinstance(key, ast.Lambda):
        key = key.body
    if isinstance(key, ast.UnaryOp) and isinstance(key.op, ast.USub):
        key = key.operand
    if isinstance(key, ast.Attribute) and key.attr == "code":
        return True
    if isinstance(key, ast.Call) and isinstance(key.func, (ast.Name, ast.Attribute)) and \
            ast.unparse(key.func).split(".")[-1] == "attrgetter":
        return any(isinstance(a, ast.Constant) and str(a.value).split(".")[-1] == "code"
                   for a in key.args)
    return isinstance(key, ast.Subscript) and isinstance(key.value, ast.Name) and \
        key.value.id in tables


def _match_calls(test):
    """(receiver, argument) of every ``R.match(V)`` in an ``if``'s test, ``re`` and
    compiled patterns (UPPER_CASE names) aside."""
    for node in ast.walk(test):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr == "match" and len(node.args) == 1:
            receiver = ast.unparse(node.func.value)
            name = receiver.split(".")[-1]
            if receiver != "re" and not name.isupper():
                yield receiver, ast.dump(node.args[0])


def kit_written_again(source, name="<snippet>"):
    """What of the kit (osop_checks/plugin.py, fanout.py, units.py) ``source`` writes again:
    ["name:line: what to use instead"]."""
    tree = ast.parse(source)
    found = []

    def say(node, words):
        found.append("%s:%d: %s" % (name, node.lineno, words))

    tables = _rank_tables(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id in tables for t in node.targets):
            say(node, "a rank of the states of its own: use plugin.rank / worst_first")
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            key = next((k.value for k in node.keywords if k.arg == "key"), None)
            if called in SORTS and key is not None and _ranks_states(key, tables):
                say(node, "%s by state: use plugin.by_significance, worst_first or "
                          "most_significant" % called)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name == "plural":
                say(node, "a plural of its own: use plugin.plural")
            tested = {}
            for inner in ast.walk(node):
                if isinstance(inner, (ast.If, ast.IfExp)):
                    for receiver, value in _match_calls(inner.test):
                        tested.setdefault(value, set()).add(receiver)
            for receivers in tested.values():
                if len(receivers) >= 2:
                    say(node, "a warning/critical ladder in %s() (%s): use plugin.state_of"
                        % (node.name, ", ".join(sorted(receivers))))
        if isinstance(node, ast.IfExp) and all(
                isinstance(b, ast.Constant) and isinstance(b.value, str)
                for b in (node.body, node.orelse)) and \
                {node.body.value, node.orelse.value} in PLURAL_ENDINGS:
            say(node, "a plural of its own: use plugin.plural")
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Tuple) and \
                all(isinstance(e, ast.Constant) for e in node.value.elts) and \
                {e.value for e in node.value.elts} in PLURAL_ENDINGS:
            say(node, "a plural of its own: use plugin.plural")
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) \
                else [node.module or ""]
            if any(m in THREADS or m.split(".")[0] == "threading" for m in modules):
                say(node, "threads of its own: use fanout.run_all")
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                node.value.id == "units" and node.attr.startswith("_"):
            say(node, "units.%s, a private helper: use units' public functions" % node.attr)
    return found


def test_no_check_writes_the_kit_again():
    """The state ranking, the ladder and the plural live in plugin.py, the thread fan-out in
    fanout.py, the unit helpers behind units' public functions."""
    found = []
    for path in sorted(CHECKS.glob("*.py")):
        found += kit_written_again(path.read_text(), path.name)
    assert found == [], "\n".join(found)


def test_the_kit_rule_catches_what_it_is_about():
    """Each way of writing the kit again, in a snippet the rule must flag; the kit's own calls
    and what only looks alike (a regex, a code-to-state table, a compound order) pass."""
    bad = {
        "RANK = {Critical: 0, Unknown: 1, Warn: 2, Ok: 3}\n": "a rank of the states",
        "def f(rs):\n    return sorted(rs, key=lambda r: -r.state.code)\n": "sorted by state",
        "def f(rs):\n    rs.sort(key=lambda r: r.code)\n": "sort by state",
        "def f(ss):\n    return max(ss, key=lambda s: s.code)\n": "max by state",
        "def f(ss):\n    return sorted(ss, key=operator.attrgetter('state.code'))\n":
            "sorted by state",
        "ORDER = {nagiosplugin.Critical: 0, nagiosplugin.Ok: 1}\n"
        "def f(ss):\n    return sorted(ss, key=lambda s: ORDER[s])\n": "sorted by state",
        "def judge(v, warning, critical):\n"
        "    if not critical.match(v):\n        return Critical\n"
        "    if not warning.match(v):\n        return Warn\n    return Ok\n":
            "a warning/critical ladder in judge() (critical, warning)",
        "def judge(v, limits):\n"
        "    return (Critical if limits.critical and not limits.critical.match(v) else\n"
        "            Warn if not limits.warning.match(v) else Ok)\n":
            "a warning/critical ladder in judge()",
        "def words(n):\n    return '%d file%s' % (n, '' if n == 1 else 's')\n": "a plural",
        "def words(n):\n    return '%d file%s' % (n, 's' if n != 1 else '')\n": "a plural",
        "def words(n):\n    return 'entr' + ('y' if n == 1 else 'ies')\n": "a plural",
        "def words(n):\n    return 'file' + ('s', '')[n == 1]\n": "a plural",
        "def plural(n):\n    return 's'\n": "a plural",
        "def f():\n    import threading\n": "threads of its own",
        "from concurrent.futures import ThreadPoolExecutor\n": "threads of its own",
        "def f(v):\n    return units._atom(v)\n": "units._atom",
    }
    for snippet, words in bad.items():
        found = kit_written_again(snippet)
        assert any(words in f for f in found), (snippet, found)
    good = (
        "STATE_OF = {0: Ok, 1: Warn, 2: Critical, 3: Unknown}\n"
        "SEVERITIES = {'warn': Warn, 'crit': Critical}\n"
        "def judge(v, name, warning, critical):\n"
        "    if not UNIT_NAME.match(name) or not re.match('x', name):\n        return None\n"
        "    if not ALSO.match(name):\n        return None\n"
        "    if not warning.match(v):\n        pass\n"
        "    state = plugin.state_of(v, warning, critical)\n"
        "    ordered = plugin.worst_first(plugin.by_significance([state]))\n"
        "    others = sorted(ordered, key=lambda f: (plugin.rank(f[1]), f[0]))\n"
        "    held = sorted(others, key=lambda a: (-a.state.code, a.since))\n"
        "    return '%d file%s' % (v, plugin.plural(v)), units.format_time(v), held\n")
    assert kit_written_again(good) == []
