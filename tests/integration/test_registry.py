from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from innflow import config
from innflow.workflows.registry import register
from innflow.workflows.train import train

GATE = ["registry.gate.min_roc_auc=0.7", "registry.gate.slice_floor_roc_auc=0.5"]


def _production(client: MlflowClient) -> str:
    return str(
        client.get_model_version_by_alias("hotel-booking-cancellation", "production").version
    )


def _set(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def test_pipeline_stages_a_passing_model_and_is_idempotent(workdir, cli) -> None:
    args = _set(workdir.overrides("lightgbm", *GATE))
    first = cli("pipeline", "--json", *args)
    assert first.code == 0, first.stderr
    one = json.loads(first.stdout)
    assert one["staged"] and one["version"] == "1" and one["new_version"]
    client = MlflowClient(workdir.store)
    version = client.get_model_version_by_alias("hotel-booking-cancellation", "staging")
    assert str(version.version) == "1" and version.tags["innflow.gate"] == "passed"
    assert version.tags["innflow.data_sha256"] and version.tags["innflow.model_kind"] == "lightgbm"
    report = client.download_artifacts(version.run_id, "gate/report-v1.json", str(workdir.path))
    assert json.loads(Path(report).read_text())["passed"] is True
    again = json.loads(cli("pipeline", "--json", *args).stdout)
    assert again["reused_run"] and again["run_id"] == one["run_id"]
    assert again["version"] == "1" and not again["new_version"]
    assert len(client.search_model_versions("name = 'hotel-booking-cancellation'")) == 1


def test_register_twice_gives_one_version(workdir) -> None:
    cfg = config.load(None, workdir.overrides())
    run_id = train(cfg, 1).run_id
    assert register(run_id, cfg) == ("1", True)
    assert register(run_id, cfg) == ("1", False)


def test_worse_challenger_is_refused_better_one_staged_promote_and_rollback(workdir, cli) -> None:
    champion = json.loads(
        cli("pipeline", "--json", *_set(workdir.overrides("lightgbm", *GATE))).stdout
    )
    refused = cli("promote", champion["version"], "--to", "production")
    assert refused.code == 2 and "approved-by" in refused.stderr
    promoted = cli("promote", champion["version"], "--to", "production", "--approved-by", "ana",
                   "--reason", "first release")  # fmt: skip
    assert promoted.code == 0, promoted.stderr

    crippled = workdir.overrides("logreg", *GATE, "model.params.C=0.00001")
    worse = cli("pipeline", "--json", *_set(crippled))
    assert worse.code == 3
    outcome = json.loads(worse.stdout)
    assert not outcome["staged"] and any("vs champion" in r for r in outcome["gate"]["reasons"])
    client = MlflowClient(workdir.store)
    worse_version = client.get_model_version("hotel-booking-cancellation", outcome["version"])
    assert worse_version.aliases == [] and worse_version.tags["innflow.gate"] == "failed"
    not_passed = cli("promote", outcome["version"], "--to", "production", "--approved-by", "bo")
    assert not_passed.code == 3 and "gate status 'failed'" in not_passed.stderr

    stronger = workdir.overrides(
        "lightgbm", *GATE, "model.params.n_estimators=120", "model.params.num_leaves=16"
    )
    better = json.loads(cli("pipeline", "--json", *_set(stronger)).stdout)
    assert better["staged"], better["gate"]["reasons"]
    assert cli("promote", better["version"], "--approved-by", "bo", "--reason", "better").code == 0
    assert _production(client) == better["version"]

    back = cli("rollback", "--reason", "complaints", "--approved-by", "ana", "--json")
    assert back.code == 0, back.stderr
    assert _production(client) == champion["version"]
    moves = json.loads(cli("history", "--json").stdout)["moves"]
    production = [
        (m["from_version"], m["to_version"], m["kind"]) for m in moves if m["alias"] == "production"
    ]
    assert production == [
        ("none", champion["version"], "promote"),
        (champion["version"], better["version"], "promote"),
        (better["version"], champion["version"], "rollback"),
    ]
    listing = json.loads(cli("models", "--json").stdout)["versions"]
    assert {v["version"]: v["gate"] for v in listing}[outcome["version"]] == "failed"


def test_registry_errors_exit_2(workdir, cli) -> None:
    train(config.load(None, workdir.overrides()), 1)
    assert cli("gate", "7").code == 2
    assert cli("promote", "7", "--approved-by", "x").code == 2
    assert cli("rollback").code == 2
    run_id = json.loads(
        cli("pipeline", "--json", *_set(workdir.overrides("lightgbm", *GATE))).stdout
    )["run_id"]
    assert run_id
    bad_alias = cli("promote", "1", "--to", "prod", "--approved-by", "x")
    assert bad_alias.code == 2 and "unknown alias 'prod'" in bad_alias.stderr
    no_previous = cli("rollback", "--approved-by", "x")
    assert no_previous.code == 2 and "production" in no_previous.stderr
    assert cli("register", "0123456789abcdef0123456789abcdef").code == 2


@pytest.mark.slow
def test_mlflow_run_executes_the_pipeline_entry_point(workdir) -> None:
    root = Path(__file__).resolve().parents[2]
    cfg = workdir.path / "cfg.yaml"
    cfg.write_text(
        f"data: {{path: {workdir.data}}}\n"
        "model: {kind: lightgbm, params: {n_estimators: 40}}\n"
        "registry: {gate: {min_roc_auc: 0.7, slice_floor_roc_auc: 0.5}}\n"
    )
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    mlflow_cli = str(Path(sys.executable).parent / "mlflow")
    command = [mlflow_cli, "run", str(root), "-e", "pipeline", "--env-manager", "local",
               "--experiment-name", "hotel-cancellation", "-P", f"config={cfg}"]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=workdir.path, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(workdir.store)
    staged = client.get_model_version_by_alias("hotel-booking-cancellation", "staging")
    run = client.get_run(staged.run_id)
    assert run.data.tags["mlflow.project.entryPoint"] == "pipeline"
    assert "test_roc_auc" in run.data.metrics


def test_unreachable_registry_is_one_line_and_exit_2(workdir, cli, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    result = cli("models")
    assert result.code == 2
    assert "tracking server http://127.0.0.1:9 cannot be reached" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_move_that_cannot_be_recorded_is_undone(workdir, monkeypatch) -> None:
    from innflow import tracking
    from innflow.errors import TrackingError
    from innflow.workflows.registry import move_alias

    cfg = config.load(None, workdir.overrides())
    version, _ = register(train(cfg, 1).run_id, cfg)

    def broken(name, move) -> None:
        raise TrackingError("audit store unavailable")

    monkeypatch.setattr(tracking, "record_move", broken)
    with pytest.raises(TrackingError):
        move_alias(cfg, version, "production", "ana", "try", force=True)
    assert tracking.alias_version("hotel-booking-cancellation", "production") is None


def test_an_embedded_store_is_always_asked_through_mlflow(registry) -> None:
    """No SQL on MLflow's tables: only a server's REST API is read directly."""
    from innflow import tracking

    store = tracking.store_identity(tracking.resolve_store(None))
    tracking.connect(None)
    for uri in ("models:/hotel-booking-cancellation@production",
                "models:/hotel-booking-cancellation/1"):  # fmt: skip
        assert tracking.model_version_of(uri) is not None
        assert tracking.current_version(store, uri) is None
