"""`make demo`: every check run against this machine and the loopback peers.

Each module tests/demo/<check>.py defines ``scenarios(stack)``: it may start peers on the
contextlib.ExitStack and returns a list of (title, [check_name, args...]). A scenario whose
title starts with "bad input" shows a usage error; Icinga's demo and tests leave it out.
"""
