"""Registry webhooks for real: `mlflow server` on PostgreSQL delivers a signed alias move to
`innflow serve`, which reloads without polling; forged, stale and replayed deliveries
reload nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest
from cryptography.fernet import Fernet

from innflow.serving.webhooks import signature
from tests.e2e.conftest import BIN, free_port, point_at, stop_group, wait_http
from tests.integration.conftest import workdir  # noqa: F401

pytestmark = pytest.mark.slow

SECRET = "webhook-test-secret"
NAMES = ["registry.model_name=e2e-hooks", "tracking.experiment=e2e-hooks",
         "registry.gate.min_roc_auc=0.5", "registry.gate.slice_floor_roc_auc=0",
         "registry.gate.max_ece=1", "registry.gate.max_brier=1"]  # fmt: skip


def _set(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def test_an_alias_move_reaches_the_service_by_webhook(
    server_factory, tmp_path, monkeypatch, cli, capsys
) -> None:
    server = server_factory(
        "webhooks",
        MLFLOW_WEBHOOK_ALLOWED_SCHEMES="http,https",  # loopback, plain HTTP: a test's network
        MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS="true",
        MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        MLFLOW_WEBHOOK_CACHE_TTL="1",  # the server caches its webhook list (60 s by default)
    )
    work = point_at(monkeypatch, server, tmp_path)

    def pipeline(trees: int) -> None:
        done = cli("pipeline", "--json", *_set(work.overrides(
            "lightgbm", *NAMES, f"model.params.n_estimators={trees}")))  # fmt: skip
        assert done.code == 0, done.stderr

    pipeline(30)
    assert cli("promote", "1", "--to", "production", "--approved-by", "ana", "--reason",
               "first", *_set(NAMES)).code == 0  # fmt: skip

    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "INNFLOW_WEBHOOK_SECRET": SECRET}
    with log.open("wb") as sink:
        service = subprocess.Popen(
            [str(BIN / "innflow"), "serve", "--model-uri", "models:/e2e-hooks@production",
             "--port", str(port), "--reload-seconds", "0"],
            env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/ping", service, log)
        assert _get(f"{base}/version")["model_version"] == "1"

        monkeypatch.setenv("INNFLOW_WEBHOOK_SECRET", SECRET)
        created = cli("webhooks", "create", f"{base}/webhooks/mlflow", "--json")
        assert created.code == 0, created.stderr
        hook = json.loads(created.stdout)
        assert set(hook["events"]) == {"model_version_alias.created",
                                       "model_version_alias.deleted",
                                       "model_version.created"}  # fmt: skip
        listed = json.loads(cli("webhooks", "list", "--json").stdout)["webhooks"]
        assert [h["id"] for h in listed] == [hook["id"]]
        tested = cli("webhooks", "test", hook["id"], "--json")
        assert tested.code == 0, tested.stderr  # MLflow's example event, verified, ignored
        assert json.loads(json.loads(tested.stdout)["body"])["outcome"] == "ignored"

        time.sleep(1.5)  # past the server's webhook cache
        pipeline(31)  # version 2 registered: its webhook has the service load it ahead
        deadline = time.monotonic() + 60
        while "loaded v2 ahead" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.1)
        assert _get(f"{base}/version")["model_version"] == "1"  # loaded, not yet served
        moved_at = time.monotonic()
        assert cli("promote", "2", "--to", "production", "--approved-by", "ana", "--reason",
                   "better", *_set(NAMES)).code == 0  # fmt: skip
        returned = time.monotonic()  # the alias moved between moved_at and now
        while _get(f"{base}/version")["model_version"] != "2":
            assert time.monotonic() - moved_at < 20, log.read_text()[-2000:]
            time.sleep(0.02)
        answered = time.monotonic()
        with capsys.disabled():  # the figure for the note, past the cli fixture's capture
            print(
                f"\nby webhook: `innflow promote` took {returned - moved_at:.2f} s; the new "
                f"version answered {answered - returned:.2f} s after it returned"
            )

        # what an attacker can send: nothing of it reloads the service
        body = json.dumps({"entity": "model_version_alias", "action": "created",
                           "data": {"name": "e2e-hooks", "alias": "production",
                                    "version": "1"}}).encode()  # fmt: skip
        url = f"{base}/webhooks/mlflow"
        stamp = str(int(time.time()))
        delivery = str(uuid.uuid4())
        signed = signature(SECRET.encode(), delivery, stamp, body)
        genuine = {"X-MLflow-Delivery-Id": delivery, "X-MLflow-Timestamp": stamp,
                   "X-MLflow-Signature": signed}  # fmt: skip
        old = str(int(time.time()) - 3600)
        refused = {
            "unsigned": {"Content-Type": "application/json"},
            "forged": {**genuine, "X-MLflow-Signature": signature(b"guess", delivery, stamp, body)},
            "stale": {**genuine, "X-MLflow-Timestamp": old,
                      "X-MLflow-Signature": signature(SECRET.encode(), delivery, old, body)},
        }  # fmt: skip
        for case, headers in refused.items():
            status, answer = _post(url, body, headers)
            assert status == 401, (case, answer)
        # the same delivery twice: the second is a replay (here the first moves the service
        # back to version 1, as a genuine delivery would)
        assert _post(url, body, genuine)[0] == 202
        status, answer = _post(url, body, genuine)
        assert status == 409 and "already received" in answer["error"]
        metrics = urllib.request.urlopen(f"{base}/metrics", timeout=5).read().decode()
        assert 'innflow_webhook_deliveries_total{outcome="reload"} 2.0' in metrics
        assert 'innflow_webhook_deliveries_total{outcome="prefetch"} 1.0' in metrics

        assert cli("webhooks", "delete", hook["id"]).code == 0
        assert json.loads(cli("webhooks", "list", "--json").stdout)["webhooks"] == []
    finally:
        stop_group(service)


def test_webhooks_need_a_tracking_server(workdir, cli) -> None:  # noqa: F811
    listed = cli("webhooks", "list")
    assert listed.code == 2 and "delivered by a tracking server" in listed.stderr
    secretless = cli("webhooks", "create", "http://127.0.0.1:1/webhooks/mlflow",
                     "--secret-env", "INNFLOW_NO_SUCH_SECRET")  # fmt: skip
    assert secretless.code == 2 and "INNFLOW_NO_SUCH_SECRET is empty" in secretless.stderr
