"""`innflow monitor`: check a batch of bookings (or the serving prediction log) against the
model's reference profile, record the check as a run, and write the JSON, HTML and
Prometheus outputs. Returns the status; the CLI turns an alert into exit 4.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from innflow import data as bookings
from innflow import tracking
from innflow.config import Config
from innflow.contract import Contract
from innflow.contract.bookings import of_model
from innflow.errors import ConfigError, DataValidationError, RunNotFoundError
from innflow.modeling import model_inputs, models
from innflow.monitoring import exposition, page
from innflow.monitoring import profile as profiles
from innflow.monitoring.check import MonitorResult, check
from innflow.monitoring.settings import MonitoringConfig
from innflow.workflows import challenger

DEFAULT_MODEL_URI = "models:/hotel-booking-cancellation@production"
LOG_COLUMNS = ("probability", "model_version", "variant", "scored_at")


def check_writable(*paths: Path | None) -> None:
    """Refuse an output file whose directory does not exist before any work is done."""
    for path in paths:
        if path is not None and not path.parent.is_dir():
            raise ConfigError(f"cannot write {path}: directory {path.parent} does not exist")


@dataclass
class Observed:
    """What was monitored: model inputs, scores, outcomes where known, labelled log rows."""

    source: str
    inputs: pd.DataFrame
    scores: np.ndarray | None
    labels: np.ndarray | None
    log: pd.DataFrame | None


def _outcomes(frame: pd.DataFrame, contract: Contract) -> np.ndarray | None:
    """Outcomes aligned with the rows, NaN where not yet known; None when none is known."""
    target = str(contract.target)
    if target not in frame or not frame[target].notna().any():
        return None
    known = frame[frame[target].notna()]
    bookings.validate(known, (target,), contract)
    return frame[target].to_numpy(dtype="float64")


def _scores(frame: pd.DataFrame, where: str, contract: Contract) -> np.ndarray:
    """The scores a file or log carries: probabilities in [0, 1], or a regression's
    numbers (``prediction``).
    """
    if contract.task == "regression":
        values = pd.to_numeric(frame["prediction"], errors="coerce").to_numpy(dtype="float64")
        bad = int((~np.isfinite(values)).sum())
        if bad:
            raise DataValidationError(f"{where}: column 'prediction': {bad} rows are not numbers")
        return values
    values = pd.to_numeric(frame["probability"], errors="coerce").to_numpy(dtype="float64")
    bad = int((np.isnan(values) | (values < 0) | (values > 1)).sum())
    if bad:
        raise DataValidationError(f"{where}: column 'probability': {bad} rows are not in [0, 1]")
    return values


def _event_times(inputs: pd.DataFrame, contract: Contract) -> pd.Series | None:
    """Each row's event time, when the contract has one and the inputs hold its parts."""
    rule = contract.event_time
    parts = [rule] if isinstance(rule, str) else [rule.year, rule.month, rule.day] if rule else []
    if not parts or not set(parts) <= set(inputs.columns):
        return None
    return bookings.event_times(inputs, contract)


def _score_column(contract: Contract) -> str:
    return "prediction" if contract.task == "regression" else "probability"


def read_batch(
    path: Path, columns: list[str], since: date | None, contract: Contract = bookings.CONTRACT
) -> Observed:
    """A data file (parquet/CSV); its own ``probability`` (a regression's ``prediction``)
    column is used when present (the output of `innflow score`), else the model scores it.
    """
    frame = bookings.read_table(path).reset_index(drop=True)
    inputs = bookings.validate(frame, tuple(columns), contract)
    times = _event_times(inputs, contract) if since is not None else None
    if since is not None and times is not None:
        keep = (times >= pd.Timestamp(since)).to_numpy()
        frame, inputs = frame[keep].reset_index(drop=True), inputs[keep].reset_index(drop=True)
        if frame.empty:
            rule = contract.event_time
            when = rule.name if rule is not None and not isinstance(rule, str) else rule
            raise DataValidationError(f"{path}: no rows whose {when} is on or after {since}")
    column = _score_column(contract)
    scores = _scores(frame, str(path), contract) if column in frame else None
    return Observed(f"batch {path}", inputs, scores, _outcomes(frame, contract), None)


def read_log(
    directory: Path, columns: list[str], since: date | None, version: str | None,
    contract: Contract = bookings.CONTRACT,
) -> Observed:  # fmt: skip
    """The serving prediction log; rows carry outcomes once the target (``is_canceled``)
    has been joined in. Drift is measured on the monitored version's rows (a shadow scores
    the same rows again); the variant comparison (binary models) uses every labelled row.
    """
    if not directory.is_dir():
        raise DataValidationError(f"prediction log directory not found: {directory}")
    files = sorted(directory.glob("*.parquet"))
    if not files:
        raise DataValidationError(f"{directory}: no prediction log files (*.parquet)")
    try:
        frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    except (OSError, ValueError) as e:
        raise DataValidationError(f"{directory}: unreadable prediction log: {e}") from e
    expected = (_score_column(contract), *LOG_COLUMNS[1:])
    missing = [c for c in expected if c not in frame]
    if missing:
        raise DataValidationError(
            f"{directory}: not a prediction log, missing {', '.join(missing)}"
        )
    if since is not None:
        frame = frame[pd.to_datetime(frame["scored_at"], utc=True) >= pd.Timestamp(since, tz="UTC")]
    if frame.empty:
        raise DataValidationError(f"{directory}: no predictions logged on or after {since}")
    frame["model_version"] = frame["model_version"].astype(str)
    ours = frame[frame["model_version"] == version] if version is not None else frame
    ours = (ours if len(ours) else frame).reset_index(drop=True)
    inputs = bookings.validate(ours, tuple(columns), contract)
    labels = _outcomes(ours, contract)
    log = None
    if contract.task == "binary" and _outcomes(frame, contract) is not None:
        labelled = frame[frame[str(contract.target)].notna()]
        log = labelled.assign(probability=_scores(labelled, str(directory), contract))
    return Observed(
        f"log {directory}",
        inputs,
        _scores(ours, str(directory), contract),
        labels,
        log if log is not None and len(log) else None,
    )


