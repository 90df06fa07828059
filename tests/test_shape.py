"""What a check's shape promises that a pure function cannot show by itself, read from each
module of ``osop_checks/checks/`` (AST):

1. No nagiosplugin ceremony: no Resource, Context, Summary, Result or Check of its own, no
   Metric (no object travels as a metric value): a check builds a plugin.Verdict.
2. ``build_check`` gathers and hands the data to a judgement: every ``return`` of it returns
   the call of a module-level function whose name starts with ``judge``.
3. A judgement does no I/O: what a ``judge*`` function calls (followed into the module's own
   functions) is a pure builtin, nagiosplugin, a pure module of the suite (``units``,
   ``text``, ``plugin``), a method of the data it holds, or a pure parser of a source (named
   ``parse_*``). Never another source function, ``os``, ``time``, ``subprocess``, ``socket``,
   ``proc``, ``state``, ``bounded``, ``open``, and never a callable it was handed (a source
   in disguise).
4. A judgement changes none of its arguments (no assignment to, no append on them).
5. Nobody calls ``__enter__``/``__exit__`` by hand (``contextlib.ExitStack`` holds what is
   opened for a while).
"""
import ast
import builtins
import pathlib

import pytest

CHECKS = pathlib.Path(__file__).resolve().parent.parent / "osop_checks" / "checks"

PURE_BUILTINS = {
    "abs", "all", "any", "bool", "dict", "divmod", "enumerate", "filter", "float", "format",
    "frozenset", "getattr", "hasattr", "int", "isinstance", "iter", "len", "list", "map",
    "max", "min", "next", "range", "repr", "reversed", "round", "set", "sorted", "str",
    "sum", "tuple", "zip", "super"}
PURE_MODULES = {"nagiosplugin", "osop_checks.units", "osop_checks.text", "osop_checks.plugin",
                "math", "re", "dataclasses", "itertools", "functools", "ipaddress"}
PURE = set()  # ("osop_checks.sources.<module>", "<function>") of pure helpers not named parse_*
CEREMONY = {"Resource", "Context", "ScalarContext", "Summary", "Result", "Check", "Metric"}
MUTATORS = {"append", "extend", "insert", "update", "add", "pop", "popitem", "remove",
            "clear", "setdefault", "sort", "discard", "reverse"}


def modules():
    return sorted(p.stem for p in CHECKS.glob("*.py") if p.stem != "__init__")


class Module:
    def __init__(self, name):
        self.name = name
        self.tree = ast.parse((CHECKS / (name + ".py")).read_text(), name)
        self.aliases = {}  # local name -> module
        self.imported = {}  # local name -> (module, name) of a function imported by name
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.aliases[(a.asname or a.name).split(".")[0]] = a.name if a.asname \
                        else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    full = "%s.%s" % (node.module, a.name)
                    if node.module in ("osop_checks", "osop_checks.sources"):
                        self.aliases[a.asname or a.name] = full
                    else:
                        self.imported[a.asname or a.name] = (node.module, a.name)
        self.functions = {n.name: n for n in self.tree.body if isinstance(n, ast.FunctionDef)}
        self.classes = {n.name: n for n in self.tree.body if isinstance(n, ast.ClassDef)}

    def judges(self):
        return [f for name, f in self.functions.items() if name.startswith("judge")]

    def ceremony(self):
        """Uses of nagiosplugin's Resource/Context/Summary/Result/Check/Metric: base classes
        and calls."""
        found = []
        for node in ast.walk(self.tree):
            names = []
            if isinstance(node, ast.ClassDef):
                names = node.bases
            elif isinstance(node, ast.Call):
                names = [node.func]
            for name in names:
                if isinstance(name, ast.Attribute) and isinstance(name.value, ast.Name) and \
                        self.aliases.get(name.value.id) == "nagiosplugin" and \
                        name.attr in CEREMONY:
                    found.append("%s.py:%d: nagiosplugin.%s" % (self.name, node.lineno,
                                                                name.attr))
                elif isinstance(name, ast.Name) and self.imported.get(name.id, ("",))[0] == \
                        "nagiosplugin" and name.id in CEREMONY:
                    found.append("%s.py:%d: %s" % (self.name, node.lineno, name.id))
        return found


def methods(cls):
    return {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}


def root(node):
    """The name an attribute/subscript chain starts from, and whether it has an attribute."""
    through_attribute = False
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        through_attribute |= isinstance(node, ast.Attribute)
        node = node.value
    return (node.id if isinstance(node, ast.Name) else None), through_attribute


