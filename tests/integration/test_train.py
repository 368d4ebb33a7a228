from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from innflow import config
from innflow.reproducibility import provenance
from innflow.steps.training import prepare
from innflow.workflows.train import train


def _set(overrides: list[str]) -> list[str]:
    return [arg for o in overrides for arg in ("--set", o)]


def test_train_logs_a_complete_run(workdir, cli) -> None:
    result = cli("train", "--json", "--threads", "2", *_set(workdir.overrides()))
    assert result.code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert {"run_id", "experiment_id", "metrics"} <= set(payload)
    client = MlflowClient(workdir.store)
    run = client.get_run(payload["run_id"])
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "hotel-cancellation"

    for part in ("val", "test"):
        for name in (
            "roc_auc",
            "pr_auc",
            "log_loss",
            "brier",
            "accuracy",
            "f1",
            "precision",
            "recall",
        ):
            assert f"{part}_{name}" in run.data.metrics
    assert 0 < run.data.metrics["threshold"] < 1
    assert run.data.metrics["test_roc_auc"] > 0.75
    assert run.data.params["model.kind"] == "lightgbm"
    assert run.data.params["split.test_start"] == "2017-01-01"
    assert run.data.params["model.params.n_estimators"] == "40"

    tags = run.data.tags
    assert (
        tags["innflow.data_sha256"]
        == provenance.hashlib.sha256(workdir.data.read_bytes()).hexdigest()
    )
    assert len(tags["innflow.git_commit"]) in (40, len("unknown"))
    assert tags["innflow.git_dirty"] in ("true", "false")
    assert tags["innflow.config_sha256"] == config.load(None, workdir.overrides()).digest()
    assert len(tags["innflow.uv_lock_sha256"]) == 64
    assert tags["innflow.split"] == "time"
    assert tags["innflow.known_later"] == "false"
    assert tags["innflow.lib.lightgbm"] != "absent"
    for key in ("innflow.python", "innflow.platform", "innflow.blas", "innflow.env_sha256"):
        assert tags[key]

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config", "plots", "environment"} <= artifacts
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert plots == {
        f"plots/{n}.png"
        for n in (
            "roc",
            "precision_recall",
            "calibration",
            "confusion_matrix",
            "feature_importance",
            "cost_curve",
            "slices",
        )
    }
    assert "evaluation.html" in artifacts
    tables = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert tables == {
        "evaluation/slices.json",
        "evaluation/leakage_audit.json",
        "evaluation/cost_curve.json",
    }
    page = client.download_artifacts(run.info.run_id, "evaluation.html", str(workdir.path))
    text = Path(page).read_text()
    assert "Business cost" in text and "Leakage audit" in text and "data:image/png;base64" in text
    metrics = run.data.metrics
    assert metrics["test_cost"] <= metrics["test_cost_baseline"]
    assert 0 <= metrics["test_ece"] < 0.2
    assert "test_roc_auc__hotel__City_Hotel" in metrics
    assert "required_car_parking_spaces" not in run.data.params["input_columns"]
    env = {a.path for a in client.list_artifacts(run.info.run_id, "environment")}
    assert {"environment/uv.lock", "environment/installed.txt"} <= env

    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"train", "validation", "test"}
    assert all(d.dataset.digest for d in inputs.values())


def test_logged_model_loads_and_predicts_bit_identically(workdir) -> None:
    import mlflow

    cfg = config.load(None, workdir.overrides("xgboost"))
    outcome = train(cfg, threads=2)
    model = mlflow.pyfunc.load_model(outcome.model_uri)
    assert model.metadata.signature is not None
    assert model.metadata.saved_input_example_info is not None
    prepared = prepare(cfg)
    proba = np.asarray(model.predict(prepared.features("test")), dtype="float64")[:, 1]
    assert provenance.predictions_sha256(proba) == outcome.predictions_sha256
    assert (
        mlflow.get_run(outcome.run_id).data.tags["innflow.predictions_sha256"]
        == outcome.predictions_sha256
    )


def test_logged_test_metrics_are_those_of_the_logged_model(workdir) -> None:
    import mlflow
    from sklearn.metrics import roc_auc_score

    cfg = config.load(None, workdir.overrides())
    outcome = train(cfg, threads=1)
    prepared = prepare(cfg)
    proba = mlflow.sklearn.load_model(outcome.model_uri).predict_proba(prepared.features("test"))[
        :, 1
    ]
    assert roc_auc_score(prepared.labels("test"), proba) == outcome.metrics["test_roc_auc"]


def test_random_split_and_known_later_are_tagged(workdir) -> None:
    import mlflow

    cfg = config.load(
        None,
        workdir.overrides("logreg", "split.strategy=random", "features.allow_known_later=true"),
    )
    outcome = train(cfg, threads=1)
    tags = mlflow.get_run(outcome.run_id).data.tags
    assert tags["innflow.split"] == "random"
    assert "overstate" in tags["innflow.warning"]
    assert tags["innflow.known_later"] == "true"
    assert "country" in mlflow.get_run(outcome.run_id).data.params["input_columns"]


