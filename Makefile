# tickfan — every target sets up what it needs. Quick start: `make demo`, then `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
ARGS   ?=

.PHONY: demo test sdk-test sdk-generate web browser prometheus lint typecheck check proto services bench load fuzz clean help

help:
	@echo "make demo       set up .venv and run the live demo (simulator -> node -> WebSocket); ARGS='--duration 30'"
	@echo "make test       set up .venv, start local services if needed, run lint, types and the test suite"
	@echo "make web        rebuild the web app (web/ -> web/dist, committed: make demo needs no npm)"
	@echo "make sdk-test   the TypeScript SDK's tests (clients/js: unit tests, then against a demo it starts)"
	@echo "make proto      regenerate tickfan_proto/ and the SDK's clients/js/src/gen/ from proto/*.proto"
	@echo "make bench      run the benchmarks (see benchmarks/RESULTS.md)"
	@echo "make fuzz       every parser under atheris for FUZZ_SECONDS each (default 30), coverage-guided"
	@echo "make load       Locust market watchers against a running demo (LOAD_USERS=100 LOAD_SECONDS=30 LOAD_HOST=ws://127.0.0.1:8765)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# the same service check as `make test`: PostgreSQL and Redis started where the machine has them; where it has
# not, the demo runs the market data alone and says in one line why trading is off and how to turn it on
demo: $(STAMP) services
	$(VENV)/bin/tickfan demo $(ARGS)

services:
	@scripts/ensure-services.sh

# Debian's chromium for the browser tests (never a Playwright download)
browser:
	@scripts/ensure-browser.sh

# Debian's prometheus and promtool for the metrics tests (never a download)
prometheus:
	@scripts/ensure-prometheus.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

check: lint typecheck

test: $(STAMP) services browser prometheus lint typecheck
	$(PY) -m pytest -q $(ARGS)
	$(MAKE) --no-print-directory sdk-test

# The TypeScript SDK (clients/js): `npm ci` only when the lockfile changed (the stamp), so a second run is quick.
JS     := clients/js
JSDEPS := $(JS)/node_modules/.installed-stamp
$(JSDEPS): $(JS)/package.json $(JS)/package-lock.json
	@command -v npm >/dev/null || { echo "the SDK's tests need Node.js 20+ and npm (apt-get install nodejs npm)"; exit 1; }
	cd $(JS) && npm ci --no-audit --no-fund
	@touch $@

sdk-test: $(STAMP) services $(JSDEPS)
	cd $(JS) && TICKFAN_PYTHON=$(abspath $(PY)) npm test

# The web app (web/: TypeScript, vite, lightweight-charts; the SDK from clients/js/src): web/dist is committed, so
# `make demo` from a fresh clone serves it without npm. `npm ci` in web/ only when its lockfile changed.
WEBDEPS := web/node_modules/.installed-stamp
$(WEBDEPS): web/package.json web/package-lock.json
	@command -v npm >/dev/null || { echo "the web app's build needs Node.js 20+ and npm (apt-get install nodejs npm)"; exit 1; }
	cd web && npm ci --no-audit --no-fund
	@touch $@

web: $(WEBDEPS)
	cd web && npm run build

sdk-generate: $(JSDEPS)
	cd $(JS) && npm run generate

proto: $(STAMP) sdk-generate
	$(PY) -m grpc_tools.protoc -I proto --python_out=tickfan_proto --pyi_out=tickfan_proto proto/stream.proto

bench: $(STAMP)
	$(PY) benchmarks/bench_ingest.py
	$(PY) benchmarks/bench_simulator_udp.py

FUZZ_SECONDS ?= 30
fuzz: $(STAMP)
	$(PY) -m pip install --quiet -e '.[fuzz]'
	$(PY) -m tests.fuzz.run --seconds $(FUZZ_SECONDS)

LOAD_USERS   ?= 100
LOAD_SECONDS ?= 30
LOAD_HOST    ?= ws://127.0.0.1:8765
load: $(STAMP)
	$(PY) -m pip install --quiet -e '.[load]'
	$(VENV)/bin/locust -f benchmarks/locustfile.py --headless -u $(LOAD_USERS) -r 50 -t $(LOAD_SECONDS)s --host $(LOAD_HOST) --only-summary

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info
