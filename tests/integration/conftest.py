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