def test_failure_during_fit_marks_the_run_failed(workdir, cli) -> None:
    result = cli("train", *_set(workdir.overrides("hist_gb", "model.params.learning_rate=-1")))
    assert result.code == 2
    assert "learning_rate" in result.stderr and "Traceback" not in result.stderr
    runs = MlflowClient(workdir.store).search_runs(["1"])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert "learning_rate" in runs[0].data.tags["innflow.error"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "model.kindd=x"], "unknown key 'model.kindd'"),
        (["--set", "seed=many"], "'seed'"),
        (["--set", "model.kind=catboost"], "'model.kind'"),
        (["--set", "data.path=nowhere.parquet"], "data file not found: nowhere.parquet"),
        (["--set", "features.include=[lead_time, reservation_status]"], "reservation_status"),
        (["--set", "features.include=[lead_time, country]"], "allow_known_later"),
        (["--config", "missing.yaml"], "config file not found"),
        (["--set", "model.params.num_leafs=3"], "no parameter(s) num_leafs"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(workdir, cli, args, message) -> None:
    result = cli("train", *args)
    assert result.code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3  # the one message, possibly wrapped


def test_file_store_is_refused(workdir, cli, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(workdir.path / "mlruns"))
    result = cli("train", *_set(workdir.overrides()))
    assert result.code == 2 and "file store" in result.stderr


def test_data_check(workdir, cli) -> None:
    good = cli("data", "check", str(workdir.data), "--json")
    assert good.code == 0
    summary = json.loads(good.stdout)
    assert summary["rows"] == 8000 and summary["first"] == "2015-07-01"
    broken = workdir.path / "broken.csv"
    import pandas as pd

    frame = pd.read_parquet(workdir.data)
    frame.loc[:4, "lead_time"] = -3
    frame.drop(columns=["meal"]).to_csv(broken, index=False)
    bad = cli("data", "check", str(broken))
    assert bad.code == 2 and "missing column(s): meal" in bad.stderr
    frame.to_csv(broken, index=False)
    bad = cli("data", "check", str(broken))
    assert bad.code == 2 and "column 'lead_time': 5 rows are negative" in bad.stderr


def test_signature_accepts_the_nulls_the_data_has(workdir) -> None:
    import mlflow

    cfg = config.load(None, workdir.overrides())
    outcome = train(cfg, threads=1)
    model = mlflow.pyfunc.load_model(outcome.model_uri)
    inputs = {spec.name: spec for spec in model.metadata.get_input_schema().inputs}
    assert not inputs["agent"].required and not inputs["company"].required
    assert not inputs["children"].required
    assert inputs["lead_time"].required
    rows = prepare(cfg).features("test").head(3).copy()
    rows[["agent", "company", "children"]] = np.nan
    proba = np.asarray(model.predict(rows))[:, 1]
    assert np.isfinite(proba).all()


def test_interrupted_run_is_killed_not_left_running(workdir) -> None:
    import mlflow

    from innflow import tracking

    tracking.connect(None)
    with pytest.raises(KeyboardInterrupt), tracking.run("interrupts", None, {}) as active:
        raise KeyboardInterrupt
    run = mlflow.get_run(active.info.run_id)
    assert run.info.status == "KILLED"
    assert run.data.tags["innflow.error"].startswith("KeyboardInterrupt")


def test_another_data_set_is_drafted_and_checked(workdir, cli) -> None:
    import pandas as pd

    frame = pd.read_parquet(workdir.data).head(300)
    shop = frame[["hotel", "lead_time", "adults", "adr"]].assign(
        sold_on=pd.date_range("2021-01-01", periods=len(frame), freq="D")
    )
    data_file, contract_file = workdir.path / "shop.parquet", workdir.path / "shop.yaml"
    shop.to_parquet(data_file)
    drafted = cli("contract", "init", str(data_file), "--target", "adr", "--time-column",
                  "sold_on", "-o", str(contract_file))  # fmt: skip
    assert drafted.code == 0 and contract_file.is_file(), drafted.stderr
    again = cli("contract", "init", str(data_file), "--target", "adr", "-o", str(contract_file))
    assert again.code == 2 and "exists; pass --force" in again.stderr
    checked = cli("data", "check", str(data_file), "--contract", str(contract_file), "--json")
    assert checked.code == 0, checked.stderr
    summary = json.loads(checked.stdout)
    assert summary["contract"] == "shop" and summary["first"] == "2021-01-01"
    shop.drop(columns=["adults"]).to_parquet(data_file)
    missing = cli("data", "check", str(data_file), "--contract", str(contract_file))
    assert missing.code == 2 and "missing column(s): adults" in missing.stderr
