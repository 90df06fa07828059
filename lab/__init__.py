"""The lab: real peers on loopback and in network namespaces (``lab.peers``), the practice's
day (``lab.practice``) and the `make demo` scenarios (``lab.demo``). The tests, `bench/` and
the make targets import it explicitly; nothing here imports the tests."""
