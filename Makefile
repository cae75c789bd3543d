# SEND referral coordination: `make run` starts everything, `make test` checks everything.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.lock shared/pyproject.toml services/*/pyproject.toml | sha1sum | cut -c1-12)
PACKAGES := -e shared -e services/referrals -e services/waitlists -e services/notifications
PYTEST_ARGS ?=

AXE := $(VENV)/node/node_modules/axe-core/axe.min.js

.PHONY: axe promtool install run test lint fmt contracts bench clean lock asyncapi browser help

help:
	@echo "make run    start broker + all three services on this machine (data in ./var)"
	@echo "make test   install, lint, check architecture contracts, run every test"
	@echo "make lint | fmt | bench | clean | lock | asyncapi"

$(STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation $(PACKAGES)
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

run: install
	$(PY) -m send_shared.devstack

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy shared/src services/referrals/src services/waitlists/src services/notifications/src

contracts: install
	$(VENV)/bin/lint-imports --no-cache

fmt: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint contracts browser promtool axe
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

# Debian's Chromium for the dashboard's browser test (Playwright cannot download its own here).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; } || \
	  echo "warning: chromium not installed; the dashboard browser test will be skipped"

# Prometheus's promtool checks the alert rules; taken out of Debian's package, nothing installed system-wide.
promtool: install
	@test -x $(VENV)/bin/promtool || { d=$$(mktemp -d) && (cd $$d && apt-get download -qq prometheus >/dev/null 2>&1 && \
	  dpkg-deb -x prometheus_*.deb x) && cp $$d/x/usr/bin/promtool $(VENV)/bin/promtool; rm -rf $$d; \
	  test -x $(VENV)/bin/promtool; } || echo "warning: promtool not available; its checks will be skipped"

# axe-core for the dashboard's accessibility scan, pinned, into the git-ignored venv (no lock file written).
axe: $(AXE)
$(AXE):
	@command -v npm >/dev/null && npm install --silent --no-save --no-package-lock --no-audit --no-fund \
	  --prefix $(VENV)/node axe-core@4.14.1 >/dev/null || echo "warning: axe-core not installed; the dashboard browser test will fail its accessibility scan"

asyncapi: install
	$(PY) -m send_shared.events.asyncapi > docs/asyncapi.yaml

bench: install
	$(PY) bench/run.py $(if $(QUICK),--quick,)

lock:
	$(PYTHON) -m venv /tmp/send-uv && /tmp/send-uv/bin/pip install --quiet uv==0.13.8
	/tmp/send-uv/bin/uv pip compile --quiet --python-version 3.11 --generate-hashes requirements.in -o requirements.lock

clean:
	rm -rf var test-artefacts .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -not -path "./$(VENV)/*" -exec rm -rf {} +
