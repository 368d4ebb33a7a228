"""Many models on one platform: the nightly-rate (ADR) model through its whole lifecycle,
and a data set of another shape brought with a drafted contract and no code, as a
regression and as a binary model: train, register, gate, serve, score, monitor.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from innflow.serving import core
from innflow.serving.app import create_app
from innflow.serving.loading import load
from innflow.workflows.score import score_file

ROOT = Path(__file__).resolve().parents[2]
ADR = ["--config", str(ROOT / "configs" / "adr.yaml")]


def _set(overrides: list[str]) -> list[str]:
    return [arg for o in overrides for arg in ("--set", o)]


def _gym(rows: int = 2400, seed: int = 7) -> pd.DataFrame:
    """A gym's members, nothing like a booking: an id, text, nullable integers, a price, a
    date as ISO text, a churn flag and next month's spend (a signal in both)."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "plus", "premium"], rows, p=[0.5, 0.3, 0.2])
    club = rng.choice(["north", "south", "east", "west"], rows)
    visits = rng.poisson(6, rows)
    age = rng.integers(18, 70, rows).astype("float64")
    age[rng.random(rows) < 0.05] = np.nan
    fee = np.select([plan == "basic", plan == "plus"], [19.9, 29.9], 44.9) + rng.normal(0, 1, rows)
    logit = 1.0 - 0.35 * visits + np.where(plan == "premium", -0.8, 0.0)
    joined = pd.Timestamp("2021-01-01") + pd.to_timedelta(np.sort(rng.integers(0, 730, rows)), "D")
    return pd.DataFrame({
        "member_id": np.arange(100_000, 100_000 + rows),
        "club": club, "age": pd.array(age, dtype="Int64"), "visits_last_month": visits,
        "plan": plan, "monthly_fee": np.round(fee, 2),
        "joined_on": joined.strftime("%Y-%m-%d"),
        "churned": (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int),
        "spend_next_month": np.round(fee + 3.0 * visits + np.where(club == "north", 8, 0)
                                     + rng.normal(0, 4, rows), 2),
    })  # fmt: skip


def _decide(contract: Path, **roles: str) -> None:
    """What the person reading the draft does: set the roles it asks about."""
    text = contract.read_text()
    for column, role in roles.items():
        line = next(line for line in text.splitlines() if line.startswith(f'  "{column}":'))
        text = text.replace(line, line.replace("}", f", role: {role}}}", 1))
    contract.write_text(text)


