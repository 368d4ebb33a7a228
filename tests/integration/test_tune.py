from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from innflow import config
from innflow.errors import ConfigError
from innflow.serving.loading import load
from innflow.workflows.tune import tune

SMALL_SPACE = [
    "tuning.search_space={n_estimators: {type: int, low: 20, high: 60}, "
    "num_leaves: {type: int, low: 4, high: 32, log: true}, "
    "learning_rate: {type: float, low: 0.05, high: 0.2}}",
    "tuning.report_every=10",
]


@pytest.mark.slow
def test_tune_records_nested_trials_and_a_refit(workdir) -> None:
    cfg = config.load(None, workdir.overrides("lightgbm", *SMALL_SPACE))
    outcome = tune(cfg, trials=4, threads=2)
    client = MlflowClient(workdir.store)
    parent = client.get_run(outcome.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["innflow.kind"] == "tune"
    children = client.search_runs(
        [parent.info.experiment_id],
        f"tags.mlflow.parentRunId = '{outcome.parent_run_id}'",
    )
    trials = [r for r in children if r.data.tags.get("innflow.kind") == "trial"]
    refits = [r for r in children if r.data.tags.get("innflow.kind") == "train"]
    assert len(trials) == 4 and len(refits) == 1
    complete = [r for r in trials if r.data.tags["innflow.trial_state"] == "COMPLETE"]
    assert all("val_roc_auc" in r.data.metrics and "num_leaves" in r.data.params for r in complete)
    assert max(r.data.metrics["val_roc_auc"] for r in complete) == outcome.best_value
    refit = refits[0]
    assert refit.info.run_id == outcome.refit.run_id
    assert refit.data.tags["innflow.tuned_by"] == outcome.parent_run_id
    assert refit.data.params["model.params.num_leaves"] == str(outcome.best_params["num_leaves"])
    # The refit's train-only fit is the best trial's fit: same params, seed and rows.
    assert refit.data.metrics["val_roc_auc"] == outcome.best_value
    fitted = load(refit.data.tags["innflow.model_uri"]).pipeline
    assert (
        fitted.named_steps["model"].get_params()["num_leaves"] == outcome.best_params["num_leaves"]
    )
    assert "test_roc_auc" in refit.data.metrics and refit.data.tags["innflow.model_uri"]
    assert parent.data.params["best.num_leaves"] == str(outcome.best_params["num_leaves"])
    artifacts = {a.path for a in client.list_artifacts(outcome.parent_run_id, "plots")}
    assert "plots/optimisation_history.png" in artifacts
    assert (
        parent.data.metrics["duration_tracking_seconds"]
        < parent.data.metrics["duration_total_seconds"]
    )


@pytest.mark.slow
def test_same_seed_gives_same_best_params(workdir) -> None:
    cfg = config.load(None, workdir.overrides("lightgbm", *SMALL_SPACE, "tuning.pruning=false"))
    first = tune(cfg, trials=3, threads=1, study_name="a")
    second = tune(cfg, trials=3, threads=2, study_name="b")
    assert first.best_params == second.best_params
    assert first.best_value == second.best_value


@pytest.mark.slow
def test_two_processes_share_one_study(workdir) -> None:
    storage = f"sqlite:///{workdir.path / 'optuna.db'}"
    sets = [a for o in workdir.overrides("lightgbm", *SMALL_SPACE) for a in ("--set", o)]
    workers = []
    for index in range(2):
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{workdir.path / f'w{index}.db'}"}
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "innflow.cli",
                    "tune",
                    "--trials",
                    "3",
                    "--storage",
                    storage,
                    "--study",
                    "shared",
                    "--json",
                    "--threads",
                    "1",
                    *sets,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=workdir.path,
            )
        )
    outputs = [w.communicate(timeout=600) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [o[1][-2000:] for o in outputs]
    import optuna

    study = optuna.load_study(study_name="shared", storage=storage)
    assert len(study.trials) == 6
    assert all(json.loads(o[0])["study"] == "shared" for o in outputs)


def test_empty_search_space_and_bad_storage_exit_2(workdir, cli) -> None:
    sets = [a for o in workdir.overrides() for a in ("--set", o)]
    empty = cli("tune", "--trials", "1", *sets, "--set", "tuning.search_space={}")
    assert empty.code == 2 and "search_space is empty" in empty.stderr
    bad = cli(
        "tune", "--trials", "1", *sets, "--storage", "postgresql+psycopg2://nobody@127.0.0.1:1/x"
    )
    assert bad.code == 2 and "cannot open Optuna storage" in bad.stderr
    assert "Traceback" not in bad.stderr
    for option in (["--trials", "0"], ["--trials", "1", "--timeout", "0"]):
        refused = cli("tune", *option, *sets)  # 0 once meant "the config's 30 trials"
        assert refused.code == 2 and "Traceback" not in refused.stderr


def test_tune_library_refuses_zero_trials(workdir) -> None:
    cfg = config.load(None, workdir.overrides("lightgbm", *SMALL_SPACE))
    with pytest.raises(ConfigError, match="trials >= 1"):
        tune(cfg, trials=0)


def test_interrupted_tune_keeps_finished_trials_and_is_killed(workdir) -> None:
    cfg = config.load(None, workdir.overrides("lightgbm", *SMALL_SPACE))
    seen: list[int] = []

    def interrupt_after_two(number, value, best, state) -> None:
        seen.append(number)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tune(cfg, trials=5, threads=1, on_trial=interrupt_after_two)
    client = MlflowClient(workdir.store)
    runs = client.search_runs(["1"])
    parents = [r for r in runs if r.data.tags.get("innflow.kind") == "tune"]
    trials = [r for r in runs if r.data.tags.get("innflow.kind") == "trial"]
    assert [p.info.status for p in parents] == ["KILLED"]
    assert len(trials) == 2 and all(t.info.status == "FINISHED" for t in trials)


@pytest.mark.slow
def test_sigterm_ends_a_tune_killed_with_exit_143(workdir) -> None:
    """A scheduler stops tasks with SIGTERM: the parent run must end KILLED, not RUNNING."""
    import signal
    import time

    sets = [a for o in workdir.overrides("lightgbm", *SMALL_SPACE) for a in ("--set", o)]
    worker = subprocess.Popen(
        [sys.executable, "-m", "innflow.cli", "tune", "--trials", "500", "--threads", "1", *sets],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": workdir.store},
        cwd=workdir.path,
    )
    client = MlflowClient(workdir.store)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and worker.poll() is None:
        runs = client.search_runs(["1"]) if (workdir.path / "mlflow.db").exists() else []
        if any(r.data.tags.get("innflow.kind") == "trial" for r in runs):
            break
        time.sleep(0.5)
    worker.send_signal(signal.SIGTERM)
    _, stderr = worker.communicate(timeout=300)
    assert worker.returncode == 143, stderr[-2000:]
    assert "Traceback" not in stderr
    runs = client.search_runs(["1"])
    parents = [r for r in runs if r.data.tags.get("innflow.kind") == "tune"]
    assert [p.info.status for p in parents] == ["KILLED"]
    assert all(r.info.status != "RUNNING" for r in runs)
