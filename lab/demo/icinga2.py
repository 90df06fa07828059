"""The last act of `make demo`: the real icinga2 with the shipped config watches this machine
(the shipped apply rules) and every check's demo scenarios on their loopback peers for a few
forced check rounds, then prints the table of services with their states."""
import os
import sys

ROUNDS = 2


def scenarios(stack):
    from lab.peers import icinga2

    if os.geteuid() != 0:
        raise RuntimeError("the icinga2 demo runs icinga2 as root (ICINGA2_USER=root)")
    icinga2.ensure_installed()
    print("== icinga2: the shipped icinga2-conf watching this machine and the demo peers "
          "(%d forced check rounds)" % ROUNDS)
    sys.stdout.flush()
    icinga2.watch(stack, rounds=ROUNDS)
    print()
    return []
