"""MLflow's own tooling serves an innflow model with nothing of innflow installed: the model
carries innflow's uv.lock, and `mlflow models serve --env-manager uv` rebuilds the locked
environment from it (`uv sync --frozen`, no pip inference), in a virtualenv holding only
MLflow.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import mlflow
import numpy as np
import pytest
import requests

from innflow.reproducibility import provenance

MODEL = "models:/hotel-booking-cancellation@production"
UV = shutil.which("uv") or str(provenance.source_root() / ".tools" / "bin" / "uv")
pytestmark = pytest.mark.skipif(not Path(UV).exists(), reason="uv is not installed")


def test_the_model_carries_the_lock_as_a_virtual_project(registry) -> None:
    local = Path(mlflow.artifacts.download_artifacts(MODEL))
    lock = tomllib.loads((local / "uv.lock").read_text())
    (root,) = [p for p in lock["package"] if p["name"] == "innflow"]
    assert root["source"] == {"virtual": "."}  # uv sync installs its dependencies, builds nothing
    ours = tomllib.loads((provenance.source_root() / "uv.lock").read_text())
    assert [p for p in lock["package"] if p["name"] != "innflow"] == [
        p for p in ours["package"] if p["name"] != "innflow"
    ]  # every pinned package is innflow's own lock's
    project = tomllib.loads((local / "pyproject.toml").read_text())
    assert project["tool"]["uv"]["package"] is False
    assert (local / "requirements.txt").read_text().startswith("mlflow==")  # pip's way stays


def test_no_lock_in_the_model_when_mlflow_is_told_not_to(monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_LOG_UV_FILES", "false")
    assert provenance.model_environment() == {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_mlflow_models_serve_rebuilds_the_environment_from_the_lock(registry, tmp_path) -> None:
    _, bookings, _, store = registry
    only_mlflow = tmp_path / "only-mlflow"
    python = only_mlflow / "bin" / "python"
    subprocess.run([UV, "venv", "-q", str(only_mlflow), "--python", sys.executable], check=True)
    subprocess.run(
        [UV, "pip", "install", "-q", "--python", str(python), f"mlflow=={mlflow.__version__}"],
        check=True,
        timeout=600,
    )
    for absent in ("innflow", "lightgbm"):
        found = subprocess.run([str(python), "-c", f"import {absent}"], capture_output=True)
        assert found.returncode != 0, f"{absent} must not be in the MLflow-only environment"

    port, envs = _free_port(), tmp_path / "envs"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "VIRTUAL_ENV"))}
    env |= {
        # MLflow's `uv venv --python X.Y.Z` finds the interpreter here (no download)
        "PATH": os.pathsep.join(
            [
                str(python.parent),
                str(Path(UV).parent),
                str(Path(sys.base_prefix) / "bin"),
                "/usr/bin",
                "/bin",
            ]
        ),
        "UV_PYTHON_DOWNLOADS": "never",
        "MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}",
        "MLFLOW_ENV_ROOT": str(envs),
    }
    log = (tmp_path / "serve.log").open("w")
    command = [str(only_mlflow / "bin" / "mlflow"), "models", "serve", "-m", MODEL,
               "--env-manager", "uv", "--host", "127.0.0.1", "-p", str(port)]  # fmt: skip
    server = subprocess.Popen(
        command, cwd=store, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline and server.poll() is None:
            try:
                if requests.get(f"http://127.0.0.1:{port}/ping", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(1)
        output = (tmp_path / "serve.log").read_text()
        assert server.poll() is None, f"mlflow models serve exited:\n{output[-3000:]}"
        assert "restoring environment with uv sync" in output
        body = json.loads(bookings.to_json(orient="split", index=False))
        answer = requests.post(
            f"http://127.0.0.1:{port}/invocations", json={"dataframe_split": body}, timeout=60
        )
        assert answer.status_code == 200, answer.text
        served = np.array(answer.json()["predictions"])
        expected = mlflow.pyfunc.load_model(MODEL).predict(bookings)
        np.testing.assert_array_equal(served, np.asarray(expected))  # bit for bit
        (restored,) = envs.glob("mlflow-*")
        sites = list(restored.glob("lib/python*/site-packages"))
        lightgbm = importlib.metadata.version("lightgbm")
        assert any((s / f"lightgbm-{lightgbm}.dist-info").is_dir() for s in sites)
        assert not any((s / "innflow").exists() for s in sites)  # its code rides in the model
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
        log.close()
