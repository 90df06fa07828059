"""The last act of `make demo`: the real icinga2 with the shipped config watches this machine
(the shipped apply rules) and every check's demo scenarios on their loopback peers for a few
forced check rounds, then prints the table of services with their states.

The peers are the ones the demo modules before it started (``earlier``): each group starts
once. A group that did not start, or a check without a service, fails the demo after the
table (lab/peers/icinga2.py's MissingServices)."""
import os
import sys

ROUNDS = 2


def scenarios(stack, earlier=None):
    """``earlier``: {demo module: its scenarios, or the exception its start raised} of the
    modules `make demo` ran before this one on ``stack``."""
    from lab.peers import icinga2

    if os.geteuid() != 0:
        raise RuntimeError("the icinga2 demo runs icinga2 as root (ICINGA2_USER=root)")
    icinga2.ensure_installed()
    print("== icinga2: the shipped icinga2-conf watching this machine and the demo peers "
          "(%d forced check rounds)" % ROUNDS)
    sys.stdout.flush()
    icinga2.watch(stack, rounds=ROUNDS, started=earlier)
    print()
    return []
