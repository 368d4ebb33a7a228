"""`innflow score --engine spark`: a real local Spark session and mlflow.pyfunc.spark_udf."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from innflow.workflows.score import score_file
from tests.conftest import SAMPLE

URI = "models:/hotel-booking-cancellation@production"


@pytest.mark.slow
def test_spark_engine_matches_the_local_engine_and_keeps_bad_rows(
    registry, cli, monkeypatch
) -> None:
    _, _, version, path = registry
    # as `.venv/bin/innflow` runs without the venv activated: its `python3` not on PATH
    venv_bin = str(Path(sys.executable).parent)
    path_dirs = [d for d in os.environ["PATH"].split(os.pathsep) if d != venv_bin]
    monkeypatch.setenv("PATH", os.pathsep.join(path_dirs))
    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    frame = pd.read_parquet(SAMPLE).sample(300, random_state=7).reset_index(drop=True)
    frame.loc[5, "adults"] = -2
    frame.loc[17, "stays_in_week_nights"] = -1
    source = path / "spark-in.parquet"
    frame.to_parquet(source, index=False)
    local = score_file(URI, source, path / "local-out.parquet")
    result = cli("score", str(source), str(path / "spark-out.parquet"), "--engine", "spark")
    assert result.code == 0, result.stderr
    assert "298 scored, 2 rejected" in result.stdout

    ours = pd.read_parquet(path / "local-out.parquet")
    theirs = pd.read_parquet(path / "spark-out.parquet")
    assert list(theirs.columns) == list(ours.columns)
    assert len(theirs) == len(ours) == local.rows == 300
    assert (theirs["error"] == ours["error"]).all()
    assert "adults" in theirs.loc[5, "error"] and "week_nights" in theirs.loc[17, "error"]
    assert theirs.loc[[5, 17], "probability"].isna().all()
    good = ours["error"] == ""
    diff = np.abs(theirs.loc[good, "probability"] - ours.loc[good, "probability"]).max()
    print(f"spark vs local engine: max |probability diff| = {diff:.1e}")
    assert diff < 1e-12
    assert (theirs.loc[good, "likely_cancel"] == ours.loc[good, "likely_cancel"]).all()
    assert (theirs["model_version"] == version).all()
    pd.testing.assert_frame_equal(theirs[frame.columns], frame, check_dtype=False)


def test_spark_engine_refuses_to_overwrite_what_it_did_not_write(registry, cli) -> None:
    path = registry[3]
    precious = path / "precious.parquet"
    precious.write_text("not Spark's output")
    result = cli("score", str(SAMPLE), str(precious), "--engine", "spark")
    assert result.code == 2 and "exists and is not an earlier Spark output" in result.stderr
    assert precious.read_text() == "not Spark's output"
    unknown = cli("score", str(SAMPLE), str(path / "x.parquet"), "--engine", "dask")
    assert unknown.code == 2 and "engine 'dask'" in unknown.stderr


@pytest.mark.slow
def test_spark_engine_scores_a_regression_model_of_another_contract(workdir, cli) -> None:
    from tests.integration.test_contracts import _decide, _gym, _set

    members = _gym(1200)
    source = workdir.path / "gym.parquet"
    members.to_parquet(source)
    contract = workdir.path / "spend.yaml"
    drafted = cli("contract", "init", str(source), "--target", "spend_next_month",
                  "--time-column", "joined_on", "-o", str(contract))  # fmt: skip
    assert drafted.code == 0, drafted.stderr
    _decide(contract, member_id="identifier", churned="outcome")
    trained = cli("pipeline", *_set([f"data.path={source}", f"data.contract={contract}",
                                     "registry.model_name=gym-spend",
                                     "model.params.n_estimators=30",
                                     "split.validation_start=2022-01-01",
                                     "split.test_start=2022-07-01"]))  # fmt: skip
    assert trained.code == 0, trained.stderr
    batch = members.drop(columns=["spend_next_month"]).head(200).copy()
    batch.loc[3, "visits_last_month"] = -1
    batch.loc[8, "joined_on"] = "2022-02-30"  # the contract's date rule, on Spark's workers too
    batch.to_parquet(workdir.path / "batch.parquet", index=False)
    uri = "models:/gym-spend@staging"
    score_file(uri, workdir.path / "batch.parquet", workdir.path / "local.parquet")
    result = cli("score", str(workdir.path / "batch.parquet"), str(workdir.path / "spark.parquet"),
                 "--engine", "spark", "--model-uri", uri)  # fmt: skip
    assert result.code == 0, result.stderr
    assert "198 scored, 2 rejected" in result.stdout
    ours = pd.read_parquet(workdir.path / "local.parquet")
    theirs = pd.read_parquet(workdir.path / "spark.parquet")
    assert list(theirs.columns) == list(ours.columns)
    assert "prediction" in theirs and "probability" not in theirs
    assert (theirs["error"] == ours["error"]).all()
    assert theirs.loc[[3, 8], "prediction"].isna().all()
    good = ours["error"] == ""
    assert np.abs(theirs.loc[good, "prediction"] - ours.loc[good, "prediction"]).max() < 1e-9
