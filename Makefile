# One vocabulary for people, hooks and CI. uv is bootstrapped into .tools/ when missing.
SYSTEM_UV := $(shell command -v uv 2>/dev/null)
UV := $(if $(SYSTEM_UV),$(SYSTEM_UV),$(CURDIR)/.tools/bin/uv)
RUN := $(UV) run --frozen
LINTED := src tests benchmarks deploy notebooks

.PHONY: setup setup-airflow run train test test-fast lint docs format bench ui clean

$(CURDIR)/.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/python -m pip install --quiet uv

setup: $(if $(SYSTEM_UV),,$(CURDIR)/.tools/bin/uv)  ## create .venv from uv.lock
	$(UV) sync --frozen --compile-bytecode

# Airflow lives in its own environment, as on a real scheduler: the DAG calls innflow's CLI.
setup-airflow: $(if $(SYSTEM_UV),,$(CURDIR)/.tools/bin/uv)  ## .venv-airflow for deploy/airflow
	UV_PROJECT_ENVIRONMENT=$(CURDIR)/.venv-airflow $(UV) sync --frozen --only-group airflow --compile-bytecode

run: setup  ## the main job on the bundled data and the embedded SQLite store
	$(RUN) innflow data check
	$(RUN) innflow pipeline

test: setup setup-airflow  ## the whole suite, slow tests included, files spread over both cores
	$(RUN) pytest -n 2 --dist loadfile

test-fast: setup
	$(RUN) pytest -m "not slow"

lint: setup
	$(RUN) ruff check $(LINTED)
	$(RUN) ruff format --check $(LINTED)
	$(RUN) mypy src
	$(RUN) lint-imports

docs: setup  ## the docs site, warnings as errors (site/)
	$(UV) run --frozen --group docs mkdocs build --strict

format: setup
	$(RUN) ruff format $(LINTED)
	$(RUN) ruff check --fix $(LINTED)

bench: setup
	$(RUN) python benchmarks/train_overhead.py
	$(RUN) python benchmarks/compare_scale.py
	$(RUN) python benchmarks/tune_overhead.py
	$(RUN) python benchmarks/model_kinds.py
	$(RUN) python benchmarks/tracking_throughput.py
	$(RUN) python benchmarks/monitoring.py

ui: setup  ## the MLflow UI on the embedded store: http://127.0.0.1:5000
	$(RUN) mlflow ui --backend-store-uri sqlite:///mlflow.db --port 5000

clean:
	rm -rf .venv .venv-airflow .tools mlflow.db mlruns
