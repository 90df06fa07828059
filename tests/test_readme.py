import pkgutil

import osop_checks.checks
from tests import readme


def test_every_check_has_its_current_help_in_the_readme():
    text = open(readme.README).read()
    assert readme.render(text) == text, "README --help blocks are stale: python -m tests.readme"
    for module in pkgutil.iter_modules(osop_checks.checks.__path__):
        assert "<!-- HELP check_%s -->" % module.name in text, module.name


def test_readme_names_the_two_commands_and_ci_runs_the_test_one():
    text = open(readme.README).read()
    assert "make demo" in text and "make test" in text
    ci = open(readme.README.replace("README.md", ".ci/run")).read()
    assert "make test" in ci
