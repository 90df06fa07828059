"""The man pages (osop_checks/manpage.py) render with man and carry every option of the parser
they are made from, and the examples of its --help."""
import os
import subprocess

import pytest

from osop_checks import manpage
from lab.peers import need

PARSERS = dict(manpage.parsers())


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("man"))
    assert manpage.main([directory]) == 0
    return directory


@pytest.mark.parametrize("prog", sorted(PARSERS))
def test_man_renders_the_page_with_every_option_and_example(pages, prog):
    need("man")
    path = os.path.join(pages, prog + ".1")
    proc = subprocess.run(["man", "--warnings", "-l", path], capture_output=True, text=True,
                          env=dict(os.environ, MANWIDTH="250", MANPAGER="cat", PAGER="cat",
                                   LC_ALL="C.UTF-8"), timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    text = proc.stdout
    assert text.startswith(prog.upper() + "(1)")
    parser = PARSERS[prog]
    for action in parser._actions:
        for option in action.option_strings:
            assert option in text, (prog, option)
    flat = " ".join(text.split())
    examples = getattr(parser, "examples", ())
    for example in examples:
        assert " ".join(example.split()) in flat, (prog, example)
    for heading in ("NAME", "SYNOPSIS", "OPTIONS") + (("EXAMPLES",) if examples else ()) + (
            ("EXIT STATUS",) if prog.startswith("check_") else ()):
        assert "\n%s\n" % heading in text, heading


def test_troff_requests_in_help_text_are_escaped():
    page = manpage._paragraph(".SH not a heading \\fB - ' too")
    assert page.startswith("\\&.SH") and "\\efB \\- '" in page
