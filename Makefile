# tickfan — every target sets up what it needs. Quick start: `make demo`, then `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
ARGS   ?=

.PHONY: demo test lint typecheck check proto services bench load fuzz clean help

help:
	@echo "make demo       set up .venv and run the live demo (simulator -> node -> WebSocket); ARGS='--duration 30'"
	@echo "make test       set up .venv, start local services if needed, run lint, types and the test suite"
	@echo "make proto      regenerate tickfan_proto/ from proto/*.proto"
	@echo "make bench      run the benchmarks (see benchmarks/RESULTS.md)"
	@echo "make fuzz       every parser under atheris for FUZZ_SECONDS each (default 30), coverage-guided"
	@echo "make load       Locust market watchers against a running demo (LOAD_USERS=100 LOAD_SECONDS=30 LOAD_HOST=ws://127.0.0.1:8765)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tickfan demo $(ARGS)

services:
	@scripts/ensure-services.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

check: lint typecheck

test: $(STAMP) services lint typecheck
	$(PY) -m pytest -q $(ARGS)

proto: $(STAMP)
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
