# SEND referral coordination: `make run` starts everything, `make test` checks everything.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.lock shared/pyproject.toml devkit/pyproject.toml services/*/pyproject.toml | sha1sum | cut -c1-12)
PACKAGES := -e shared -e devkit -e services/referrals -e services/waitlists -e services/notifications
PYTEST_ARGS ?=

NODE_PACKAGES := axe-core@4.14.1 @asyncapi/parser@3.6.6
NODE_TOOLS := $(VENV)/node/.installed-$(shell echo $(NODE_PACKAGES) | sha1sum | cut -c1-12)

.PHONY: node-tools promtool install run test lint fmt contracts bench profile profile-flow clean lock asyncapi browser help

help:
	@echo "make run          start the broker, an SMTP sink and all three services on this machine (data in ./var);"
	@echo "                  ports: SEND_REFERRALS_PORT, SEND_WAITLISTS_PORT, SEND_NOTIFICATIONS_PORT, SEND_BROKER_PORT,"
	@echo "                  SEND_SMTP_PORT; DEMO_DATA=0 skips the demo history"
	@echo "make test         install, lint, check the architecture contracts, run every test on TEST_WORKERS processes"
	@echo "                  (default 2; PYTEST_ARGS=... to narrow)"
	@echo "make install      create .venv and install the development lock and the packages"
	@echo "make lint         ruff and mypy --strict"
	@echo "make fmt          let ruff fix and format"
	@echo "make contracts    import-linter: layers, pure domains, no service imports another"
	@echo "make bench        benchmarks (QUICK=1 for about two minutes); results in bench/results/"
	@echo "make profile      where the time goes on the hot paths (cProfile); bench/results/profile-<date>/"
	@echo "make profile-flow the running stack under load, sampled by py-spy; var/bench/profile-flow/"
	@echo "make asyncapi     regenerate docs/asyncapi.yaml from the event schemas"
	@echo "make lock         recompile requirements.lock (runtime) and requirements-dev.lock (development), hashed"
	@echo "make browser      Debian's Chromium for the dashboard's browser test"
	@echo "make promtool     Prometheus's promtool, to check the alert rules"
	@echo "make node-tools   axe-core and @asyncapi/parser, pinned, into .venv/node"
	@echo "make clean        remove var/, test artefacts and caches"

$(STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation $(PACKAGES)
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

run: install
	$(PY) -m send_devkit.devstack

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy shared/src devkit/src services/referrals/src services/waitlists/src services/notifications/src

contracts: install
	$(VENV)/bin/lint-imports --no-cache

fmt: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Two workers (one a core here), each file on one worker: its module fixtures (a whole stack) start once.
TEST_WORKERS ?= 2
test: lint contracts browser promtool node-tools
	$(PY) -m pytest -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

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

# Node tools, pinned, into the git-ignored venv (no lock file written): axe-core for the dashboard's
# accessibility scan, @asyncapi/parser to validate docs/asyncapi.yaml. One npm call: npm prunes what it did not install.
node-tools: $(NODE_TOOLS)
$(NODE_TOOLS):
	@command -v npm >/dev/null && npm install --silent --no-save --no-package-lock --no-audit --no-fund \
	  --prefix $(VENV)/node $(NODE_PACKAGES) >/dev/null && rm -f $(VENV)/node/.installed-* && touch $@ || \
	  echo "warning: Node tools not installed; the dashboard's accessibility scan and the AsyncAPI parser test will fail"

asyncapi: install
	$(PY) -m send_devkit.asyncapi > docs/asyncapi.yaml

bench: install
	$(PY) bench/run.py $(if $(QUICK),--quick,)

profile: install
	$(PY) bench/profile_paths.py

# Figure 3's stack sampled by py-spy (a tool, not a dependency of the code: pinned, outside the lock).
profile-flow: install
	@test -x $(VENV)/bin/py-spy || $(PY) -m pip install --quiet --disable-pip-version-check py-spy==0.4.3
	$(PY) bench/profile_flow.py --out var/bench/profile-flow

lock:
	$(PYTHON) -m venv /tmp/send-uv && /tmp/send-uv/bin/pip install --quiet uv==0.13.8
	/tmp/send-uv/bin/uv pip compile --quiet --python-version 3.11 --generate-hashes requirements.in -o requirements.lock
	/tmp/send-uv/bin/uv pip compile --quiet --python-version 3.11 --generate-hashes requirements-dev.in -o requirements-dev.lock

clean:
	rm -rf var test-artefacts .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -not -path "./$(VENV)/*" -exec rm -rf {} +
