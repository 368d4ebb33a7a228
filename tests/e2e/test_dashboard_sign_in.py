"""`innflow dashboard` against a real `innflow server --auth`: its users sign in with their
own credentials, wrong or unknown ones and users without READ on the model get 401, and
the service credentials in the tracking URI never reach the page or /api/data.
"""

from __future__ import annotations

import secrets

import pytest
import requests
from fastapi.testclient import TestClient

from innflow import config
from innflow.errors import ConfigError
from innflow.workflows.dashboard import build_app
from tests.e2e.conftest import point_at

pytestmark = pytest.mark.slow

MODEL = "e2e-dashboard"


def test_tracking_server_users_sign_in(server_factory, tmp_path, monkeypatch) -> None:
    passwords = {name: secrets.token_urlsafe(16) for name in ("admin", "rita", "nora")}
    server = server_factory("mlflow_dashboard", auth=True, MLFLOW_AUTH_ADMIN_USERNAME="admin",
                            MLFLOW_AUTH_ADMIN_PASSWORD=passwords["admin"],
                            MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_hex(16))  # fmt: skip
    work = point_at(monkeypatch, server, tmp_path)
    admin = ("admin", passwords["admin"])
    api = f"{server.url}/api/2.0/mlflow"
    for user in ("rita", "nora"):
        created = requests.post(f"{api}/users/create", auth=admin, timeout=30,
                                json={"username": user, "password": passwords[user]})  # fmt: skip
        assert created.status_code == 200, created.text
    made = requests.post(f"{api}/registered-models/create", auth=admin, timeout=30,
                         json={"name": MODEL})  # fmt: skip
    assert made.status_code == 200, made.text
    denied = requests.post(
        f"{server.url}/api/3.0/mlflow/users/permissions/grant", auth=admin, timeout=30,
        json={"username": "nora", "resource_type": "registered_model", "resource_id": MODEL,
              "permission": "DENY"},
    )  # fmt: skip
    assert denied.status_code == 200, denied.text

    # the dashboard reads the store as a service account given in the tracking URI
    service_uri = server.url.replace("http://", f"http://admin:{passwords['admin']}@")
    overrides = [*work.overrides(), f"tracking.uri={service_uri}",
                 f"registry.model_name={MODEL}"]  # fmt: skip
    client = TestClient(build_app(config.load(None, overrides), refresh_seconds=0))

    rita = client.get("/", auth=("rita", passwords["rita"]))
    assert rita.status_code == 200, rita.text
    assert "No registered versions yet" in rita.text
    data = client.get("/api/data", auth=("rita", passwords["rita"]))
    assert data.status_code == 200 and data.json()["tracking_uri"].startswith("http://admin:***@")
    for auth in (None, ("rita", "wrong"), ("mallory", passwords["rita"]),
                 ("nora", passwords["nora"])):  # fmt: skip
        refused = client.get("/api/data", auth=auth)
        assert refused.status_code == 401 and "WWW-Authenticate" in refused.headers
    assert passwords["admin"] not in rita.text + data.text


def test_a_server_without_auth_cannot_stand_in_for_sign_in(team_workdir) -> None:
    with pytest.raises(ConfigError, match="INNFLOW_DASHBOARD_TOKEN"):
        build_app(config.load(None, team_workdir.overrides()))
