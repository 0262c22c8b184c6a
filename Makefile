PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-floor test-latest e2e e2e-cluster bench faults lint clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@# setuptools' note "Editable installation ... careful with folders in your working directory
	@# with the same name as your package" concerns any non-src layout; here those folders are
	@# the package itself, so there is nothing to act on (other warnings still show)
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install -q -e '.[dev]'
	@# an editable install leaves our modules uncompiled, and with PYTHONDONTWRITEBYTECODE set
	@# every process would compile them again (~0.1-0.2 s of each cold start)
	$(BIN)/python -m compileall -q steer_llm_sdk steer_tools planner flows tasks deployments
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m steer_llm_sdk.demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

# The suite (e2e deselected) at both ends of pyproject.toml's ranges, each in its own venv:
# the floors (ci/constraints-floor.txt, generated from pyproject.toml) and the newest versions
# that resolve. Both run in .ci/run.
ci/constraints-floor.txt: pyproject.toml scripts/floor_constraints.py
	$(PYTHON) scripts/floor_constraints.py > $@

test-floor: ci/constraints-floor.txt
	rm -rf .venv-floor && $(PYTHON) -m venv .venv-floor
	.venv-floor/bin/python -m pip install -q --upgrade pip
	.venv-floor/bin/python -m pip install -q -c ci/constraints-floor.txt -e '.[dev]'
	.venv-floor/bin/python -m pip list --format=freeze | grep -iE '^(prefect|fastapi|pydantic|openai|pybreaker|numpy|scipy|httpx|uvicorn|typer)=='
	.venv-floor/bin/ruff check .
	.venv-floor/bin/python -m pytest -q -p no:cacheprovider

test-latest:
	rm -rf .venv-latest && $(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip install -q --upgrade pip
	.venv-latest/bin/python -m pip install -q --upgrade --upgrade-strategy eager -e '.[dev]'
	.venv-latest/bin/python -m pip list --format=freeze | grep -iE '^(prefect|fastapi|pydantic|openai|pybreaker|numpy|scipy|httpx|uvicorn|typer)=='
	.venv-latest/bin/python -m pytest -q -p no:cacheprovider

e2e: $(STAMP)
	bash scripts/install-e2e.sh
	$(BIN)/python -m pytest -q -m e2e tests/e2e

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

faults: $(STAMP)
	$(BIN)/python scripts/fault_matrix.py --write docs/reliability.md

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .venv-floor .venv-latest .pytest_cache build *.egg-info

# A fleet on this machine: PostgreSQL-backed Prefect server, two process workers, Redis
# (local services on 127.0.0.1:5432 / :6379; the test creates and drops its own database).
e2e-cluster: $(STAMP)
	$(BIN)/python -m pytest -q -m cluster tests/cluster -p no:cacheprovider -s
