"""The tracking server dies mid-run: the command fails in one line, nothing half-written is
registered, a re-run after the restart succeeds, and a running service keeps answering.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from mlflow.tracking import MlflowClient

from tests.conftest import SAMPLE
from tests.e2e.conftest import free_port, point_at, stop_group, wait_http

pytestmark = pytest.mark.slow

INNFLOW = str(Path(sys.executable).parent / "innflow")
# The gate is not under test here: loose enough that any sane model passes.
GATE = [
    "registry.gate.min_roc_auc=0.7", "registry.gate.slice_floor_roc_auc=0.5",
    "registry.gate.max_ece=0.5", "registry.gate.margin=1.0",
]  # fmt: skip
MODEL = "e2e-fault"


def _set(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def _bookings(columns: list[str]) -> dict:
    import pandas as pd

    frame = pd.read_parquet(SAMPLE).head(5)[columns]
    return json.loads(frame.to_json(orient="split", index=False, date_format="iso"))


def test_server_death_mid_run_then_restart(server_factory, tmp_path, monkeypatch, cli) -> None:
    server = server_factory("mlflow_fault")
    work = point_at(monkeypatch, server, tmp_path)
    names = [f"registry.model_name={MODEL}", "tracking.experiment=e2e-fault"]
    first = cli("pipeline", "--json", *_set(work.overrides("lightgbm", *GATE, *names)))
    assert first.code == 0, first.stderr
    assert cli("promote", "1", "--approved-by", "ana", *_set(names)).code == 0
    second = _set(work.overrides("lightgbm", *GATE, *names, "model.params.num_leaves=16"))

    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        service = subprocess.Popen(
            [INNFLOW, "serve", "--model-uri", f"models:/{MODEL}@production", "--port", str(port),
             "--reload-seconds", "1"],
            env=dict(os.environ), cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/health", service, log)
        columns = requests.get(f"http://127.0.0.1:{port}/metadata", timeout=30).json()["columns"]
        payload = {"dataframe_split": _bookings(columns)}
        before = requests.post(f"http://127.0.0.1:{port}/invocations", json=payload, timeout=30)
        assert before.status_code == 200, before.text

        # A second training: kill the server once its run exists on the server.
        argv = [INNFLOW, "pipeline", "--json", *second]
        env = {**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1"}
        training = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)  # fmt: skip
        client = MlflowClient(server.url)
        experiment = client.get_experiment_by_name("e2e-fault").experiment_id
        deadline = time.monotonic() + 300
        while not client.search_runs([experiment], "attributes.status = 'RUNNING'"):
            assert training.poll() is None and time.monotonic() < deadline
            time.sleep(0.5)
        server.kill()
        code = training.wait(300)
        _, stderr = training.communicate()
        assert code == 2, stderr[-2000:]
        assert "Traceback" not in stderr
        last = stderr.strip().splitlines()[-1]
        assert last.startswith("error:") and "cannot be reached" in last, last

        # The service answers with the model it has while the server is down.
        time.sleep(2.5)  # at least two failed alias polls
        for _ in range(3):
            during = requests.post(f"http://127.0.0.1:{port}/invocations", json=payload, timeout=30)
            assert during.status_code == 200 and during.json() == before.json()
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=30).status_code == 200
    finally:
        stop_group(service)

    server.start()
    versions = client.search_model_versions(f"name = '{MODEL}'")
    assert [v.version for v in versions] == ["1"]  # nothing half-registered
    again = cli("pipeline", "--json", *second)
    assert again.code == 0, again.stderr
    outcome = json.loads(again.stdout)
    assert outcome["version"] == "2" and outcome["staged"]
    assert client.get_run(outcome["run_id"]).info.status == "FINISHED"
    assert sorted(v.version for v in client.search_model_versions(f"name = '{MODEL}'")) == [
        "1",
        "2",
    ]
