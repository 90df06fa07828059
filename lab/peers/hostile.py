"""Hostile peers and the yardstick a check is held to against them.

``measured`` runs an installed check as a child of a small python wrapper and gives back its
outcome, the seconds it took and its peak memory (ru_maxrss of the wrapper's children: the
check and what it ran). ``forced_key`` adds a key with a forced command to the test sshd's
authorized_keys: that key's logins run the command whatever was asked (an ssh peer that
answers what it likes). Every hostile case must end within --timeout + 1 s, under 64 MiB, in
one line.
"""
import json
import os
import subprocess
import sys
import time

from osop_checks import runtime
from lab.peers import BIN

MEMORY_LIMIT = 64 * 1024 * 1024

_WRAPPER = (
    "import json, resource, subprocess, sys\n"
    "p = subprocess.run(sys.argv[1:], capture_output=True)\n"
    "print(json.dumps([p.returncode, p.stdout.decode('utf-8', 'replace'),"
    " p.stderr.decode('utf-8', 'replace')[-4000:],"
    " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024]))\n")


def measured(name, argv, timeout=60, user=None, bin_dir=BIN):
    """Run check ``name``: (Outcome with .stderr, .seconds, .max_rss in bytes)."""
    cmd = [os.path.join(bin_dir, name)] + [str(a) for a in argv]
    if user:
        cmd = ["runuser", "-u", user, "--"] + cmd
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", _WRAPPER] + cmd, capture_output=True,
                          text=True, timeout=timeout, check=True)
    seconds = time.monotonic() - started
    code, stdout, stderr, rss = json.loads(done.stdout)
    outcome = runtime.Outcome(code, stdout)
    outcome.stderr, outcome.seconds, outcome.max_rss = stderr, seconds, rss
    return outcome


def assert_contained(outcome, timeout, prefix):
    """One clear line, within ``timeout`` + 1 s, under 64 MiB, no traceback."""
    assert outcome.output.count("\n") == 1, outcome.output
    assert len(outcome.output) < 1000, outcome.output[:2000]
    assert_contained_lines(outcome, timeout, prefix)


def assert_contained_lines(outcome, timeout, prefix):
    """As assert_contained, for a run at -v (long output allowed)."""
    assert "Traceback" not in outcome.output + outcome.stderr, outcome.output + outcome.stderr
    assert outcome.output.startswith(prefix + " "), outcome.output + outcome.stderr
    assert outcome.seconds < timeout + 1, (outcome.seconds, outcome.output)
    assert outcome.max_rss < MEMORY_LIMIT, (outcome.max_rss, outcome.output)


def forced_key(server, path, command):
    """A client key at ``path`` whose logins to ``server`` (lab.peers.sshd.Sshd) run
    ``command`` (a shell line; $SSH_ORIGINAL_COMMAND holds what was asked) instead."""
    from lab.peers.sshd import keygen

    public = keygen(str(path))
    line = 'command="%s",no-pty %s\n' % (command.replace('"', '\\"'), public)
    with open(os.path.join(server.dir, "authorized_keys"), "a") as handle:
        handle.write(line)
    return str(path)
