from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient
from prometheus_client.parser import text_string_to_metric_families

from innflow import config, tracking
from innflow import data as bookings
from innflow.serving.app import create_app
from innflow.serving.loading import load
from innflow.serving.routing import Router, Variant
from innflow.serving.settings import ServiceSettings as Settings
from innflow.workflows.registry import move_alias, register
from innflow.workflows.train import train
from tests.conftest import SAMPLE
from tests.integration.conftest import FAST

PRODUCTION = "models:/hotel-booking-cancellation@production"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """A small model trained on the sample and put on `production`, in its own store."""
    path = tmp_path_factory.mktemp("monitoring")
    shutil.copy(SAMPLE, path / "bookings.parquet")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(path)
        store = f"sqlite:///{path / 'mlflow.db'}"
        patch.setenv("MLFLOW_TRACKING_URI", store)
        cfg = config.load(None, [f"data.path={path / 'bookings.parquet'}", *FAST["lightgbm"]])
        run = train(cfg, 1)
        version, _ = register(run.run_id, cfg)
        move_alias(cfg, version, "production", "tester", "monitoring test", force=True)
        frame = bookings.load_data(path / "bookings.parquet")
        window = frame[bookings.arrival_dates(frame) < "2017-01-01"].reset_index(drop=True)
        yield path, store, run, version, window


