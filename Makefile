# One vocabulary for people, hooks and CI. uv is bootstrapped into .tools/ when missing.
SYSTEM_UV := $(shell command -v uv 2>/dev/null)
UV := $(if $(SYSTEM_UV),$(SYSTEM_UV),$(CURDIR)/.tools/bin/uv)
RUN := $(UV) run --frozen
DEV := $(UV) run --frozen --group dev
LINTED := src tests benchmarks deploy notebooks

.PHONY: setup setup-dev setup-airflow run train test test-fast lint docs format bench ui clean

$(CURDIR)/.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/python -m pip install --quiet uv

# What the main job needs, from uv.lock; --inexact keeps the dev tools if `setup-dev` added them.
setup: $(if $(SYSTEM_UV),,$(CURDIR)/.tools/bin/uv)  ## create .venv from uv.lock
	$(UV) sync --frozen --inexact --compile-bytecode

setup-dev: $(if $(SYSTEM_UV),,$(CURDIR)/.tools/bin/uv)  ## .venv with the test and lint tools
	$(UV) sync --frozen --group dev --compile-bytecode

# Airflow lives in its own environment, as on a real scheduler: the DAG calls innflow's CLI.
setup-airflow: $(if $(SYSTEM_UV),,$(CURDIR)/.tools/bin/uv)  ## .venv-airflow for deploy/airflow
	UV_PROJECT_ENVIRONMENT=$(CURDIR)/.venv-airflow $(UV) sync --frozen --only-group airflow --compile-bytecode

run: setup  ## the main job on the bundled data and the embedded SQLite store
	$(RUN) innflow data check
	$(RUN) innflow pipeline

test: setup-dev setup-airflow  ## the whole suite, slow tests included, files spread over both cores
	$(DEV) pytest -n 2 --dist loadfile --durations=25

test-fast: setup-dev
	$(DEV) pytest -m "not slow"

lint: setup-dev
	$(DEV) ruff check $(LINTED)
	$(DEV) ruff format --check $(LINTED)
	$(DEV) mypy src
	$(DEV) lint-imports

docs: setup  ## the docs site, warnings as errors (site/)
	$(UV) run --frozen --group docs mkdocs build --strict

format: setup-dev
	$(DEV) ruff format $(LINTED)
	$(DEV) ruff check --fix $(LINTED)

bench: setup-dev
	$(DEV) python benchmarks/train_overhead.py
	$(DEV) python benchmarks/compare_scale.py
	$(DEV) python benchmarks/tune_overhead.py
	$(DEV) python benchmarks/model_kinds.py
	$(DEV) python benchmarks/tracking_throughput.py
	$(DEV) python benchmarks/monitoring.py

ui: setup  ## the MLflow UI on the embedded store: http://127.0.0.1:5000
	$(RUN) mlflow ui --backend-store-uri sqlite:///mlflow.db --port 5000

clean:
	rm -rf .venv .venv-airflow .tools mlflow.db mlruns
