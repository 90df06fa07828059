# osop-checks: `make demo` runs every check against this machine; `make test` runs the suite.
# Both start from nothing: they install what they need (Debian packages only when root).
SHELL := /bin/bash
PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: deps venv check test demo demo-web bench icinga2-validate lint man deb regen clean

deps:
	@bash .ci/install-system-packages

# --system-site-packages: the venv uses Debian's python3-* libraries where they are installed,
# so the suite proves the checks work with what Debian 12 ships; pip adds only what is missing.
$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv --system-site-packages $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

# The fast tier, for every change: no root, no peers (tests marked peer are left out), about a
# minute on 2 cores: the static checks, units, parsers, judgements and the daemon's policy.
check: venv lint
	$(PY) -m pytest -q -n 2 -m "not peer" tests/test_*.py tests/checks $(PYTEST_ARGS)

# Everything, what CI runs. Two workers, a test file on one of them (its module fixtures and
# peers stay together): the suite waits on peers, packages and timeouts as much as it computes.
test: deps venv lint
	$(PY) -m pytest -q -n 2 --dist loadfile $(PYTEST_ARGS)

demo: deps venv
	@$(PY) -m lab.demo

# The demo's scenarios in Icinga Director and Icinga Web 2 (Debian 12's, in a cached bookworm
# root filesystem: lab/peers/director.py), until Ctrl-C; prints the URL and login.
demo-web: deps venv
	@$(PY) -m lab.peers.director demo-web $(DEMO_WEB_ARGS)

bench: deps venv
	@$(PY) -m bench.run

icinga2-validate: deps venv
	@$(PY) -m lab.peers.icinga2 validate

# Everything written from the parsers, in one step (tests/regen.py): the docs' --help blocks
# (README.md, docs/), icinga2-conf/commands.conf, commands-api.conf, the Director basket
# icinga2-conf/director/osop-checks.json, the graph templates and dashboards (icinga2-conf/graphite/,
# grafana/, from tests/perfdata-labels.txt) and the example inventory (icinga2-conf/example/).
# On a clean tree it leaves no diff; tests/test_regen.py fails while a file is out of date.
regen: venv
	$(PY) -m tests.regen

# Man pages of every check, from the same parsers as --help (the .deb builds them the same way).
man: venv
	$(PY) -m osop_checks.manpage build/man

# The Debian package, unsigned, into dist/: built from a copy of the tracked (and new,
# not ignored) files with dpkg-buildpackage (debhelper, dh-python; .ci/system-packages).
DIST ?= dist
DEBBUILD ?= build/deb
deb:
	rm -rf $(DEBBUILD) && mkdir -p $(DEBBUILD)/src $(DIST)
	git ls-files -z --cached --others --exclude-standard | xargs -0 cp -a --parents -t $(DEBBUILD)/src
	cd $(DEBBUILD)/src && PATH=/usr/sbin:/usr/bin:/sbin:/bin dpkg-buildpackage -b -us -uc \
		--no-sign >../build.log 2>&1 || { tail -40 ../build.log; exit 1; }
	mv $(DEBBUILD)/*.deb $(DIST)/
	lintian --tag-display-limit 0 $(DIST)/osop-checks_*.deb

# ruff (pyflakes, pycodestyle, bugbear), the layers of pyproject.toml (import-linter) and
# mypy on the pure modules ([tool.mypy] of pyproject.toml).
lint: venv
	$(PY) -m ruff check --no-cache .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m mypy --cache-dir=/dev/null

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
