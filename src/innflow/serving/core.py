"""The prediction core: a loaded model scores a frame; no HTTP here.

The logged MLflow model is the only source of truth: the scikit-learn Pipeline is loaded
from it and called directly (no pyfunc wrapper per request); small requests take the
pandas-free path compiled from that same pipeline (serving/fastpath.py). For small requests the
estimator runs single-threaded: a thread pool costs more than it saves on a few rows, and
LightGBM/XGBoost/HistGB predictions do not depend on the thread count. A binary LightGBM
model's trees run compiled once that is verified bit-identical (serving/accelerate.py).
A model started from its snapshot (serving/snapshot.py) has no pipeline until the
registry has confirmed it; scikit-learn is imported only when a pipeline is at hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from innflow import data
from innflow.serving import accelerate
from innflow.serving.fastpath import FastScorer
from innflow.serving.parsing import Batch


@dataclass
class LoadedModel:
    """A model ready to score, with what the service reports about it.

    ``pipeline`` is None for a model started from its snapshot: it scores through ``fast``
    (compiled trees) and cannot explain until the logged model itself is loaded.
    """

    pipeline: Any
    columns: list[str]
    threshold: float
    description: dict[str, Any] = field(default_factory=dict)
    fast: FastScorer | None = None
    example: pd.DataFrame | None = None
    origin: str = "registry"  # or "snapshot": not yet confirmed against the registry
    store_schema: str | None = None  # a snapshot's: the SQLite store's revision when written

    @property
    def predictor(self) -> dict[str, Any]:
        """Which predictor scores: the compiled one (verified), LightGBM's, or the pipeline."""
        if self.fast is None:
            return {"state": "exact", "detail": "scikit-learn pipeline"}
        return self.fast.status.to_dict()

    @property
    def version(self) -> str:
        """Registry version, or the model URI when it is not a registered model."""
        return str(self.description.get("version") or self.description.get("uri", "unknown"))


COMPILE_MODES = ("background", "build", "cached", "off")


def from_logged(
    pipeline: Any,
    description: dict[str, Any],
    example: pd.DataFrame | None = None,
    compile: str = "background",
    on_compiled: Callable[[LoadedModel], None] | None = None,
) -> LoadedModel:
    """Wrap a logged pipeline with its innflow metadata (threshold, input columns).

    ``compile``: build and verify the compiled trees in a background thread (the service),
    ``build`` them before returning (`innflow compile`), use only a ``cached`` library
    (`innflow score`), or ``off``. ``on_compiled`` is called with the model once its
    compiled predictor is verified (the snapshot is written then).
    """
    from innflow import models

    metadata = description.get("metadata", {})
    columns = list(metadata.get("innflow_input_columns") or pipeline.feature_names_in_)
    kind = models.pipeline_kind(pipeline)
    if kind in ("lightgbm", "xgboost", "random_forest"):
        pipeline.set_params(model__n_jobs=1)
    fast = FastScorer.from_pipeline(pipeline) if FastScorer.supports(pipeline) else None
    threshold = float(metadata.get("innflow_threshold", 0.5))
    model = LoadedModel(pipeline, columns, threshold, description, fast, example)
    if fast is not None and compile != "off":
        examples = []
        if example is not None and not check_frame(example, columns):
            examples.append(fast.matrix(columns_of(example, columns)))
        then = (lambda: on_compiled(model)) if on_compiled is not None else None
        accelerate.accelerate(
            fast, examples, compile == "background", compile != "cached", then=then
        )
    return model


def check_frame(frame: pd.DataFrame, columns: list[str]) -> bool:
    """True when some row of a DataFrame breaks the schema (or a column is missing)."""
    return not set(columns) <= set(frame.columns) or bool((row_errors(frame, columns) != "").any())


def smoke_test(model: LoadedModel) -> str | None:
    """Score the model's own input example; the problem, or None when it answers sanely."""
    if model.example is None:
        return "the model has no input example to test it with"
    try:
        proba, _ = score(model, columns_of(model.example, model.columns))
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


