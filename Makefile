# One task runner for developers, the README and CI. `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.DEFAULT_GOAL := help
.PHONY: help install lint format typecheck test-unit test-integration test stack-up stack-down migrate demo \
	simulator bench-client bench-processors bench-sink bench-e2e bench-scale-data bench-queries bench-archive bench-reprocess bench-loss-window \
	bench-peers

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-17s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

install: $(VENV)/.installed  ## create .venv and install the project with its dev tools

lint: install  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install  ## apply ruff formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install  ## mypy (strict)
	$(BIN)/mypy

stack-up: install  ## start the local stack (builds TimescaleDB once; idempotent)
	$(BIN)/racelab stack up

stack-down: install  ## stop the local stack
	$(BIN)/racelab stack down

migrate: stack-up  ## apply database migrations to the local stack
	$(BIN)/racelab migrate

test-unit: install  ## fast unit tests, no services
	$(BIN)/pytest tests/unit -q

test-integration: stack-up  ## integration tests against the real broker and database
	$(BIN)/pytest tests/integration -q

test: lint typecheck stack-up  ## everything CI runs: lint, types, unit, integration
	$(BIN)/pytest -q

demo: install  ## the whole pipeline on a simulated race day (local stack, simulator, every worker, control API)
	$(BIN)/racelab demo

simulator: install  ## run the KRA/KSPO simulator on 127.0.0.1:8089
	$(BIN)/racelab simulator

bench-client: install  ## requests/s of one API client against the simulator (limiter off)
	$(BIN)/python -m benchmarks.client_requests

bench-processors: stack-up  ## normalized odds rows/s through one processor worker
	$(BIN)/python -m benchmarks.processor_throughput

bench-sink: stack-up  ## odds rows/s of the sink writer into the real hypertable
	$(BIN)/python -m benchmarks.sink_throughput

bench-e2e: stack-up  ## raw odds -> processors -> sink -> TimescaleDB: 50k rows/s for 120 s, then 25k (latency)
	$(BIN)/python -m benchmarks.end_to_end --rate 50000 --seconds 120
	$(BIN)/python -m benchmarks.end_to_end --rate 25000 --seconds 120

bench-scale-data: stack-up  ## fill one year of history (~18M odds rows) into schema "scale" for the query benchmark
	$(BIN)/python -m benchmarks.scale_data --replace

bench-queries: stack-up  ## query latency (p50/p95/p99) on the year of history while ingestion runs
	$(BIN)/python -m benchmarks.query_latency

bench-archive: stack-up  ## raw archive bytes per million odds rows and its write rate
	$(BIN)/python -m benchmarks.archive_size

bench-reprocess: stack-up  ## racelab reprocess over a simulated year through the archive (~18M odds rows)
	$(BIN)/python -m benchmarks.reprocess_rate

bench-loss-window: stack-up  ## what a restart of the memory-only local broker loses from the archive
	$(BIN)/python -m benchmarks.archive_loss_window

bench-peers: stack-up  ## racelab vs Quix Streams and bare aiokafka+asyncpg peers draining the same odds backlog
	$(BIN)/python -m benchmarks.versus_peers
