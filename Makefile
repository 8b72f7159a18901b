# demand-control: `make demo` and `make test` work on a machine with only Python >= 3.11 and make.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
# Use uv from PATH when there is one, else bootstrap it into .tools/ (a local virtual environment).
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
VENV := $(CURDIR)/.venv
export UV_PYTHON_DOWNLOADS := never
export DEMAND_CONTROL_HOME ?= $(CURDIR)/.demand_control
export DAGSTER_HOME ?= $(DEMAND_CONTROL_HOME)/dagster

.PHONY: install demo test dev bench check-defs simulate clean

install: $(VENV)/.synced

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# Compile bytecode at install: where PYTHONDONTWRITEBYTECODE is set (as on this machine) Python never caches
# it, and every process - each Dagster run worker, each test subprocess - would recompile Dagster and pandas
# from source (seconds per start).
$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	@touch $@

$(DAGSTER_HOME)/dagster.yaml: deploy/dagster.local.yaml
	@mkdir -p $(DAGSTER_HOME)
	cp deploy/dagster.local.yaml $@

demo: install $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/demand-control demo

test: install
	$(VENV)/bin/python -m pytest

check-defs: install
	VIRTUAL_ENV=$(VENV) PATH=$(VENV)/bin:$$PATH $(VENV)/bin/dg check defs

# The UI reads from the local Tryton the demo created (started here in the background), unless
# DEMAND_CONTROL_SOURCE says otherwise. `demand-control dev` runs `dagster dev` and stops the UI, daemon, code
# server and run workers within 8 s of Ctrl-C or SIGTERM.
dev: install $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/demand-control erp serve --detach
	$(VENV)/bin/demand-control warehouse migrate
	DEMAND_CONTROL_SOURCE=$${DEMAND_CONTROL_SOURCE:-tryton} $(VENV)/bin/demand-control dev -w workspace.yaml --host 127.0.0.1 --port 3000

bench: install
	$(VENV)/bin/python benchmarks/landscape.py
	$(VENV)/bin/python benchmarks/load_history.py
	$(VENV)/bin/python benchmarks/forecast.py
	$(VENV)/bin/python benchmarks/decisions.py
	$(VENV)/bin/python benchmarks/decision_quality.py
	$(VENV)/bin/python benchmarks/root_cause.py
	$(VENV)/bin/python benchmarks/gateway.py
	$(VENV)/bin/python benchmarks/fuzz_gateway.py
	$(VENV)/bin/python benchmarks/event_latency.py
	$(VENV)/bin/python benchmarks/write_back.py
	$(VENV)/bin/python benchmarks/twin.py
	$(VENV)/bin/python benchmarks/advisor.py
	$(VENV)/bin/python benchmarks/regions.py --skus 100000 --locations 10 --regions 10

# The digital twin on the default scenario: scorecard, plots and draws in $(DEMAND_CONTROL_HOME)/twin/default.
simulate: install
	$(VENV)/bin/demand-control simulate --scenario demand_control/twin/scenarios/default.yaml --out $(DEMAND_CONTROL_HOME)/twin/default

clean:
	rm -rf $(DEMAND_CONTROL_HOME) .pytest_cache
