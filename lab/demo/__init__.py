"""`make demo`: every check run against this machine and the loopback peers.

Each module lab/demo/<check>.py defines ``scenarios(stack)``: it may start peers on the
contextlib.ExitStack and returns a list of (title, [check_name, args...]). A scenario whose
title starts with "bad input" shows a usage error; Icinga's demo and tests leave it out.
"""

# `make demo` runs the modules in name order, then these, in this order: the real icinga2
# watches the peers every other demo module starts, so it comes last.
LAST = ("icinga2",)


def module_names():
    """The demo modules in the order `make demo` runs them."""
    import pkgutil

    names = sorted(info.name for info in pkgutil.iter_modules(__path__)
                   if not info.name.startswith("_"))
    return [n for n in names if n not in LAST] + [n for n in LAST if n in names]
