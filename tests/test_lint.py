"""Rules the code must keep: no shell, cheap module tops, no parse_known_args."""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEAVY = {"psutil", "requests", "cryptography", "pysnmp", "dns", "pyasn1", "urllib3", "ssl"}


def python_files():
    files = sorted((ROOT / "osop_checks").rglob("*.py"))
    files += sorted(p for p in (ROOT / "plugins").iterdir() if p.is_file())
    return files


@pytest.mark.parametrize("path", python_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_shell_and_no_heavy_imports_at_module_top(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "shell":
            if not (isinstance(node.value, ast.Constant) and node.value.value is False):
                pytest.fail("%s:%d runs a command through a shell" % (path, node.value.lineno))
        if isinstance(node, ast.Attribute) and node.attr in ("parse_known_args", "system",
                                                             "popen"):
            if node.attr == "parse_known_args" or getattr(node.value, "id", "") == "os":
                pytest.fail("%s:%d uses %s" % (path, node.lineno, node.attr))
    for node in tree.body:  # module top only: imports inside functions are the lazy path
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            assert name.split(".")[0] not in HEAVY, \
                "%s imports %s at module top; import it inside the function that needs it" % (
                    path, name)