@dataclass
class MonitorOutcome:
    """What `innflow monitor` reports."""

    run_id: str
    model: dict[str, str]
    source: str
    result: MonitorResult
    seconds: float

    def to_dict(self) -> dict:
        """JSON form."""
        return {
            "run_id": self.run_id,
            "model": self.model,
            "source": self.source,
            "seconds": self.seconds,
            **self.result.to_dict(),
        }


def load_profile(model_uri: str) -> tuple[profiles.ReferenceProfile, dict[str, Any]]:
    """The model's reference profile and description."""
    payload, described = tracking.reference_profile(model_uri)
    try:
        return profiles.from_dict(payload), described
    except ValidationError as e:
        raise RunNotFoundError(f"model {model_uri} has a malformed reference profile") from e


def monitor(
    config: Config,
    thresholds: MonitoringConfig,
    model_uri: str = DEFAULT_MODEL_URI,
    batch: Path | None = None,
    log: Path | None = None,
    since: date | None = None,
    html_file: Path | None = None,
    prom_file: Path | None = None,
) -> MonitorOutcome:
    """Check a batch or the prediction log against the model's reference; record a run."""
    if (batch is None) == (log is None):
        raise DataValidationError("give exactly one of --batch FILE or --log DIR")
    check_writable(html_file, prom_file)
    tracking.connect(config.tracking.uri)
    profile, described = load_profile(model_uri)
    ours = described["metadata"].get("innflow_input_columns")
    contract = of_model(described["metadata"]) if ours else bookings.CONTRACT
    # A model innflow did not train: the booking columns its signature takes.
    signature = model_inputs.raw_columns(tracking.signature_inputs(described) or [])
    columns = list(ours or signature or profile.features)
    version = described.get("version")
    observed = (
        read_batch(batch, columns, since, contract)
        if batch is not None
        else read_log(log, columns, since, version, contract)  # type: ignore[arg-type]
    )
    scores = observed.scores
    if scores is None and ours:
        pipeline, _ = tracking.load_for_serving(described["resolved_uri"])
        scores = models.predict(pipeline, observed.inputs[columns], threads=os.cpu_count() or 1)
    elif scores is None:
        scores = challenger.scores(described["resolved_uri"], described, observed.inputs)
    started = time.perf_counter()
    result = check(profile, observed.inputs, scores, thresholds, observed.labels, observed.log)
    seconds = time.perf_counter() - started
    model = {
        "name": str(described.get("name") or ""),
        "version": str(version or ""),
        "uri": model_uri,
        "run_id": str(described.get("run_id") or ""),
    }
    context = {
        "model": f"{model_uri} (version {model['version'] or '-'})",
        "input": observed.source,
        "rows": f"{result.rows:,}",
        "since": str(since) if since else "-",
    }
    tags = {
        "innflow.kind": "monitor",
        "innflow.model_name": model["name"],
        "innflow.model_version": model["version"],
        "innflow.model_uri": model_uri,
        "innflow.status": result.status,
        "innflow.monitor_source": observed.source,
        "innflow.monitor_reasons": "; ".join(result.reasons)[:4900] or "none",
        "innflow.shifted_features": ",".join(result.shifted(thresholds.psi_shift)),
    }
    name = f"monitor-v{model['version'] or 'x'}-{result.status}"
    with tracking.run(tracking.MONITORING_EXPERIMENT, name, tags) as active:
        tracking.log_params({f"monitoring.{k}": v for k, v in thresholds.model_dump().items()})
        with tempfile.TemporaryDirectory(prefix="innflow-monitor-") as tmp:
            outcome = MonitorOutcome(active.info.run_id, model, observed.source, result, seconds)
            (Path(tmp) / "monitoring").mkdir()
            (Path(tmp) / "monitoring" / "report.json").write_text(
                json.dumps(outcome.to_dict(), indent=1, default=str)
            )
            rendered = page.render(result, context, thresholds)
            (Path(tmp) / "monitoring.html").write_text(rendered)
            tracking.log_results(
                {**result.metrics(), "duration_check_seconds": seconds}, {}, Path(tmp)
            )
    if html_file is not None:
        html_file.write_text(rendered)
    if prom_file is not None:
        exposition.write_textfile(result, model, prom_file)
    return outcome