def io_calls(module, function):
    """What ``function`` (followed into the module's own functions) calls that may do I/O:
    anything but a pure builtin, a pure module, a pure parser of a source or a method of the
    data it holds; a callable it was handed (one of its parameters) is a source in
    disguise."""
    found, seen = [], set()

    def visit(function):
        if function.name in seen:
            return
        seen.add(function.name)
        handed = {a.arg for a in function.args.args + function.args.kwonlyargs}
        for node in ast.walk(function):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            line = "%s.py:%d" % (module.name, node.lineno)
            if isinstance(func, ast.Name):
                name = func.id
                if name in handed:
                    found.append("%s: %s(), handed in" % (line, name))
                elif name in module.functions:
                    visit(module.functions[name])
                elif name in module.classes or name in PURE_BUILTINS:
                    pass
                elif name in module.imported:
                    source, original = module.imported[name]
                    if source not in PURE_MODULES and not (
                            source.startswith("osop_checks.sources.") and
                            (original.startswith("parse_") or (source, original) in PURE)):
                        found.append("%s: %s from %s" % (line, name, source))
                elif hasattr(builtins, name):  # open, print, input ...
                    found.append("%s: %s()" % (line, name))
            elif isinstance(func, ast.Attribute):
                base = func.value
                if isinstance(base, ast.Name) and base.id in module.aliases and \
                        base.id not in handed:
                    target = module.aliases[base.id]
                    if target in PURE_MODULES:
                        continue
                    if target.startswith("osop_checks.sources.") and (
                            func.attr.startswith("parse_") or (target, func.attr) in PURE):
                        continue
                    found.append("%s: %s.%s()" % (line, target, func.attr))
                # else: a method of the data it holds (str.join, a dataclass's property)
    visit(function)
    return found


def own_returns(function):
    """The return statements of ``function`` itself, not of functions defined inside it."""
    for node in ast.iter_child_nodes(function):
        if isinstance(node, ast.Return):
            yield node
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
                                   ast.ClassDef)):
            yield from own_returns(node)


def mutations(function):
    """Assignments to its arguments' attributes (or their items), and mutating calls on
    them, in ``function``."""
    handed = {a.arg for a in function.args.args + function.args.kwonlyargs}
    found = []
    for node in ast.walk(function):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in MUTATORS:
            name, through = root(node.func.value)
            if name in handed:
                found.append("line %d: %s()" % (node.lineno, ast.unparse(node.func)))
        for target in targets:
            for leaf in (target.elts if isinstance(target, ast.Tuple) else [target]):
                if isinstance(leaf, (ast.Attribute, ast.Subscript)):
                    name, _ = root(leaf)
                    if name in handed:
                        found.append("line %d: %s =" % (node.lineno, ast.unparse(leaf)))
    return found


def test_every_check_is_looked_at():
    assert len(modules()) == 7, modules()
    for name in modules():
        assert Module(name).judges(), name


@pytest.mark.parametrize("name", modules())
def test_no_nagiosplugin_ceremony(name):
    assert Module(name).ceremony() == []


@pytest.mark.parametrize("name", modules())
def test_build_check_returns_a_judgement(name):
    module = Module(name)
    returns = list(own_returns(module.functions["build_check"]))
    assert returns, name
    for node in returns:
        call = node.value
        assert isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and \
            call.func.id.startswith("judge") and call.func.id in module.functions, (
                "%s.py:%d: build_check returns %s" % (name, node.lineno,
                                                     ast.unparse(node.value)))


@pytest.mark.parametrize("name", modules())
def test_a_judgement_does_no_io(name):
    module = Module(name)
    for judge in module.judges():
        assert io_calls(module, judge) == [], "%s.%s" % (name, judge.name)


@pytest.mark.parametrize("name", modules())
def test_a_judgement_changes_none_of_its_arguments(name):
    module = Module(name)
    for judge in module.judges():
        assert mutations(judge) == [], "%s.%s" % (name, judge.name)


@pytest.mark.parametrize("name", modules())
def test_no_context_manager_is_driven_by_hand(name):
    module = Module(name)
    calls = [n.lineno for n in ast.walk(module.tree) if isinstance(n, ast.Call) and
             isinstance(n.func, ast.Attribute) and n.func.attr in ("__enter__", "__exit__")]
    assert calls == [], "%s.py calls __enter__/__exit__ on lines %s" % (name, calls)


def test_the_rules_catch_what_they_are_about():
    """The rules on small pieces of code: a judgement that fetches, reads a file through a
    helper, fills its argument; a Metric carrying an object."""
    bad = Module.__new__(Module)
    bad.name = "bad"
    bad.tree = ast.parse(
        "from osop_checks.sources import tls, manifest\n"
        "import nagiosplugin\n"
        "class R(nagiosplugin.Resource):\n"
        "    pass\n"
        "def judge(subject, fetch, now):\n"
        "    manifest.parse_probe('ok')\n"
        "    fetch()\n"
        "    tls.fetch_chain('h')\n"
        "    helper()\n"
        "    subject.findings.append(1)\n"
        "    subject.seen = True\n"
        "    words = []\n"
        "    words.append(now)\n"
        "    return nagiosplugin.Metric('x', subject)\n"
        "def helper():\n"
        "    return open('/etc/passwd')\n")
    bad.aliases = {"tls": "osop_checks.sources.tls", "manifest": "osop_checks.sources.manifest",
                   "nagiosplugin": "nagiosplugin"}
    bad.imported = {}
    bad.functions = {n.name: n for n in bad.tree.body if isinstance(n, ast.FunctionDef)}
    bad.classes = {n.name: n for n in bad.tree.body if isinstance(n, ast.ClassDef)}
    found = io_calls(bad, bad.functions["judge"])
    assert {f.split(": ", 1)[1] for f in found} == {
        "fetch(), handed in", "osop_checks.sources.tls.fetch_chain()", "open()"}
    assert {m.split(": ", 1)[1] for m in mutations(bad.functions["judge"])} \
        == {"subject.findings.append()", "subject.seen ="}
    assert [c.split(": ", 1)[1] for c in bad.ceremony()] == [
        "nagiosplugin.Resource", "nagiosplugin.Metric"]
