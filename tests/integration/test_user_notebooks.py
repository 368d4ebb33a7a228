"""Notebooks written the way data scientists write them (tests/notebooks/, plain MLflow, no
innflow): each `notebook run` is ONE run tree with every metric, `reproduce` says what it
compared, an unseeded notebook does not reproduce, and a changed data file is named.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

USER_NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _all_runs() -> list:
    import mlflow

    return mlflow.search_runs(search_all_experiments=True, output_format="list")


def _notebook_run(cli, name: str, *parameters: str) -> dict:
    args = [a for p in parameters for a in ("-p", p)]
    result = cli("notebook", "run", str(USER_NOTEBOOKS / f"{name}.py"), "--json", *args)
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def _one_tree(root_id: str) -> dict[str, object]:
    """Every run in the store is the notebook run or under it; children by name."""
    runs = {r.info.run_id: r for r in _all_runs()}
    for run in runs.values():
        top = run
        while "mlflow.parentRunId" in top.data.tags:
            top = runs[top.data.tags["mlflow.parentRunId"]]
        assert top.info.run_id == root_id, f"stray run {run.info.run_name}"
        assert run.info.status == "FINISHED" and run.info.experiment_id == top.info.experiment_id
    return {r.info.run_name: r for r in runs.values() if r.info.run_id != root_id}


def _reproduce(cli, run_id: str) -> tuple[int, dict, str]:
    result = cli("reproduce", run_id, "--json")
    assert "Traceback" not in result.stderr
    return result.code, json.loads(result.stdout), result.stderr


@pytest.mark.slow
def test_mlflow_quickstart_is_one_tree_and_reproduces(workdir, cli) -> None:
    import mlflow

    outcome = _notebook_run(cli, "wine_quickstart")
    children = _one_tree(outcome["run_id"])
    assert set(children) == {"wine-logreg"}  # the user's run name survives, as a child
    child = children["wine-logreg"]
    assert set(child.data.metrics) == {"accuracy", "f1_macro"}
    assert child.data.params["C"] == "0.5"
    root = mlflow.get_run(outcome["run_id"])
    assert root.data.tags["innflow.notebook.requested_experiment"] == "MLflow Quickstart"
    assert mlflow.get_experiment_by_name("MLflow Quickstart") is None  # a request, recorded
    assert "accuracy on the test set" in outcome["output"]  # the notebook's own last print

    code, report, stderr = _reproduce(cli, outcome["run_id"])
    assert code == 0, stderr
    assert report["compared"] == "2 metrics in 1 run, predictions of 1 model"
    assert "bit-identical: 2 metrics in 1 run, predictions of 1 model" in stderr
    part = cli("reproduce", child.info.run_id)
    assert part.code == 2 and f"part of notebook run {outcome['run_id']}" in part.stderr


@pytest.mark.slow
def test_autolog_and_a_manual_metric_land_in_the_notebook_run(workdir, cli) -> None:
    import mlflow

    outcome = _notebook_run(cli, "autolog_onehot", f"data_path={workdir.data}")
    assert _one_tree(outcome["run_id"]) == {}  # autolog logged into the notebook run itself
    metrics = mlflow.get_run(outcome["run_id"]).data.metrics
    assert "test_roc_auc" in metrics and "training_roc_auc" in metrics
    (data,) = outcome["data_files"]
    assert data["path"] == "data/bookings.parquet" and data["size"] == workdir.data.stat().st_size
    tags = mlflow.get_run(outcome["run_id"]).data.tags
    assert tags["innflow.data_sha256"] == data["sha256"]
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(outcome["run_id"])}
    assert {"data", "environment", "notebook"} <= artifacts

    code, report, stderr = _reproduce(cli, outcome["run_id"])
    assert code == 0, stderr
    assert report["compared"].startswith(f"{len(metrics)} metrics in 1 run, 1 data file")
    assert "predictions" not in report["compared"]  # autolog logged no input example
    assert any("no input example" in note for note in report["notes"])

    frame = pd.read_parquet(workdir.data)
    frame.loc[frame.index[::5], "lead_time"] += 30
    frame.to_parquet(workdir.data, index=False)
    code, report, stderr = _reproduce(cli, outcome["run_id"])
    assert code == 1
    assert "data file data/bookings.parquet changed: sha256" in " ".join(stderr.split())


@pytest.mark.slow
def test_raw_column_pipeline_is_replayed_on_bundled_bookings(workdir, cli) -> None:
    outcome = _notebook_run(cli, "pipeline_time_split", f"bookings_file={workdir.data}")
    child = _one_tree(outcome["run_id"])["hgb-time-split"]
    assert {"test_roc_auc", "test_pr_auc"} <= set(child.data.metrics)
    code, report, stderr = _reproduce(cli, outcome["run_id"])
    assert code == 0, stderr
    assert report["compared"] == "2 metrics in 1 run, 1 data file, predictions of 1 model"
    replayed = [c for c in report["checks"] if "bundled bookings" in c["name"]]
    assert len(replayed) == 1 and replayed[0]["same"]


@pytest.mark.slow
def test_lightgbm_native_api_with_autolog(workdir, cli) -> None:
    outcome = _notebook_run(cli, "lightgbm_native", f"path={workdir.data}", "num_boost_round=30")
    child = _one_tree(outcome["run_id"])["lgb-native"]
    assert {"test-auc", "test_auc_check"} <= set(child.data.metrics)
    code, report, stderr = _reproduce(cli, outcome["run_id"])
    assert code == 0, stderr
    assert "1 data file, predictions of 1 model" in report["compared"]


@pytest.mark.slow
def test_unseeded_notebook_is_not_reproduced(workdir, cli) -> None:
    outcome = _notebook_run(cli, "autolog_unseeded", f"data_path={workdir.data}")
    code, report, stderr = _reproduce(cli, outcome["run_id"])
    assert code == 1 and not report["identical"]
    assert "not reproduced" in stderr and "metric test_roc_auc" in stderr
