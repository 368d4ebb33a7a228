"""The retraining DAG, loaded by Airflow itself (its own environment, as on a scheduler)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_PYTHON = ROOT / ".venv-airflow" / "bin" / "python"
DAGS = ROOT / "deploy" / "airflow"

pytestmark = pytest.mark.skipif(
    not AIRFLOW_PYTHON.exists(), reason="Airflow environment missing: run `make setup-airflow`"
)

PROBE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1], include_examples=False)
dag = bag.dags.get("innflow_retrain")
print(json.dumps({
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "dags": sorted(bag.dags),
    "schedule": str(dag.schedule) if dag else None,
    "max_active_runs": dag.max_active_runs if dag else None,
    "catchup": dag.catchup if dag else None,
    "tasks": {t.task_id: {"down": sorted(t.downstream_task_ids),
                          "rule": str(t.trigger_rule.value)} for t in dag.tasks} if dag else {},
}))
"""


def _load(tmp_path: Path) -> dict:
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow"), "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [str(AIRFLOW_PYTHON), "-c", PROBE, str(DAGS)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_dag_loads_with_the_retraining_graph(tmp_path: Path) -> None:
    loaded = _load(tmp_path)
    assert loaded["errors"] == {}
    assert loaded["dags"] == ["innflow_retrain"]
    assert loaded["schedule"] == "@weekly"
    assert loaded["max_active_runs"] == 1 and loaded["catchup"] is False
    graph = {task: spec["down"] for task, spec in loaded["tasks"].items()}
    assert graph == {
        "monitor": ["healthy", "train"],
        "healthy": [],
        "train": ["register"],
        "register": ["gate", "notify", "stage"],
        "gate": ["notify", "stage"],
        "stage": ["notify"],
        "notify": [],
    }
    # notify must run whether the gate staged the version or refused it
    assert loaded["tasks"]["notify"]["rule"] == "none_failed_min_one_success"


def test_dag_never_promotes_to_production() -> None:
    source = (DAGS / "innflow_retrain.py").read_text()
    assert '"--to", "staging"' in source
    assert '"production"' not in source
