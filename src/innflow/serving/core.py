"""The prediction core: a loaded model scores a frame; no HTTP here.

The logged MLflow model is the only source of truth: the scikit-learn Pipeline is loaded
from it and called directly (no pyfunc wrapper per request); small requests take the
pandas-free path compiled from that same pipeline (serving/fastpath.py). For small requests the
estimator runs single-threaded: a thread pool costs more than it saves on a few rows, and
LightGBM/XGBoost/HistGB predictions do not depend on the thread count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from innflow import data, explain, models
from innflow.serving.fastpath import FastScorer

# Up to this many bookings a request takes the pandas-free path (identical results);
# beyond it the pipeline's vectorised DataFrame path is faster per row.
FAST_ROWS = 64


@dataclass
class LoadedModel:
    """A model ready to score, with what the service reports about it."""

    pipeline: Any
    columns: list[str]
    threshold: float
    description: dict[str, Any] = field(default_factory=dict)
    fast: FastScorer | None = None
    example: pd.DataFrame | None = None

    @property
    def version(self) -> str:
        """Registry version, or the model URI when it is not a registered model."""
        return str(self.description.get("version") or self.description.get("uri", "unknown"))


def from_logged(
    pipeline: Any, description: dict[str, Any], example: pd.DataFrame | None = None
) -> LoadedModel:
    """Wrap a logged pipeline with its innflow metadata (threshold, input columns)."""
    metadata = description.get("metadata", {})
    columns = list(metadata.get("innflow_input_columns") or pipeline.feature_names_in_)
    kind = models.pipeline_kind(pipeline)
    if kind in ("lightgbm", "xgboost", "random_forest"):
        pipeline.set_params(model__n_jobs=1)
    fast = FastScorer(pipeline) if FastScorer.supports(pipeline) else None
    threshold = float(metadata.get("innflow_threshold", 0.5))
    return LoadedModel(pipeline, columns, threshold, description, fast, example)


def smoke_test(model: LoadedModel) -> str | None:
    """Score the model's own input example; the problem, or None when it answers sanely."""
    if model.example is None:
        return "the model has no input example to test it with"
    try:
        proba, _ = score(model, model.example)
    except Exception as e:  # any failure means: do not serve this model
        return f"scoring its input example failed: {type(e).__name__}: {e}"
    if not (np.isfinite(proba).all() and ((proba >= 0) & (proba <= 1)).all()):
        return "its input example got probabilities outside [0, 1]"
    return None


@dataclass(frozen=True)
class FieldError:
    """One bad value: which row, which field, what is wrong."""

    row: int | None
    field: str
    problem: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"row": self.row, "field": self.field, "problem": self.problem}


def check(frame: pd.DataFrame, columns: list[str], limit: int = 20) -> list[FieldError]:
    """Missing and unknown columns, then per-row types, nulls and domains."""
    errors = [FieldError(None, c, "missing column") for c in columns if c not in frame.columns]
    known = set(columns)
    errors += [FieldError(None, str(c), "unknown column") for c in frame.columns if c not in known]
    if errors:
        return errors
    if frame.empty:
        return [FieldError(None, "(body)", "no rows to score")]
    for column, problem, mask in data.row_problems(frame, tuple(columns)):
        for row in np.flatnonzero(mask)[:limit]:
            errors.append(FieldError(int(row), column, f"value {problem.removeprefix('are ')}"))
    return errors[:limit]


def row_errors(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Per row the first problem ("adults: value negative"), or "" for a row that can be
    scored: the rules of `check`, for batch scoring that keeps bad rows instead of
    refusing the request.
    """
    reasons = np.full(len(frame), "", dtype=object)
    for column, problem, mask in data.row_problems(frame, tuple(columns)):
        reasons[mask & (reasons == "")] = f"{column}: value {problem.removeprefix('are ')}"
    return reasons


def score(model: LoadedModel, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (both classes, as MLflow's pyfunc returns them) and decisions."""
    if model.fast is not None and len(frame) <= FAST_ROWS:
        proba = model.fast.predict_proba(frame[model.columns].to_dict("records"))
    else:
        proba = model.pipeline.predict_proba(frame[model.columns])
    return proba, (proba[:, 1] >= model.threshold)


def reasons(model: LoadedModel, frame: pd.DataFrame, top: int = 5) -> list[list[dict]] | None:
    """Each booking's top contributing features, when the model kind supports it."""
    if not explain.supports(model.pipeline):
        return None
    return [
        explain.explain_booking(model.pipeline, frame.iloc[[i]][model.columns], top)
        for i in range(len(frame))
    ]
