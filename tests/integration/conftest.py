from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import SAMPLE

# Small models keep the suite fast; the full-size defaults run in benchmarks/.
FAST = {
    "logreg": [],
    "random_forest": ["model.params.n_estimators=30"],
    "hist_gb": ["model.params.max_iter=40"],
    "lightgbm": ["model.params.n_estimators=40"],
    "xgboost": ["model.params.n_estimators=40"],
}


@dataclass
class Workdir:
    path: Path
    data: Path
    store: str

    def overrides(self, kind: str = "lightgbm", *extra: str) -> list[str]:
        return [f"data.path={self.data}", f"model.kind={kind}", *FAST[kind], *extra]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workdir:
    """A fresh directory with its own copy of the sample data and an empty SQLite store."""
    data = tmp_path / "data" / "bookings.parquet"
    data.parent.mkdir()
    shutil.copy(SAMPLE, data)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    import mlflow

    # An earlier test's set_tracking_uri outranks the environment: plain MLflow calls in
    # the test (as a user's script makes them) must land in this store too.
    mlflow.set_tracking_uri(store)
    return Workdir(tmp_path, data, store)


@pytest.fixture(autouse=True)
def _no_stray_runs(monkeypatch: pytest.MonkeyPatch):
    """End any run a test left active and forget the experiment MLflow put in the
    environment (set_experiment exports MLFLOW_EXPERIMENT_ID), so each test starts clean."""
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    yield
    if "mlflow" in sys.modules:
        import mlflow

        while mlflow.active_run() is not None:
            mlflow.end_run()
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """Run `innflow ARGS` in-process through the real entry point (error mapping included)."""
    from innflow.cli import main

    def run(*args: str) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["innflow", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="package")
def registered(tmp_path_factory):
    """A LightGBM model on production and a logreg on staging (sample data, FAST sizes),
    trained once for the package; yields (loaded production model, 20 test bookings,
    production version, store directory)."""
    from innflow import config
    from innflow.serving.loading import load
    from innflow.steps.training import prepare
    from innflow.workflows.registry import move_alias, register
    from innflow.workflows.train import train

    path = tmp_path_factory.mktemp("serving")
    shutil.copy(SAMPLE, path / "bookings.parquet")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(path)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{path / 'mlflow.db'}")
        cfg = config.load(None, [f"data.path={path / 'bookings.parquet'}", *FAST["lightgbm"]])
        run = train(cfg, 1)
        version, _ = register(run.run_id, cfg)
        move_alias(cfg, version, "production", "tester", "serving test", force=True)
        model = load("models:/hotel-booking-cancellation@production")
        other = config.load(None, [f"data.path={path / 'bookings.parquet'}", "model.kind=logreg"])
        second, _ = register(train(other, 1).run_id, other)
        move_alias(other, second, "staging", "tester", "serving test", force=True)
        bookings = prepare(cfg).features("test").head(20).reset_index(drop=True)
    return model, bookings, version, path


@pytest.fixture
def registry(registered, monkeypatch: pytest.MonkeyPatch):
    """``registered``, with this test pointed at its store (environment and directory)."""
    path = registered[3]
    monkeypatch.chdir(path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{path / 'mlflow.db'}")
    return registered


@pytest.fixture
def reloadable(registry):
    """An app over the production alias with a registry source; aliases restored after."""
    from fastapi.testclient import TestClient
    from mlflow.tracking import MlflowClient

    from innflow.serving.app import create_app
    from innflow.serving.loading import RegistrySource
    from innflow.serving.settings import ServiceSettings as Settings

    _, bookings, version, _ = registry
    source = RegistrySource("hotel-booking-cancellation", ["production=100"], [])
    app = create_app(source.load(), Settings(admin_token="s3cret"), source)
    client = MlflowClient()
    yield TestClient(app), client, bookings, version
    client.set_registered_model_alias("hotel-booking-cancellation", "production", version)