def _column_array(values: list[Any] | np.ndarray, kind: str) -> np.ndarray:
    """Floats when every value is a plain number or null (the common case, vectorised
    checks), else objects (checked value by value and refused). Arrays (an Arrow body's
    columns, already float64 or text) are taken as they are.
    """
    if isinstance(values, np.ndarray):
        return values
    if kind != "str" and set(map(type, values)) <= _PLAIN_NUMBERS:
        try:
            return np.array(values, dtype="float64")  # None becomes NaN
        except OverflowError:  # an integer beyond float range
            pass
    return np.fromiter(values, dtype=object, count=len(values))


_PLAIN_NUMBERS = {int, float, type(None)}


def check(
    batch: Batch, columns: list[str], limit: int = 20
) -> tuple[list[FieldError], dict[str, np.ndarray]]:
    """Missing and unknown columns, then per-row types, nulls and domains (the rules of
    ``data.row_problems``); with the columns as arrays the model can score when valid.
    """
    errors = [FieldError(None, c, "missing column") for c in columns if c not in batch.columns]
    known = set(columns)
    unknown = sorted(c for c in batch.columns if c not in known)  # (records read from bytes
    errors += [FieldError(None, c, "unknown column") for c in unknown]  # keep no key order)
    if errors:
        return errors[:limit], {}
    if batch.rows == 0:
        return [FieldError(None, "(body)", "no rows to score")], {}
    arrays = {c: _column_array(batch.columns[c], data.SCHEMA[c][0]) for c in columns}
    for column, problem, mask in data.row_problems(arrays, tuple(columns)):
        for row in np.flatnonzero(mask)[:limit]:
            errors.append(FieldError(int(row), column, f"value {problem.removeprefix('are ')}"))
    return errors[:limit], arrays


def columns_of(frame: pd.DataFrame, columns: list[str]) -> dict[str, Any]:
    """A validated DataFrame's columns as the arrays ``score`` takes: numpy arrays, and
    text columns as pandas keeps them (the fast path looks each distinct value up once;
    as objects, a file's 119k strings took ~7 ms a column to convert, then a dict lookup
    each).
    """
    return {
        c: frame[c].array if isinstance(frame[c].dtype, pd.StringDtype) else frame[c].to_numpy()
        for c in columns
    }


def frame_of(arrays: dict[str, np.ndarray], columns: list[str]) -> pd.DataFrame:
    """Validated arrays as the DataFrame the pipeline takes (its own path, and explain)."""
    return pd.DataFrame({c: arrays[c] for c in columns})


def row_errors(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Per row the first problem ("adults: value negative"), or "" for a row that can be
    scored: the rules of `check`, for batch scoring that keeps bad rows instead of
    refusing the request.
    """
    reasons = np.full(len(frame), "", dtype=object)
    for column, problem, mask in data.row_problems(frame, tuple(columns)):
        reasons[mask & (reasons == "")] = f"{column}: value {problem.removeprefix('are ')}"
    return reasons


def score(model: LoadedModel, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (both classes, as MLflow's pyfunc returns them) and decisions.

    Overflow in a derived feature (a huge price times nights) is IEEE infinity, as in
    training; numpy is told not to warn about it per request.
    """
    with np.errstate(all="ignore"):
        if model.fast is not None:
            proba = model.fast.predict_proba(arrays)
        else:
            proba = model.pipeline.predict_proba(frame_of(arrays, model.columns))
    return proba, (proba[:, 1] >= model.threshold)


def reasons(
    model: LoadedModel, arrays: dict[str, np.ndarray], top: int = 5
) -> list[list[dict]] | None:
    """Each booking's top contributing features, when the model kind supports it (never
    for a model without its pipeline: see ``LoadedModel``).
    """
    if model.pipeline is None:
        return None
    from innflow import explain

    if not explain.supports(model.pipeline):
        return None
    frame = frame_of(arrays, model.columns)
    with np.errstate(all="ignore"):
        return [
            explain.explain_booking(model.pipeline, frame.iloc[[i]], top) for i in range(len(frame))
        ]
