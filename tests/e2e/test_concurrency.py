"""Eight `innflow train` processes at once against the central server: nothing lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.entities import LoggedModelStatus
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow

INNFLOW = str(Path(sys.executable).parent / "innflow")
CLIENTS = 8


def _artifact_files(client: MlflowClient, run_id: str, path: str = "") -> set[str]:
    files: set[str] = set()
    for item in client.list_artifacts(run_id, path):
        files |= _artifact_files(client, run_id, item.path) if item.is_dir else {item.path}
    return files


def test_eight_concurrent_trainings_all_finish_complete(team_workdir, s3) -> None:
    overrides = team_workdir.overrides("lightgbm", "tracking.experiment=e2e-concurrent")
    argv = [INNFLOW, "train", "--json", "--threads", "1",
            *[a for o in overrides for a in ("--set", o)]]  # fmt: skip
    started = time.perf_counter()
    processes = [
        # Eight fits and the server share two cores here: a request may wait longer than
        # innflow's default 30 s timeout (which is for failing fast on a dead server).
        subprocess.Popen(argv, env={**os.environ, "MLFLOW_HTTP_REQUEST_TIMEOUT": "180"},
                         cwd=team_workdir.path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(CLIENTS)
    ]  # fmt: skip
    results = [(p.wait(600), *p.communicate()) for p in processes]
    seconds = time.perf_counter() - started
    failed = "\n---\n".join(err[-2000:] for code, _, err in results if code != 0)
    assert [code for code, _, _ in results] == [0] * CLIENTS, failed
    reported = [json.loads(stdout) for _, stdout, _ in results]
    print(f"\n{CLIENTS} concurrent trainings against the server: {seconds:.1f}s")

    client = MlflowClient(team_workdir.store)
    experiment = client.get_experiment_by_name("e2e-concurrent")
    runs = {r.info.run_id: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {r["run_id"] for r in reported}
    assert {r.info.status for r in runs.values()} == {"FINISHED"}
    # Same config, same data: every run must hold the same params, metrics and artifacts,
    # and the metrics each process reported are the ones the server stored.
    first = next(iter(runs.values()))
    expected_files = _artifact_files(client, first.info.run_id)
    assert {"config/resolved.yaml", "evaluation.html"} <= expected_files
    for outcome in reported:
        run = runs[outcome["run_id"]]
        assert run.data.params == first.data.params
        assert set(run.data.metrics) == set(first.data.metrics)
        assert {k: run.data.metrics[k] for k in outcome["metrics"]} == outcome["metrics"]
        assert _artifact_files(client, run.info.run_id) == expected_files
        model = client.get_logged_model(outcome["model_uri"].removeprefix("models:/"))
        assert model.status == LoggedModelStatus.READY
        keys = s3.keys(f"shared/{experiment.experiment_id}/{run.info.run_id}/artifacts/")
        assert len(keys) == len(expected_files)
