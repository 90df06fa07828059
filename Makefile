# osop-checks: `make demo` runs every check against this machine; `make test` runs the suite.
# Both start from nothing: they install what they need (Debian packages only when root).
SHELL := /bin/bash
PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: deps venv test demo bench icinga2-validate lint clean

deps:
	@bash .ci/install-system-packages

# --system-site-packages: the venv uses Debian's python3-* libraries where they are installed,
# so the suite proves the checks work with what Debian 12 ships; pip adds only what is missing.
$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv --system-site-packages $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

test: deps venv
	$(PY) -m pytest -q $(PYTEST_ARGS)

demo: deps venv
	@$(PY) -m tests.demo

bench: deps venv
	@$(PY) -m bench.run

icinga2-validate: deps venv
	@$(PY) -m tests.peers.icinga2 validate

lint: venv
	$(PY) -m pytest -q tests/test_lint.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