@pytest.mark.slow
def test_the_adr_model_runs_the_whole_lifecycle(workdir, cli) -> None:
    # paths in a config are the working directory's, as data.path is
    contract = ROOT / "configs" / "contracts" / "adr.yaml"
    overrides = _set([f"data.path={workdir.data}", f"data.contract={contract}"])
    first = cli("pipeline", *ADR, *overrides, "--json")
    assert first.code == 0, first.stderr
    run_id = json.loads(first.stdout)["run_id"]
    client = MlflowClient(workdir.store)
    run = client.get_run(run_id)
    tags, metrics = run.data.tags, run.data.metrics
    assert tags["innflow.model_task"] == "regression"
    assert tags["innflow.contract"] == "hotel_bookings_adr"
    assert "innflow.threshold" not in tags and "threshold" not in metrics
    columns = run.data.params["input_columns"].split(",")
    assert "is_canceled" not in columns and "adr" not in columns
    assert not {"country", "assigned_room_type", "reservation_status"} & set(columns)
    for name in ("test_rmse", "test_mae", "test_r2", "test_baseline_rmse", "val_rmse"):
        assert np.isfinite(metrics[name]), name
    assert metrics["test_rmse_vs_baseline"] == pytest.approx(
        metrics["test_rmse"] / metrics["test_baseline_rmse"]
    )
    artifacts = {a.path for a in client.list_artifacts(run_id, "plots")}
    assert {"plots/predicted_vs_actual.png", "plots/residuals.png", "plots/slices.png"} <= artifacts
    logged = client.download_artifacts(run_id, "data/contract.yaml", str(workdir.path))
    assert "target: adr" in Path(logged).read_text()  # resolved: the whole contract

    version = client.get_model_version_by_alias("hotel-booking-adr", "staging")
    gate_checks = {
        c["check"]
        for c in json.loads(
            Path(
                client.download_artifacts(
                    run_id, f"gate/report-v{version.version}.json", str(workdir.path)
                )
            ).read_text()
        )["checks"]
    }
    assert {"r2", "baseline"} <= gate_checks  # the regression gate, not ROC AUC
    assert cli("promote", str(version.version), "--approved-by", "ana", *ADR,
               *overrides).code == 0  # fmt: skip
    # the cancellation model's config refuses to gate it (its contract is binary)
    wrong = cli("gate", str(version.version), *_set(["registry.model_name=hotel-booking-adr",
                                                      f"data.path={workdir.data}"]))  # fmt: skip
    assert wrong.code == 2 and "is a regression model" in wrong.stderr

    model = load("models:/hotel-booking-adr@production")
    assert model.regression and model.fast is None
    assert model.predictor["state"] == "lookup"  # its own fast path, verified at load
    bookings = pd.read_parquet(workdir.data)
    rows = json.loads(bookings.tail(3).drop(columns=["adr"]).to_json(orient="records"))
    http = TestClient(create_app(model))
    answered = http.post("/invocations", json={"dataframe_records": rows})
    assert answered.status_code == 200, answered.text
    served = np.asarray(answered.json()["predictions"])
    logged = model.pipeline.predict(bookings.tail(3)[model.columns])
    assert served.shape == (3,) and np.array_equal(served, logged)
    assert http.post("/predict", json={"dataframe_records": rows}).json()["predictions"][0][
        "prediction"] == served[0]  # fmt: skip
    bad = [dict(r) for r in rows]
    bad[1]["adults"] = -2
    refused = http.post("/invocations", json={"dataframe_records": bad})
    assert refused.status_code == 400
    assert refused.json()["errors"] == [{"row": 1, "field": "adults", "problem": "value negative"}]
    assert http.get("/metadata").json()["task"] == "regression"

    scored = workdir.path / "scored.parquet"
    outcome = score_file("models:/hotel-booking-adr@production", workdir.data, scored)
    written = pd.read_parquet(scored)
    assert outcome.scored == len(bookings) and "probability" not in written
    assert np.allclose(written["prediction"].to_numpy(dtype="float64"),
                       model.pipeline.predict(bookings[model.columns]))  # fmt: skip

    watched = cli("monitor", "--batch", str(workdir.data), "--model-uri",
                  "models:/hotel-booking-adr@production", "--json", *ADR)  # fmt: skip
    assert watched.code in (0, 4), watched.stderr
    report = json.loads(watched.stdout)
    assert report["performance"]["rmse"] > 0 and report["reference_performance"][
        "rmse"
    ] == pytest.approx(metrics["test_rmse"])
    from innflow import config as config_module
    from innflow.dashboard.page import render
    from innflow.workflows.dashboard import collect

    board = render(collect(config_module.load(ROOT / "configs" / "adr.yaml", [])))
    assert "test RMSE" in board and "test R²" in board  # the dashboard shows its own figures
    window = ("--start", "2017-03", "--end", "2017-04")
    months = cli("backtest", *ADR, *overrides, *window, "--json")
    assert months.code == 0, months.stderr
    table = json.loads(months.stdout)["months"]
    assert [m["month"] for m in table] == ["2017-03", "2017-04"]
    assert all(m["rmse"] > 0 and m["baseline_rmse"] > 0 for m in table)
    # replayed with a gate that lets every challenger in, monthly retraining is the backtest
    lenient = _set(["registry.gate.min_r2=-100", "registry.gate.beat_baseline=false",
                    "registry.gate.relative_margin=100"])  # fmt: skip
    page = workdir.path / "sim.html"
    replay = cli("simulate", *ADR, *overrides, *lenient, *window, "--policy", "never",
                 "--policy", "monthly", "--json", "--html", str(page))  # fmt: skip
    assert replay.code == 0, replay.stderr
    payload = json.loads(replay.stdout)
    lived = pd.DataFrame(payload["months"])
    monthly = lived[lived.policy == "monthly"]
    assert monthly["champion"].tolist() == ["2017-03", "2017-04"]
    assert np.allclose(monthly["rmse"], [m["rmse"] for m in table], rtol=0, atol=1e-9)
    assert np.allclose(monthly["baseline_rmse"], [m["baseline_rmse"] for m in table])
    assert "roc_auc" not in lived and "cost" not in lived
    summary = {r["policy"]: r for r in payload["summary"]}
    assert summary["monthly"]["promotions"] == 1 and summary["never"]["retrains"] == 0
    parent = client.get_run(payload["parent_run_id"])
    assert parent.data.tags["innflow.model_task"] == "regression"
    assert parent.data.metrics["policy.monthly.mean_rmse"] == pytest.approx(
        summary["monthly"]["mean_rmse"]
    )
    assert "mean_rmse" in page.read_text() and "<img" in page.read_text()


