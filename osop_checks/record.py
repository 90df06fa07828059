"""Plain data records without dataclasses.

Importing dataclasses brings inspect, ast, dis and tokenize, and each class it makes runs
generated code: more than a local check's own work at every start (issue 29). A record is a
class whose ``__init__`` sets its fields; ``Record`` gives it what a dataclass would: equality
by class and attributes (and so no hash) and a repr of every attribute in the order set.
Immutable records are named tuples (``collections.namedtuple`` with defaults) instead.
"""


class Record:
    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __eq__(self, other):
        return type(other) is type(self) and vars(other) == vars(self)

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__,
                           ", ".join("%s=%r" % kv for kv in vars(self).items()))
