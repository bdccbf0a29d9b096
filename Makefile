# One command per task, the same for people and CI.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup dashboard run test test-fast lint bench wasm wasm-check clean

$(STAMP): pyproject.toml clients/python/pyproject.toml js_shims/package-lock.json
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q -e clients/python   # the Python client, tested in tests/client
	cd js_shims && npm ci --silent --no-audit --no-fund
	@if [ -f tests/compat/package-lock.json ]; then cd tests/compat && npm ci --silent --no-audit --no-fund; fi
	touch $(STAMP)

# The dashboard's static assets (dashboard/dist, served at /dashboard/), built from its sources
# with the esbuild and elkjs pinned by its lockfile; rebuilt when a source changes.
DASHBOARD_SOURCES := $(shell find dashboard/src -type f 2>/dev/null) dashboard/build.mjs
dashboard/node_modules/.installed: dashboard/package.json dashboard/package-lock.json
	cd dashboard && npm ci --silent --no-audit --no-fund
	touch $@

dashboard/dist/index.html: dashboard/node_modules/.installed $(DASHBOARD_SOURCES)
	cd dashboard && npm run --silent build

dashboard: dashboard/dist/index.html

setup: $(STAMP) dashboard

run: setup          ## serve on http://127.0.0.1:8000 with the embedded SQLite file ./backstate.db
	$(VENV)/bin/backstate init
	$(VENV)/bin/backstate serve

test: setup         ## the whole suite (PostgreSQL too when BACKSTATE_TEST_POSTGRES_URL is set)
	$(PY) -m pytest

test-fast: setup    ## skip the slow end-to-end and compatibility tests
	$(PY) -m pytest -m "not slow and not compat"

lint: setup
	$(VENV)/bin/ruff check runtime api tests bench clients/python
	$(VENV)/bin/mypy
	cd clients/python && $(abspath $(VENV))/bin/mypy   # the client alone, with its own config

bench: setup
	$(PY) bench/runtime.py
	$(PY) bench/http_events.py
	$(PY) bench/timers.py
	$(PY) bench/realtime.py

wasm:               ## rebuild runtime/sandbox/wasm/sandbox.wasm (needs clang-16, see build.sh)
	PATH=$(abspath $(VENV))/bin:$$PATH runtime/sandbox/wasm/build.sh

wasm-check:         ## fail unless build.sh reproduces the committed sandbox.wasm byte for byte
	PATH=$(abspath $(VENV))/bin:$$PATH runtime/sandbox/wasm/build.sh /tmp/backstate-sandbox-check.wasm
	cmp runtime/sandbox/wasm/sandbox.wasm /tmp/backstate-sandbox-check.wasm

clean:
	rm -rf $(VENV) js_shims/node_modules tests/compat/node_modules dashboard/node_modules dashboard/dist
