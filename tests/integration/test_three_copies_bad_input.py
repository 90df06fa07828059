"""check_three_copies' state file and loss options given wrong, through the real executable:
a corrupt, foreign-owned or symlinked state file, an unknown --sleeping name, a --canary
outside the source, a shrink or churn value that is not a percentage. Each is UNKNOWN (exit 3)
in one clear line that names what is wrong, and the state file is left as it was."""
import json
import os

import pytest

from lab.peers import need_root, run_plugin

pytestmark = pytest.mark.peer


@pytest.fixture
def trees(tmp_path):
    """A source and a copy of it on a filesystem of its own; the argv that checks them."""
    need_root()
    from lab.peers.copies import make_source, rsync, tmpfs

    source = str(tmp_path / "data1")
    make_source(source)
    with tmpfs() as data2:
        rsync(source, os.path.join(data2, "data1"))
        state = str(tmp_path / "three_copies.json")
        yield state, ["--source", source, "--copy", "data2=%s/data1" % data2, "--min-copies",
                      "1", "--canary", "a.b", "--state-file", state]


def unknown(argv, *phrases):
    outcome = run_plugin("check_three_copies", argv)
    assert outcome.exitcode == 3, outcome.output
    assert outcome.output.startswith("THREE_COPIES UNKNOWN - "), outcome.output
    assert outcome.output.count("\n") == 1, outcome.output  # one line
    assert "Traceback" not in outcome.output + outcome.stderr
    for phrase in phrases:
        assert phrase in outcome.output, outcome.output
    return outcome


def test_a_good_state_file_is_written_and_read_back(trees):
    state, argv = trees
    for _run in range(2):
        outcome = run_plugin("check_three_copies", argv)
        assert outcome.exitcode == 0, outcome.output
    with open(state) as handle:
        assert isinstance(json.load(handle), dict)
    assert os.stat(state).st_mode & 0o077 == 0


def test_a_corrupt_state_file_is_unknown_and_kept(trees):
    state, argv = trees
    with open(state, "w") as handle:
        handle.write('{"copies": {"data2": ')
    unknown(argv, "the state file %s is corrupt: " % state)
    with open(state) as handle:
        assert handle.read() == '{"copies": {"data2": '


def test_a_state_file_of_another_user_is_not_trusted(trees):
    state, argv = trees
    run_plugin("check_three_copies", argv)
    before = open(state).read()
    os.chown(state, 65534, 65534)
    unknown(argv, "the state file %s belongs to uid 65534" % state)
    assert open(state).read() == before


def test_a_symlinked_state_file_is_not_followed(trees, tmp_path):
    state, argv = trees
    target = tmp_path / "elsewhere.json"
    target.write_text("{}")
    os.symlink(str(target), state)
    unknown(argv, "the state file %s is a symbolic link" % state)
    assert target.read_text() == "{}"
    assert os.path.islink(state)


def test_an_unknown_sleeping_name(trees):
    _state, argv = trees
    unknown(argv + ["--sleeping", "vault"], "--sleeping vault names no --copy")


@pytest.mark.parametrize("canary", ["../outside.txt", "/etc/hostname", "docs/../../x"])
def test_a_canary_outside_the_source(trees, canary):
    _state, argv = trees
    unknown(argv + ["--canary", canary], "argument --canary: ", "inside the source")


@pytest.mark.parametrize("option, value", [
    ("--shrink-warning", "lots"), ("--shrink-critical", "150%"), ("--churn-warning=", "-5%"),
    ("--churn-critical", "30 percent"), ("--shrink-warning", "10s"),
])
def test_a_shrink_or_churn_value_that_is_not_a_percentage(trees, option, value):
    _state, argv = trees
    argv += [option + value] if option.endswith("=") else [option, value]
    unknown(argv, "argument %s: " % option.rstrip("="))