@pytest.mark.slow
def test_a_data_set_of_another_shape_comes_with_a_contract_and_no_code(workdir, cli) -> None:
    data_file = workdir.path / "gym.parquet"
    members = _gym()
    members.to_parquet(data_file)
    split = ["split.validation_start=2022-01-01", "split.test_start=2022-07-01"]
    for target, other, task, extra in (
        ("spend_next_month", "churned", "regression", []),
        ("churned", "spend_next_month", "binary",
         ["evaluation.threshold=max_f1", "registry.gate.min_roc_auc=0.6"]),
    ):  # fmt: skip
        contract = workdir.path / f"{target}.yaml"
        drafted = cli("contract", "init", str(data_file), "--target", target, "--time-column",
                      "joined_on", "-o", str(contract))  # fmt: skip
        assert drafted.code == 0, drafted.stderr
        assert f"task: {task}" in contract.read_text()
        _decide(contract, member_id="identifier", **{other: "outcome"})
        name = f"gym-{target}"
        overrides = _set([f"data.path={data_file}", f"data.contract={contract}",
                          f"registry.model_name={name}", "model.params.n_estimators=60",
                          *split, *extra])  # fmt: skip
        if task == "binary":  # the bookings' cost needs columns a gym does not have
            refused = cli("pipeline", *_set([f"data.path={data_file}",
                                             f"data.contract={contract}", *split]))  # fmt: skip
            assert refused.code == 2 and "set evaluation.threshold=max_f1" in refused.stderr
        done = cli("pipeline", *overrides, "--json")
        assert done.code == 0, done.stderr
        run = MlflowClient(workdir.store).get_run(json.loads(done.stdout)["run_id"])
        used = run.data.params["input_columns"].split(",")
        assert "member_id" not in used and other not in used and target not in used
        assert run.data.tags["innflow.split"] == "time"
        staged = MlflowClient(workdir.store).get_model_version_by_alias(name, "staging")
        assert staged.tags["innflow.gate"] == "passed", staged.tags.get("innflow.gate_reasons")
        model = load(f"models:/{name}@staging")
        assert model.fast is None and model.contract.name == "gym"
        assert model.predictor["state"] == "lookup"
        # the fast path answers every row bit for bit as the pipeline (nulls, dates, levels)
        inputs = members[model.columns]
        exact = (model.pipeline.predict(inputs) if task == "regression"
                 else model.pipeline.predict_proba(inputs))  # fmt: skip
        assert np.array_equal(model.scorer.predict(core.columns_of(inputs, model.columns)), exact)
        http = TestClient(create_app(model))
        rows = json.loads(members.tail(2).drop(columns=[target]).to_json(orient="records"))
        answered = http.post("/invocations", json={"dataframe_records": rows})
        assert answered.status_code == 200, answered.text
        predictions = np.asarray(answered.json()["predictions"])
        assert predictions.shape == ((2,) if task == "regression" else (2, 2))
        bad = [dict(r) for r in rows]
        bad[0]["visits_last_month"], bad[1]["joined_on"] = -1, "2022-02-30"
        refused = http.post("/invocations", json={"dataframe_records": bad}).json()["errors"]
        assert {(e["row"], e["field"]) for e in refused} == {(0, "visits_last_month"),
                                                            (1, "joined_on")}  # fmt: skip
        document = http.get("/openapi.json")
        assert document.status_code == 200
        operation = document.json()["paths"]["/invocations"]["post"]
        record = operation["requestBody"]["content"]["application/json"]["schema"][
            "properties"]["dataframe_records"]["items"]  # fmt: skip
        assert record["properties"]["visits_last_month"] == {"type": "integer", "minimum": 0}
        assert record["properties"]["joined_on"]["format"] == "date"
        answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
        shape = answer["properties"]["predictions"]["items"]
        assert shape == ({"type": "number"} if task == "regression"
                         else {"type": "array", "items": {"type": "number"}})  # fmt: skip
        typo = http.post("/invocations", json={"dataframe_records": [{**rows[0], "vists": 1}]})
        assert typo.status_code == 400 and typo.json()["errors"][0]["field"] == "vists"

        # tuned and replayed month by month like the bookings' model, by its task's figures
        objective = "rmse" if task == "regression" else "roc_auc"
        tuned = cli("tune", "--trials", "2", *overrides, *_set([f"tuning.objective={objective}"]),
                    "--json")  # fmt: skip
        assert tuned.code == 0, tuned.stderr
        refit = MlflowClient(workdir.store).get_run(json.loads(tuned.stdout)["refit_run_id"])
        assert refit.data.tags["innflow.model_task"] == task
        assert refit.data.params["input_columns"] == run.data.params["input_columns"]
        wrong = "roc_auc" if task == "regression" else "rmse"
        refused = cli("tune", "--trials", "1", *overrides, *_set([f"tuning.objective={wrong}"]))
        assert refused.code == 2 and "set tuning.objective to one of" in refused.stderr
        replay = cli("simulate", "--start", "2022-08", "--end", "2022-09", "--policy", "never",
                     "--policy", "monthly", "--json", *overrides)  # fmt: skip
        assert replay.code == 0, replay.stderr
        lived = pd.DataFrame(json.loads(replay.stdout)["months"])
        assert lived.groupby("policy").size().to_dict() == {"monthly": 2, "never": 2}
        figure = "rmse" if task == "regression" else "roc_auc"
        assert lived[figure].notna().all() and "cost" not in lived  # no prices: no cost
