"""A/B and shadow between versions of different kinds: innflow's own champion against a
notebook's model, behind one registered name, as a team adopting innflow would run them.
"""

from __future__ import annotations

import json
import warnings

import mlflow
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from innflow.serving.settings import ServiceSettings as ServiceOptions
from innflow.workflows.serve import build_app
from tests import user_models

NAME = "hotel-booking-cancellation"


def _register(source: str, alias: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        version = mlflow.register_model(source, NAME)
    MlflowClient().set_registered_model_alias(NAME, alias, version.version)
    return str(version.version)


@pytest.mark.slow
def test_ab_and_shadow_across_innflow_and_notebook_models(workdir, tmp_path) -> None:
    from innflow import config
    from innflow.workflows.train import train

    cfg = config.load(None, workdir.overrides("lightgbm"))
    champion = train(cfg, 1)
    bookings = pd.read_parquet(workdir.data)
    innflow_version = _register(champion.model_uri, "production")
    notebook_version = _register(f"runs:/{user_models.raw_pipeline(bookings)}/model", "staging")
    _register(f"runs:/{user_models.lightgbm_booster(bookings)}/booster", "candidate")
    log = tmp_path / "predictions"
    options = ServiceOptions(routes=("production=50", "staging=50"), shadows=("candidate",),
                             prediction_log=str(log), reload_seconds=0)  # fmt: skip
    app, shown = build_app(options)
    assert "production v1" in shown and "candidate v3 (shadow)" in shown
    records = json.loads(bookings.iloc[:30].to_json(orient="records"))  # every booking column
    seen: dict[str, set[str]] = {}
    with TestClient(app) as client:
        health = client.get("/health").json()
        assert health["predictors"]["production"]["path"] == "innflow"
        assert health["predictors"]["staging"]["path"] == "general"
        assert health["predictors"]["candidate"]["path"] == "general"
        for record in records:
            response = client.post("/predict", json={"dataframe_records": [record]})
            assert response.status_code == 200, response.text
            variant = response.headers["X-Variant"]
            seen.setdefault(variant, set()).update(response.headers["X-Ignored-Columns"].split(","))
            answer = response.json()["predictions"][0]
            assert answer["variant"] == variant and 0 <= answer["probability"] <= 1
            assert answer["model_version"] == response.headers["X-Model-Version"]
        typo = client.post("/invocations", json={"dataframe_records": [{**records[0], "adrr": 1}]})
        assert typo.status_code == 400 and typo.json()["errors"][0]["field"] == "adrr"
    assert set(seen) == {"production", "staging"}
    assert "is_canceled" in seen["production"] and "country" in seen["staging"]
    assert "lead_time" not in seen["production"] | seen["staging"]
    logged = pd.concat(pd.read_parquet(p) for p in sorted(log.glob("*.parquet")))
    counts = logged["variant"].value_counts().to_dict()
    assert counts["candidate"] == len(records)
    assert counts["production"] + counts["staging"] == len(records)
    by_variant = logged.groupby("variant")
    assert set(by_variant.get_group("production")["model_version"]) == {innflow_version}
    assert set(by_variant.get_group("staging")["model_version"]) == {notebook_version}
    assert by_variant.get_group("staging")["probability"].between(0, 1).all()
    assert by_variant.get_group("candidate")["prediction"].notna().all()
