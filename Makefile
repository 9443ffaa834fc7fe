# Two entry points, each installing what it needs on a fresh machine:
#   make build   - regenerate every committed artifact (dashboards, configs, rules)
#   make test    - the whole test suite against real servers (what CI runs)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: build check run test lint system-deps bench scenarios mutation

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

node_modules/.installed: package.json package-lock.json
	bash scripts/install_system_deps.sh node
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

system-deps:
	bash scripts/install_system_deps.sh

build: $(BIN)/.installed node_modules/.installed
	$(BIN)/python scripts/build_dashboards.py

check: $(BIN)/.installed node_modules/.installed
	$(BIN)/python scripts/build_dashboards.py --check

PORT ?= 8000

run: $(BIN)/.installed
	$(BIN)/python -m app.serve --host 127.0.0.1 --port $(PORT)

# Replays the named incident histories into a real Prometheus and rewrites the truth table (docs/scenarios.md).
scenarios: system-deps $(BIN)/.installed
	$(BIN)/python scripts/check_panels.py --scenarios --write docs/scenarios.md

# Mutation testing of the critical modules (tools/mutation): score per module, survivors, the 90 % floor.
# MUTATION_ARGS='--module "rate limiter"' or '--changed-since origin/main' narrows it.
MUTATION_ARGS ?=
mutation: $(BIN)/.installed node_modules/.installed
	$(BIN)/python -m tools.mutation $(MUTATION_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .

bench: system-deps $(BIN)/.installed
	command -v wrk >/dev/null || { [ "$$(id -u)" -eq 0 ] && apt-get install -y -qq --no-install-recommends wrk; }
	command -v valgrind >/dev/null || { [ "$$(id -u)" -ne 0 ] || apt-get install -y -qq --no-install-recommends valgrind; }
	$(BIN)/pip install -q -e '.[test,bench]'
	$(BIN)/python benchmarks/run.py

test: system-deps $(BIN)/.installed node_modules/.installed lint check
	$(BIN)/pytest -q -rs
