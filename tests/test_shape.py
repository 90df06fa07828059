"""Every check has the shape of docs/DESIGN.md, read from its source (AST):

arguments -> gather in ``build_check`` (sources only) -> ``Resource.probe`` turns plain data
into metrics -> Contexts judge -> the Summary reads only the results.

The rules, per module of ``osop_checks/checks/``:

1. A Resource's ``__init__`` only keeps what it is given (``self.x = <expression without a
   call>``): it neither gathers nor judges.
2. ``Resource.probe`` does no I/O. What it calls (and, followed, the methods of its class and
   the functions of its own module that it calls) is one of: a pure builtin; nagiosplugin;
   the pure modules of the suite (``units``, ``text``, ``plugin``); a method of the data it
   holds; a pure parser of a source (a function of ``osop_checks.sources.*`` whose name starts
   with ``parse_``, or one listed in ``PURE``). Never a function of any other source module
   (they run commands, open sockets and files), of ``os``, ``time``, ``subprocess``,
   ``socket``, ``proc``, ``state``, ``bounded``, never ``open``, and never a callable handed
   in through the constructor (``self.fetch(...)``, a source in disguise) unless it is
   listed in ``PURE_HANDED_IN`` (a name filter, a threshold lookup).
3. ``Context.evaluate``/``performance`` and every Summary method change nothing but their own
   object: no assignment to an attribute (or an item of one) of another object, no
   ``append``/``update``/... on another object's attribute.
4. Nobody calls ``__enter__``/``__exit__`` by hand (``contextlib.ExitStack`` holds what is
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
# Callables a Resource is handed that are pure (no source in disguise): (check, class, attr).
PURE_HANDED_IN = {
    ("systemd_units", "Units", "selection"),  # the unit-name filter of --unit/--exclude
    ("systemd_units", "Units", "ages"),  # the per-timer --timer-max-age thresholds
}
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

    def kind(self, cls, seen=()):
        """'Resource', 'Context', 'Summary' or None, through local base classes too."""
        for base in cls.bases:
            name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
            if name == "Resource" or name == "Summary":
                return name
            if name.endswith("Context") or name == "PerfOnly":
                return "Context"
            if name in self.classes and name not in seen:
                found = self.kind(self.classes[name], seen + (name,))
                if found:
                    return found
        return None

    def of_kind(self, kind):
        return [c for c in self.classes.values() if self.kind(c) == kind]


def methods(cls):
    return {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}


def root(node):
    """The name an attribute/subscript chain starts from, and whether it has an attribute."""
    through_attribute = False
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        through_attribute |= isinstance(node, ast.Attribute)
        node = node.value
    return (node.id if isinstance(node, ast.Name) else None), through_attribute


def probe_violations(module, cls):
    """What the probe of ``cls`` (followed into its own methods and module functions)
    calls that may do I/O."""
    own = methods(cls)
    found, seen = [], set()

    def visit(function, where):
        if (where, function.name) in seen:
            return
        seen.add((where, function.name))
        for node in ast.walk(function):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            line = "%s.py:%d" % (module.name, node.lineno)
            if isinstance(func, ast.Name):
                name = func.id
                if name in module.functions:
                    visit(module.functions[name], "module")
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
                if isinstance(base, ast.Name) and base.id == "self":
                    if func.attr in own:
                        visit(own[func.attr], "class")
                    elif (module.name, cls.name, func.attr) not in PURE_HANDED_IN:
                        found.append("%s: self.%s(), handed in, not a method" % (
                            line, func.attr))
                elif isinstance(base, ast.Name) and base.id in module.aliases:
                    target = module.aliases[base.id]
                    if target in PURE_MODULES:
                        continue
                    if target.startswith("osop_checks.sources.") and (
                            func.attr.startswith("parse_") or (target, func.attr) in PURE):
                        continue
                    found.append("%s: %s.%s()" % (line, target, func.attr))
                # else: a method of the data it holds (str.join, a dataclass's property)
    visit(own["probe"], "class")
    return found


def mutations(function):
    """Assignments to another object's attributes (or their items), and mutating calls on
    them, in ``function``."""
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
            if through and name != "self":
                found.append("line %d: %s()" % (node.lineno, ast.unparse(node.func)))
        for target in targets:
            for leaf in (target.elts if isinstance(target, ast.Tuple) else [target]):
                if isinstance(leaf, (ast.Attribute, ast.Subscript)):
                    name, through = root(leaf)
                    if name != "self" and (through or isinstance(leaf, ast.Attribute)):
                        found.append("line %d: %s =" % (node.lineno, ast.unparse(leaf)))
    return found


def test_every_check_is_looked_at():
    assert len(modules()) == 7, modules()
    for name in modules():
        module = Module(name)
        assert module.of_kind("Resource") and module.of_kind("Context") and \
            module.of_kind("Summary"), name


@pytest.mark.parametrize("name", modules())
def test_a_resource_keeps_what_it_is_given(name):
    module = Module(name)
    for cls in module.of_kind("Resource"):
        init = methods(cls).get("__init__")
        for stmt in (init.body if init else []):
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                continue  # the docstring
            if isinstance(stmt, ast.Expr) and ast.unparse(stmt).startswith("super()"):
                continue
            assert isinstance(stmt, ast.Assign) and all(
                root(t)[0] == "self" for t in stmt.targets) and not any(
                isinstance(n, ast.Call) for n in ast.walk(stmt.value)), \
                "%s.%s.__init__ line %d does more than keep its arguments: %s" % (
                    name, cls.name, stmt.lineno, ast.unparse(stmt))


@pytest.mark.parametrize("name", modules())
def test_probe_does_no_io(name):
    module = Module(name)
    for cls in module.of_kind("Resource"):
        assert probe_violations(module, cls) == [], "%s.probe" % cls.name


@pytest.mark.parametrize("name", modules())
def test_contexts_and_summaries_change_no_other_object(name):
    module = Module(name)
    for cls in module.of_kind("Context"):
        for method in ("evaluate", "performance"):
            if method in methods(cls):
                assert mutations(methods(cls)[method]) == [], "%s.%s" % (cls.name, method)
    for cls in module.of_kind("Summary"):
        for method in methods(cls).values():
            assert mutations(method) == [], "%s.%s" % (cls.name, method.name)


@pytest.mark.parametrize("name", modules())
def test_no_context_manager_is_driven_by_hand(name):
    module = Module(name)
    calls = [n.lineno for n in ast.walk(module.tree) if isinstance(n, ast.Call) and
             isinstance(n.func, ast.Attribute) and n.func.attr in ("__enter__", "__exit__")]
    assert calls == [], "%s.py calls __enter__/__exit__ on lines %s" % (name, calls)


def test_the_rules_catch_what_they_are_about():
    """The rules on small pieces of code: a probe that fetches, a Context that fills another
    object, a resource that judges."""
    bad = Module.__new__(Module)
    bad.name = "bad"
    bad.tree = ast.parse(
        "from osop_checks.sources import tls, manifest\n"
        "import nagiosplugin\n"
        "class R(nagiosplugin.Resource):\n"
        "    def __init__(self, fetch):\n"
        "        self.fetch = fetch\n"
        "        self.judged = judge(fetch)\n"
        "    def probe(self):\n"
        "        manifest.parse_probe('ok')\n"
        "        yield self.fetch()\n"
        "        yield tls.fetch_chain('h')\n"
        "        yield helper()\n"
        "def helper():\n"
        "    return open('/etc/passwd')\n"
        "class C(nagiosplugin.Context):\n"
        "    def evaluate(self, metric, resource):\n"
        "        resource.subject.findings.append(1)\n"
        "        resource.seen = True\n"
        "        self.last = metric\n")
    bad.aliases = {"tls": "osop_checks.sources.tls", "manifest": "osop_checks.sources.manifest",
                   "nagiosplugin": "nagiosplugin"}
    bad.imported = {}
    bad.functions = {n.name: n for n in bad.tree.body if isinstance(n, ast.FunctionDef)}
    bad.classes = {n.name: n for n in bad.tree.body if isinstance(n, ast.ClassDef)}
    found = probe_violations(bad, bad.classes["R"])
    assert {f.split(": ", 1)[1] for f in found} == {
        "self.fetch(), handed in, not a method", "osop_checks.sources.tls.fetch_chain()",
        "open()"}
    assert {m.split(": ", 1)[1] for m in mutations(methods(bad.classes["C"])["evaluate"])} \
        == {"resource.subject.findings.append()", "resource.seen ="}
