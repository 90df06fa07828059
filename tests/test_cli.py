"""cli: the kit's option types that are not about units (those are in test_units and
test_parsers_fuzz)."""
import argparse

import nagiosplugin
import pytest

from osop_checks import cli

OK, WARN, CRIT, UNKNOWN = (nagiosplugin.Ok, nagiosplugin.Warn, nagiosplugin.Critical,
                           nagiosplugin.Unknown)


@pytest.mark.parametrize("text, state", [
    ("ok", OK), ("warning", WARN), ("critical", CRIT),
    # the older spellings: os_upgrades' warn/crit, tls_expiry's warn/crit/ignore
    ("warn", WARN), ("crit", CRIT), ("ignore", OK),
    ("OK", OK), ("Warning", WARN), ("CRIT", CRIT), ("Ignore", OK),
])
def test_a_state_by_its_name_or_an_older_spelling(text, state):
    assert cli.state_type()(text) == state
    assert cli.parse_state(text) == state


def test_unknown_is_a_state_where_an_option_allows_it():
    assert cli.state_type(tuple(cli.STATES))("unknown") == UNKNOWN
    with pytest.raises(argparse.ArgumentTypeError, match=r"^'unknown' is not one of ok, "
                       r"warning, critical \(or warn, crit, ignore\)$"):
        cli.state_type()("unknown")


@pytest.mark.parametrize("text", ["", " ok", "warnings", "2", "none", "maybe"])
def test_anything_else_is_refused_with_what_is_allowed(text):
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        cli.state_type()(text)
    assert str(refused.value) == ("%r is not one of ok, warning, critical "
                                  "(or warn, crit, ignore)" % text)


@pytest.mark.parametrize("text, state", [("warning", WARN), ("warn", WARN),
                                         ("critical", CRIT), ("crit", CRIT)])
def test_an_option_may_allow_fewer_states_and_their_older_spellings(text, state):
    assert cli.state_type(("warning", "critical"))(text) == state


@pytest.mark.parametrize("text", ["ok", "ignore", "unknown"])
def test_a_state_the_option_does_not_allow_is_refused(text):
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        cli.state_type(("warning", "critical"))(text)
    assert str(refused.value) == "%r is not one of warning, critical (or warn, crit)" % text


def test_every_state_option_reads_and_shows_the_same_way():
    """The metavar STATE, the help's words, a default given by its name (argparse reads it
    through the type) and a usage error that says what is allowed."""
    parser = cli.Parser("X", "check_x", "x")
    states, alarms = cli.state_type(), cli.state_type(("warning", "critical"))
    cli.add_state_option(parser, "--a-state", "state when a happens", "warning")
    cli.add_state_option(parser, "--b-state", "state when b happens", "critical",
                         ("warning", "critical"), more="; more words")
    shown = {a.dest: a for a in parser._actions}
    assert shown["a_state"].help == \
        "state when a happens: ok, warning or critical (default: warning)"
    assert shown["b_state"].help == \
        "state when b happens: warning or critical (default: critical); more words"
    assert shown["a_state"].metavar == cli.STATE and shown["a_state"].kind == cli.PLAIN
    assert cli.state_help("state when a happens", states, "warning") == \
        "state when a happens: ok, warning or critical (default: warning)"
    assert cli.state_help("b", alarms, "critical") == "b: warning or critical (default: critical)"
    parsed = parser.parse_args([])
    assert (parsed.a_state, parsed.b_state) == (WARN, CRIT)
    parsed = parser.parse_args(["--a-state", "ignore", "--b-state", "warn"])
    assert (parsed.a_state, parsed.b_state) == (OK, WARN)
    assert "--a-state STATE" in cli.help_text(parser)