@pytest.fixture
def env(deployed, monkeypatch):
    path, store, *_ = deployed
    monkeypatch.chdir(path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    return deployed


def test_training_logs_the_reference_profile_in_the_run_and_the_model(env) -> None:
    path, store, run, _, window = env
    client = MlflowClient(store)
    local = client.download_artifacts(run.run_id, "reference/profile.json", str(path / "dl"))
    with open(local) as f:
        logged = json.load(f)
    profile, _ = tracking.reference_profile(PRODUCTION)
    assert profile == logged
    assert profile["rows"] == len(window)  # train + validation: what the model was fitted on
    assert profile["performance"]["roc_auc"] == pytest.approx(run.metrics["test_roc_auc"])
    assert profile["performance"]["brier"] == pytest.approx(run.metrics["test_brier"])


def test_the_training_window_is_healthy_and_doubled_lead_time_exits_4(env, cli) -> None:
    path, store, _, version, window = env
    window = window.drop(columns=["is_canceled"])  # drift only: no outcomes known yet
    window.to_parquet(path / "window.parquet")
    healthy = cli(
        "monitor",
        "--batch",
        str(path / "window.parquet"),
        "--json",
        "--html",
        str(path / "ok.html"),
        "--prom",
        str(path / "ok.prom"),
    )
    assert healthy.code == 0, healthy.stderr
    report = json.loads(healthy.stdout)
    assert report["status"] == "healthy" and report["model"]["version"] == version
    assert max(f["psi"] for f in report["features"]) < 0.01  # the very window it was fitted on
    window.assign(lead_time=window["lead_time"] * 2).to_parquet(path / "shifted.parquet")
    shifted = cli(
        "monitor",
        "--batch",
        str(path / "shifted.parquet"),
        "--json",
        "--prom",
        str(path / "shifted.prom"),
    )
    assert shifted.code == 4, shifted.stderr
    last = shifted.stderr.strip().splitlines()[-1]
    assert last.startswith("error: drift") and "lead_time" in last
    assert json.loads(shifted.stdout)["status"].startswith("drift")
    families = {
        f.name: f for f in text_string_to_metric_families((path / "shifted.prom").read_text())
    }
    psi = {s.labels["feature"]: s.value for s in families["innflow_drift_psi"].samples}
    assert psi["lead_time"] >= 0.25 and families["innflow_monitor_status"].samples[0].value == 1
    ok = {f.name: f for f in text_string_to_metric_families((path / "ok.prom").read_text())}
    assert ok["innflow_monitor_status"].samples[0].value == 0
    assert "<img" in (path / "ok.html").read_text()
    client = MlflowClient(store)
    run = client.get_run(json.loads(shifted.stdout)["run_id"])
    assert run.data.tags["innflow.status"].startswith("drift")
    assert run.data.tags["innflow.model_version"] == version
    assert run.data.metrics["psi.lead_time"] == pytest.approx(psi["lead_time"])
    assert "monitoring.html" in {a.path for a in client.list_artifacts(run.info.run_id)}


def test_performance_on_known_outcomes_matches_the_models_test(env, cli) -> None:
    path, *_ = env
    frame = bookings.load_data(path / "bookings.parquet")
    test = frame[bookings.arrival_dates(frame) >= "2017-01-01"]
    test.to_parquet(path / "test.parquet")
    result = cli(
        "monitor",
        "--batch",
        str(path / "test.parquet"),
        "--json",
        "--set",
        "monitoring.max_shifted_features=30",
    )
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["performance"]["roc_auc"] == pytest.approx(
        report["reference_performance"]["roc_auc"], abs=1e-12
    )
    assert report["prediction"]["psi"] < 1e-9  # the reference scores are these very scores
    since = cli(
        "monitor",
        "--batch",
        str(path / "test.parquet"),
        "--since",
        "2017-06-01",
        "--json",
        "--set",
        "monitoring.max_shifted_features=30",
    )
    assert json.loads(since.stdout)["rows"] == int(
        (bookings.arrival_dates(test) >= "2017-06-01").sum()
    )


@pytest.mark.slow
def test_prediction_log_gives_each_variant_an_interval(env, cli) -> None:
    path, _, _, version, _ = env
    production = load(PRODUCTION)
    router = Router([Variant("production", production, 0.5), Variant("canary", production, 0.5)])
    log_dir = path / "log"
    bookings_2017 = bookings.load_data(path / "bookings.parquet")
    sent = bookings_2017[bookings.arrival_dates(bookings_2017) >= "2017-01-01"].head(600)
    with TestClient(create_app(router, Settings(prediction_log=log_dir))) as client:
        for i in range(0, len(sent), 50):
            chunk = sent.iloc[i : i + 50]
            body = {
                "dataframe_split": json.loads(
                    chunk[production.columns].to_json(orient="split", index=False)
                )
            }
            response = client.post("/predict", json=body, headers={"X-Routing-Key": f"k{i}"})
            assert response.status_code == 200
    # the outcomes arrive later: a labelling job joins them into the log
    files = sorted(log_dir.glob("*.parquet"))
    logged = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    assert len(logged) == len(sent)
    logged["is_canceled"] = sent["is_canceled"].to_numpy()
    for f in files:
        f.unlink()
    logged.to_parquet(log_dir / "predictions-labelled.parquet")
    result = cli(
        "monitor",
        "--log",
        str(log_dir),
        "--json",
        "--prom",
        str(path / "log.prom"),
        "--set",
        "monitoring.max_shifted_features=30",
    )
    assert result.code in (0, 4), result.stderr
    report = json.loads(result.stdout)
    variants = {v["variant"]: v for v in report["variants"]}
    assert set(variants) == {"production", "canary"}
    assert sum(v["rows"] for v in variants.values()) == len(sent)
    for v in variants.values():
        assert v["roc_auc_low"] < v["roc_auc"] < v["roc_auc_high"]
        assert v["model_version"] == version
    prom = (path / "log.prom").read_text()
    assert 'innflow_variant_roc_auc{bound="low",variant="canary"' in prom


def test_bad_input_is_one_line_and_exit_2(env, cli) -> None:
    path, *_, window = env
    window.drop(columns=["lead_time"]).to_parquet(path / "missing.parquet")
    (path / "empty-log").mkdir(exist_ok=True)
    wrong = window.astype({"adults": object})
    wrong.loc[0, "adults"] = "two"
    wrong.to_csv(path / "wrong.csv", index=False)
    cases = {
        ("--batch", str(path / "missing.parquet")): "lead_time",
        ("--batch", str(path / "wrong.csv")): "'adults'",
        ("--log", str(path / "empty-log")): "no prediction log files",
        ("--batch", str(path / "nowhere.parquet")): "not found",
        ("--batch", str(path / "missing.parquet"), "--log", str(path)): "exactly one",
        (
            "--batch",
            str(path / "window.parquet"),
            "--since",
            "2030-01-01",
        ): "no rows whose arrival date is on or after",
        (
            "--batch",
            str(path / "window.parquet"),
            "--html",
            str(path / "no" / "x.html"),
        ): "does not exist",
    }
    window.to_parquet(path / "window.parquet")
    for args, needle in cases.items():
        result = cli("monitor", *args)
        assert result.code == 2, (args, result.stderr)
        assert needle in result.stderr and "Traceback" not in result.stderr, args
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_model_without_a_profile_is_refused(env, cli) -> None:
    path, *_, window = env
    pipeline, _ = tracking.load_for_serving(PRODUCTION)
    columns = list(pipeline.feature_names_in_)
    with tracking.run("old-models", "no-profile", {}):
        uri = tracking.log_model(
            pipeline, window[columns], [], {"innflow_input_columns": columns}, path
        )
    result = cli("monitor", "--batch", str(path / "bookings.parquet"), "--model-uri", uri)
    assert result.code == 2 and "no reference profile" in result.stderr


@pytest.mark.slow
def test_simulation_table_and_monthly_policy_equals_the_backtest(workdir, cli) -> None:
    lenient = [
        "registry.gate.min_roc_auc=0",
        "registry.gate.max_brier=1",
        "registry.gate.max_ece=1",
        "registry.gate.slice_floor_roc_auc=0",
        "registry.gate.margin=1",
    ]
    sets = [a for o in [*workdir.overrides(), *lenient] for a in ("--set", o)]
    window = ("--start", "2017-02", "--end", "2017-03")
    result = cli(
        "simulate",
        *window,
        "--policy",
        "never",
        "--policy",
        "monthly",
        "--policy",
        "on-drift",
        "--json",
        "--html",
        "sim.html",
        *sets,
    )
    assert result.code == 0, result.stderr
    payload = json.loads(result.stdout)
    summary = {r["policy"]: r for r in payload["summary"]}
    assert list(summary) == ["never", "monthly", "on-drift"]
    assert summary["never"]["retrains"] == 0 and summary["monthly"]["retrains"] == 1
    assert summary["monthly"]["promotions"] == 1  # the lenient gate lets every challenger in
    months = pd.DataFrame(payload["months"])
    never, monthly = months[months.policy == "never"], months[months.policy == "monthly"]
    assert never["champion"].tolist() == ["2017-02"] * 2
    assert monthly["champion"].tolist() == ["2017-02", "2017-03"]
    assert never["roc_auc"].iloc[0] == monthly["roc_auc"].iloc[0]
    backtest = json.loads(cli("backtest", *window, "--json", *sets).stdout)["months"]
    assert np.allclose(monthly["roc_auc"], [m["roc_auc"] for m in backtest], atol=1e-12)
    assert np.allclose(monthly["cost"], [m["cost"] for m in backtest])
    client = MlflowClient(workdir.store)
    parent = client.get_run(payload["parent_run_id"])
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert sorted(r.data.tags["innflow.policy"] for r in children) == [
        "monthly",
        "never",
        "on-drift",
    ]
    monthly_run = next(r for r in children if r.data.tags["innflow.policy"] == "monthly")
    history = client.get_metric_history(monthly_run.info.run_id, "roc_auc")
    assert [m.step for m in history] == [0, 1]
    retrains = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{monthly_run.info.run_id}'"
    )
    assert len(retrains) == 1
    assert {r.data.tags["innflow.approval"] for r in retrains} == {"auto-approved"}
    assert all(r.data.tags["innflow.approved_by"] for r in retrains)
    assert parent.data.metrics["policy.monthly.retrains"] == 1
    assert parent.data.metrics["policy.never.mean_roc_auc"] == pytest.approx(
        summary["never"]["mean_roc_auc"]
    )
    assert "<img" in (workdir.path / "sim.html").read_text()


