"""What a network caller of osop-checks-api may ask a check to do (osop_checks.api.policy).

Every option of every check's parser says what kind of value it takes (cli.KINDS); the policy
is derived from that, so an option without a kind fails here before it can slip through.
"""
import importlib
import pkgutil

import pytest

import osop_checks.checks
from osop_checks import cli


def check_parsers():
    """[(module name, parser)] of every check."""
    found = []
    for info in sorted(pkgutil.iter_modules(osop_checks.checks.__path__), key=lambda i: i.name):
        module = importlib.import_module("osop_checks.checks." + info.name)
        if hasattr(module, "build_parser"):
            found.append((info.name, module.build_parser()))
    return found


def options_of(parser):
    return [action for action in parser._actions if action.option_strings]


@pytest.mark.parametrize("name,parser", check_parsers(), ids=lambda x: x if isinstance(x, str)
                         else "")
def test_every_option_of_every_check_says_what_kind_of_value_it_takes(name, parser):
    untagged = ["/".join(a.option_strings) for a in parser._actions if a.kind is None]
    assert not untagged, "check_%s: give these options kind= (cli.KINDS): %s" % (
        name, ", ".join(untagged))
    assert all(a.kind in cli.KINDS for a in parser._actions)
