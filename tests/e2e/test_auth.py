"""Basic-auth on the central server: READ cannot register or promote, MANAGE can, and the
credentials innflow is given never land in what it records or prints.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow.tracking import MlflowClient

from innflow.tracking import AUDIT_EXPERIMENT
from tests.e2e.conftest import point_at

pytestmark = pytest.mark.slow

INNFLOW = str(Path(sys.executable).parent / "innflow")
GATE = ["registry.gate.min_roc_auc=0.7", "registry.gate.slice_floor_roc_auc=0.5"]
MODEL = "e2e-auth"


def _set(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def test_server_refuses_the_well_known_admin_password(tmp_path) -> None:
    result = subprocess.run(
        [INNFLOW, "server", "--auth", "--port", "5999"],
        env={"PATH": "/usr/bin:/bin", "MLFLOW_AUTH_ADMIN_PASSWORD": "password1234"},
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "default admin password" in result.stderr and "Traceback" not in result.stderr


def test_read_cannot_register_or_promote_manage_can_credentials_never_recorded(
    server_factory, tmp_path, monkeypatch, cli
) -> None:
    passwords = {name: secrets.token_urlsafe(16) for name in ("admin", "rita", "mona")}
    server = server_factory("mlflow_auth", auth=True, MLFLOW_AUTH_ADMIN_USERNAME="admin",
                            MLFLOW_AUTH_ADMIN_PASSWORD=passwords["admin"],
                            MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_hex(16))  # fmt: skip
    work = point_at(monkeypatch, server, tmp_path)
    admin = ("admin", passwords["admin"])
    for user in ("rita", "mona"):
        created = requests.post(
            f"{server.url}/api/2.0/mlflow/users/create", auth=admin, timeout=30,
            json={"username": user, "password": passwords[user]},
        )  # fmt: skip
        assert created.status_code == 200, created.text

    outputs: list[str] = []

    def as_user(user: str, *args: str):
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", passwords[user])
        result = cli(*args)
        outputs.extend((result.stdout, result.stderr))
        return result

    names = [f"registry.model_name={MODEL}", "tracking.experiment=e2e-auth"]
    staged = as_user(
        "admin", "pipeline", "--json", *_set(work.overrides("lightgbm", *GATE, *names))
    )
    assert staged.code == 0, staged.stderr
    admin_run = json.loads(staged.stdout)["run_id"]

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", passwords["admin"])
    client = MlflowClient(server.url)
    audit = client.get_experiment_by_name(AUDIT_EXPERIMENT).experiment_id
    grants = [("rita", "registered_model", MODEL, "READ"),
              ("mona", "registered_model", MODEL, "MANAGE"),
              ("mona", "experiment", audit, "EDIT")]  # fmt: skip
    for user, kind, resource, permission in grants:
        granted = requests.post(
            f"{server.url}/api/3.0/mlflow/users/permissions/grant", auth=admin, timeout=30,
            json={"username": user, "resource_type": kind, "resource_id": resource,
                  "permission": permission},
        )  # fmt: skip
        assert granted.status_code == 200, granted.text

    # rita may train in an experiment of her own, not add it to the team's model or promote.
    own = work.overrides("lightgbm", "tracking.experiment=e2e-auth-rita")
    trained = as_user("rita", "train", "--json", *_set(own))
    assert trained.code == 0, trained.stderr
    rita_run = json.loads(trained.stdout)["run_id"]
    for refused in (as_user("rita", "register", rita_run, *_set(names)),
                    as_user("rita", "promote", "1", "--to", "production", "--approved-by", "rita",
                            *_set(names))):  # fmt: skip
        assert refused.code == 2
        assert "permission denied" in refused.stderr.lower(), refused.stderr
        assert "Traceback" not in refused.stderr and refused.stderr.strip().count("\n") == 0
    assert [v.version for v in client.search_model_versions(f"name = '{MODEL}'")] == ["1"]
    assert "production" not in client.get_registered_model(MODEL).aliases

    # mona, with MANAGE on the model, may do both.
    assert as_user("mona", "register", rita_run, *_set(names)).code == 0
    promoted = as_user("mona", "promote", "1", "--to", "production", "--approved-by", "mona",
                       "--reason", "e2e", *_set(names))  # fmt: skip
    assert promoted.code == 0, promoted.stderr
    assert client.get_model_version_by_alias(MODEL, "production").version == "1"

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "rita")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not-her-password")
    wrong = cli("models", *_set(names))
    assert wrong.code == 2 and "Traceback" not in wrong.stderr
    assert "credentials" in wrong.stderr.lower(), wrong.stderr

    # No password anywhere innflow records or prints.
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", passwords["admin"])
    secrets_seen = list(passwords.values())
    experiments = client.search_experiments()
    runs = client.search_runs([e.experiment_id for e in experiments])
    assert {admin_run, rita_run} <= {r.info.run_id for r in runs}
    for run in runs:
        recorded = " ".join([*run.data.params.values(), *run.data.tags.values()])
        assert not any(s in recorded for s in secrets_seen), run.info.run_id
    folders = [
        Path(client.download_artifacts(run_id, "", str(tmp_path / run_id)))
        for run_id in (admin_run, rita_run)
    ]
    logged = client.search_logged_models([e.experiment_id for e in experiments])
    assert len(logged) >= 2
    folders += [
        Path(mlflow.artifacts.download_artifacts(f"models:/{m.model_id}",
                                                 dst_path=str(tmp_path / m.model_id)))
        for m in logged
    ]  # fmt: skip
    for folder in folders:
        files = [p for p in folder.rglob("*") if p.is_file()]
        assert len(files) > 3
        for path in files:
            content = path.read_bytes()
            assert not any(s.encode() in content for s in secrets_seen), path
    assert not any(s in text for text in outputs for s in secrets_seen)
