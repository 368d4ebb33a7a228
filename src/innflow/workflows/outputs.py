"""Files a pipeline tool reads after a command (`--outputs DIR`): DVC's metrics and plots,
and the run a later stage registers.

``data check`` writes ``check.json`` (the file's sha256 and summary). ``train`` writes
``run.json`` (run id, model URI, store), ``metrics.json`` (every evaluation metric, flat, as
`dvc metrics show` reads it) and ``plots/`` (the run's plot images, as `dvc plots show`
renders them). ``register --stage`` writes ``release.json`` (version, gate verdict, staged).
Written once the command's work is recorded.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

from innflow import tracking
from innflow.errors import ConfigError
from innflow.redaction import uri_credentials
from innflow.workflows.train import TrainOutcome

RUN_FILE = "run.json"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def prepare(directory: Path) -> Path:
    """The outputs folder, made and proven writable before any work (exit 2 otherwise), so
    that a command never records a run and then fails on its files.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".innflow-write-check"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"--outputs {directory}: cannot write there ({e.strerror})") from e
    return directory


def _write(path: Path, payload: dict[str, Any]) -> None:
    """JSON with non-finite numbers as null (DVC and most JSON readers refuse NaN)."""
    path.write_text(json.dumps(_finite(payload), indent=2, sort_keys=True, default=str) + "\n")


def write_check_outputs(summary: dict[str, Any], directory: Path) -> None:
    """``check.json``: what `innflow data check` found (path, sha256, rows, columns)."""
    _write(directory / "check.json", summary)


def write_train_outputs(outcome: TrainOutcome, directory: Path) -> None:
    """``run.json``, ``metrics.json`` and ``plots/`` of a finished training run."""
    _write(directory / RUN_FILE, {
        "run_id": outcome.run_id,
        "experiment_id": outcome.experiment_id,
        "model_uri": outcome.model_uri,
        "tracking_uri": uri_credentials(outcome.tracking_uri),
        "predictions_sha256": outcome.predictions_sha256,
    })  # fmt: skip
    _write(directory / "metrics.json", dict(sorted(outcome.metrics.items())))
    plots = directory / "plots"
    if plots.exists():
        shutil.rmtree(plots)  # a stale image of an earlier run must not survive beside these
    tracking.download_artifact(outcome.run_id, "plots", directory)


def write_release_outputs(payload: dict[str, Any], directory: Path) -> None:
    """``release.json``: the registered version, the gate's verdict and checks, staged."""
    _write(directory / "release.json", payload)


def run_of(ref: str) -> str:
    """A run id, or the run a ``run.json`` written by ``train --outputs`` names."""
    path = Path(ref)
    if path.suffix != ".json":
        return ref
    if not path.is_file():
        raise ConfigError(f"{ref}: no such run file (written by `innflow train --outputs DIR`)")
    try:
        written = json.loads(path.read_text())
    except (ValueError, OSError) as e:
        raise ConfigError(f"{ref}: not a run file of `innflow train --outputs`: {e}") from e
    run_id = written.get("run_id") if isinstance(written, dict) else None
    if not isinstance(run_id, str) or not run_id:
        raise ConfigError(f"{ref}: has no run_id (written by `innflow train --outputs DIR`)")
    return run_id