def test_simulation_refuses_unknown_policy_and_strict_gate_keeps_the_champion(workdir, cli) -> None:
    bad = cli("simulate", "--policy", "sometimes")
    assert bad.code == 2 and "unknown policy" in bad.stderr
    sets = [
        a for o in [*workdir.overrides(), "registry.gate.min_roc_auc=0.99"] for a in ("--set", o)
    ]
    result = cli(
        "simulate", "--start", "2017-02", "--end", "2017-03", "--policy", "monthly", "--json", *sets
    )
    assert result.code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["summary"][0]["retrains"] == 1 and payload["summary"][0]["promotions"] == 0
    assert [m["champion"] for m in payload["months"]] == ["2017-02", "2017-02"]


def test_the_dashboard_shows_monitoring_over_time(env, cli) -> None:
    from fastapi.testclient import TestClient

    from innflow.workflows.dashboard import build_app

    path, _, _, version, window = env
    window = window.drop(columns=["is_canceled"])
    window.to_parquet(path / "calm.parquet")
    window.assign(lead_time=window["lead_time"] * 2).to_parquet(path / "moved.parquet")
    assert cli("monitor", "--batch", str(path / "calm.parquet")).code == 0
    assert cli("monitor", "--batch", str(path / "moved.parquet")).code == 4
    app = build_app(config.load(None, [f"data.path={path / 'bookings.parquet'}"]), token="t")
    client = TestClient(app, headers={"Authorization": "Basic dGVhbTp0"})  # team:t, signed in
    data = client.get("/api/data").json()
    statuses = [r["tags"]["innflow.status"] for r in data["monitoring"]]
    assert statuses[-2] == "healthy" and statuses[-1].startswith("drift")
    assert all(r["tags"]["innflow.model_version"] == version for r in data["monitoring"])
    page = client.get("/").text
    assert "drift by feature (PSI)" in page and "lead_time" in page
