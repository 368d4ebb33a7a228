"""The team setup for real: `innflow server` over PostgreSQL and S3 (moto), every command
pointed at it by MLFLOW_TRACKING_URI alone.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import SAMPLE

pytestmark = pytest.mark.slow

GATE = ["registry.gate.min_roc_auc=0.7", "registry.gate.slice_floor_roc_auc=0.5"]


def _set(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def test_pipeline_reproduce_promote_and_score_through_the_server(
    team_workdir, cli, s3, tracking_server
) -> None:
    names = ["registry.model_name=e2e-central", "tracking.experiment=e2e-central"]
    staged = cli("pipeline", "--json", *_set(team_workdir.overrides("lightgbm", *GATE, *names)))
    assert staged.code == 0, staged.stderr
    outcome = json.loads(staged.stdout)
    run_id, version = outcome["run_id"], outcome["version"]

    again = cli("reproduce", run_id, "--json")
    assert again.code == 0, again.stderr
    assert json.loads(again.stdout)["identical"] is True

    promoted = cli("promote", version, "--to", "production", "--approved-by", "ana",
                   "--reason", "e2e", *_set(names))  # fmt: skip
    assert promoted.code == 0, promoted.stderr
    history = json.loads(cli("history", "--json", *_set(names)).stdout)["moves"]
    assert [(m["alias"], m["to_version"], m["who"]) for m in history][-1] == (
        "production",
        version,
        "ana",
    )

    # `innflow score` confirms an alias with one GET of MLflow's REST API, as MLflow would.
    from innflow import tracking

    production = "models:/e2e-central@production"
    assert tracking.current_version(tracking_server.url, production) == (version, run_id)
    assert tracking.current_version(tracking_server.url, f"models:/e2e-central/{version}") == (
        version, run_id,
    )  # fmt: skip
    assert tracking.current_version(tracking_server.url, "models:/e2e-central@nobody") is None

    scored_file = team_workdir.path / "scored.parquet"
    scored = cli("score", str(SAMPLE), str(scored_file), "--model-uri",
                 "models:/e2e-central@production", "--json")  # fmt: skip
    assert scored.code == 0, scored.stderr
    frame = pd.read_parquet(scored_file)
    assert (frame["model_version"] == version).all() and frame["probability"].notna().all()

    # Artifacts went through the server's proxy into the bucket; nothing was written here.
    client = MlflowClient(tracking_server.url)
    run = client.get_run(run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    experiment_id = run.info.experiment_id
    keys = s3.keys(f"shared/{experiment_id}/")
    assert f"shared/{experiment_id}/{run_id}/artifacts/config/resolved.yaml" in keys
    assert any(k.endswith("/MLmodel") for k in keys)
    assert any(k.startswith(f"shared/{experiment_id}/{run_id}/artifacts/gate/") for k in keys)
    assert not (team_workdir.path / "mlartifacts").exists()
    assert not (team_workdir.path / "mlruns").exists()
    assert not (team_workdir.path / "mlflow.db").exists()


@pytest.mark.parametrize("fault", ["wrong database password", "no such bucket"])
def test_server_refuses_unusable_stores_in_one_line(fault, postgres, s3, tmp_path) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.e2e.conftest import S3_SECRETS

    database = postgres.uri("postgres")
    bucket = f"s3://{s3.bucket}/x"
    if fault == "wrong database password":
        database = database.replace(postgres.password, "not-the-password")
    else:
        bucket = "s3://no-such-bucket/artifacts"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "innflow"), "server", "--backend-store-uri", database,
         "--artifacts-destination", bucket, "--port", "5999"],
        env={**os.environ, **S3_SECRETS, "MLFLOW_S3_ENDPOINT_URL": s3.endpoint},
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr
    if fault == "wrong database password":
        assert "backend store" in last and "password authentication failed" in last
        assert "not-the-password" not in result.stderr
    else:
        assert "artifact bucket 'no-such-bucket' does not exist" in last
