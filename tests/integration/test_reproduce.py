from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from innflow import config
from innflow.config import MODEL_KINDS
from innflow.workflows.reproduce import reproduce
from innflow.workflows.train import train


@pytest.mark.slow
@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_every_kind_reproduces_at_another_thread_count(workdir, kind) -> None:
    outcome = train(config.load(None, workdir.overrides(kind)), threads=1)
    report = reproduce(outcome.run_id, threads=2)
    differing = [(c.name, c.original, c.now) for c in report.differences() if c.decisive]
    assert report.identical, differing
    names = {c.name for c in report.checks}
    assert {
        "test predictions sha256",
        "logged model predictions sha256",
        "metric test_roc_auc",
    } <= names
    threads = next(c for c in report.checks if c.name == "threads")
    assert (threads.original, threads.now) == ("1", "2")


def test_reproduce_in_a_new_process_exits_0(workdir, cli) -> None:
    trained = cli("train", "--json", *[a for o in workdir.overrides() for a in ("--set", o)])
    run_id = json.loads(trained.stdout)["run_id"]
    env = {**os.environ, "INNFLOW_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "innflow.cli", "reproduce", run_id, "--json"],
        capture_output=True, text=True, env=env, cwd=workdir.path, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["identical"] is True
    import mlflow

    new_run = mlflow.get_run(report["new_run_id"])
    assert new_run.data.tags["innflow.reproduces"] == run_id


def test_altered_data_is_reported_and_exits_1(workdir, cli) -> None:
    trained = cli("train", "--json", *[a for o in workdir.overrides() for a in ("--set", o)])
    run_id = json.loads(trained.stdout)["run_id"]
    frame = pd.read_parquet(workdir.data)
    frame.loc[frame.index[::7], "adr"] += 25.0
    frame.to_parquet(workdir.data, index=False)
    result = cli("reproduce", run_id, "--json")
    assert result.code == 1
    report = json.loads(result.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["data sha256"]["same"] is False
    assert checks["test predictions sha256"]["same"] is False
    assert "not reproduced" in result.stderr and "test predictions sha256" in result.stderr


def test_unknown_run_id_exits_2(workdir, cli) -> None:
    result = cli("reproduce", "0123456789abcdef0123456789abcdef")
    assert result.code == 2
    assert "no run with id" in result.stderr and "Traceback" not in result.stderr
