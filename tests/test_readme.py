import pkgutil

import osop_checks.checks
from tests import readme


def test_every_check_has_its_help_block_in_its_page():
    """What the blocks hold is today's --help: tests/test_regen.py."""
    overview = open(readme.README).read()
    for module in pkgutil.iter_modules(osop_checks.checks.__path__):
        page = readme.check_page("check_" + module.name)
        text = open(page).read()
        assert "<!-- HELP check_%s -->" % module.name in text, page
        assert "<!-- BEGIN check_%s -->" % module.name in text, page
        assert "(docs/checks/%s.md)" % module.name in overview, module.name


def test_the_docs_link_benchmark_figures_instead_of_pasting_them():
    """Figures live in bench/RESULTS.md alone (pasted ones drifted: the README said 26.1x and
    0.91x for os_upgrades' runs where RESULTS.md said 36.6x and MISSED)."""
    import re

    for path in readme.files():
        text = open(path).read()
        assert not re.findall(r"\d+\.\d+x\b|\d+x faster", text), path
    for check in ("check_os_upgrades", "check_tls_expiry", "check_three_copies"):
        assert "bench/RESULTS.md" in open(readme.check_page(check)).read(), check


def test_relative_links_of_the_docs_lead_to_files():
    import os
    import re

    for path in readme.files():
        for target in re.findall(r"\]\((?!https?:|#|mailto:)([^)#]+)", open(path).read()):
            assert os.path.exists(os.path.join(os.path.dirname(path), target)), (path, target)


def test_readme_names_the_two_commands_and_ci_runs_the_test_one():
    text = open(readme.README).read()
    assert "make demo" in text and "make test" in text
    ci = open(readme.README.replace("README.md", ".ci/run")).read()
    assert "make test" in ci
