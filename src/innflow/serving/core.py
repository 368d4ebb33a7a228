"""The prediction core: a loaded model scores columns; no HTTP here. The logged model's
pipeline is the only source of truth; the fast path and compiled trees derived from it
are used only once verified identical (serving/fastpath.py, serving/accelerate.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from innflow import data
from innflow.contract import Contract, checks
from innflow.contract.bookings import of_model
from innflow.serving import accelerate, contract_path
from innflow.serving.fastpath import FastScorer
from innflow.serving.general import (
    THRESHOLD,
    GeneralModel,
    ModelFailed,
    jsonable,
    looks_like_probabilities,
)
from innflow.serving.parsing import Batch
from innflow.serving.signature import InputSchema


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
    general: GeneralModel | None = None  # a model innflow did not train: mlflow.pyfunc
    contract: Contract = data.CONTRACT  # what requests are held to (the run's own contract)
    regression: bool = False  # answers a number per row, no probability or decision
    scorer: Any = None  # another contract's verified fast path (serving/contract_path.py)

    @property
    def predictor(self) -> dict[str, Any]:
        """Which path scores (``innflow``'s pipeline or the ``general`` pyfunc) and, on
        innflow's, which predictor: the compiled one (verified), LightGBM's, the pipeline.
        """
        if self.general is not None:
            output = "class probabilities" if self.general.probabilities else "predictions"
            detail = f"mlflow.pyfunc model ({output}), checked by its signature"
            return {"path": "general", "state": "general", "detail": detail}
        kind = " (regression)" if self.regression else ""
        if self.scorer is not None:
            detail = f"lookup tables and the estimator, verified against the pipeline{kind}"
            return {"path": "innflow", "state": "lookup", "detail": detail}
        if self.fast is None:
            return {"path": "innflow", "state": "exact", "detail": f"scikit-learn pipeline{kind}"}
        return {"path": "innflow", **self.fast.status.to_dict()}

    @property
    def version(self) -> str:
        """Registry version, or the model URI when it is not a registered model."""
        return str(self.description.get("version") or self.description.get("uri", "unknown"))


COMPILE_MODES = ("build", "cached", "off")


def from_logged(
    pipeline: Any,
    description: dict[str, Any],
    example: pd.DataFrame | None = None,
    compile: str = "cached",
    on_compiled: Callable[[LoadedModel], None] | None = None,
) -> LoadedModel:
    """Wrap a logged pipeline with its innflow metadata (threshold, input columns).

    ``compile``: use only a ``cached`` library that `innflow compile` installed (services,
    `innflow score`: they never compile), ``build`` it first (`innflow compile`), or
    ``off``. ``on_compiled`` is called with the model once its compiled predictor is
    verified (the snapshot is written then).
    """
    from innflow.modeling import models

    metadata = description.get("metadata", {})
    columns = list(metadata.get("innflow_input_columns") or pipeline.feature_names_in_)
    kind = models.pipeline_kind(pipeline)
    if kind in ("lightgbm", "xgboost", "random_forest"):
        pipeline.set_params(model__n_jobs=1)
    regression = models.is_regressor(pipeline)
    # The fast path and its compiled trees answer probabilities: a regressor scores exactly.
    supported = not regression and FastScorer.supports(pipeline)
    fast = FastScorer.from_pipeline(pipeline) if supported else None
    threshold = metadata.get("innflow_threshold")
    contract = of_model(metadata)
    model = LoadedModel(
        pipeline, columns, float(0.5 if threshold is None else threshold), description, fast,
        example, contract=contract, regression=regression,
    )  # fmt: skip
    if fast is None and example is not None and not check_frame(example, columns, contract):
        model.scorer = contract_path.verified(
            pipeline, example[columns], columns_of(example, columns)
        )
    if fast is not None and compile != "off":
        examples = []
        if example is not None and not check_frame(example, columns):
            examples.append(fast.matrix(columns_of(example, columns)))
        then = (lambda: on_compiled(model)) if on_compiled is not None else None
        accelerate.accelerate(fast, examples, build=compile == "build", then=then)
    return model


def from_pyfunc(pyfunc: Any, description: dict[str, Any], example: Any) -> LoadedModel:
    """Wrap a model innflow did not train: its signature's checker, and whether it answers
    class probabilities (from its input example's output).
    """
    schema = InputSchema.from_signature(description.get("signature"), description["uri"])
    general = GeneralModel(pyfunc, schema)
    frame = example if isinstance(example, pd.DataFrame) else None
    model = LoadedModel(None, schema.names, THRESHOLD, description, example=frame,
                        general=general)  # fmt: skip
    if frame is not None:
        # a model failing on its own example: the smoke test says so before it serves
        with contextlib.suppress(ModelFailed):
            general.probabilities = looks_like_probabilities(general.predict(frame))
    return model


def check_frame(
    frame: pd.DataFrame, columns: list[str], contract: Contract = data.CONTRACT
) -> bool:
    """True when some row of a DataFrame breaks the schema (or a column is missing)."""
    if not set(columns) <= set(frame.columns):
        return True
    return bool((row_errors(frame, columns, contract) != "").any())


def smoke_test(model: LoadedModel) -> str | None:
    """Score the model's own input example; the problem, or None when it answers sanely."""
    if model.example is None:
        return "the model has no input example to test it with"
    if model.general is not None:
        try:
            predicted = predict(model, general_columns(model, model.example))
        except (ModelFailed, ValueError) as e:
            return f"scoring its input example failed: {e}"
        return None if len(predicted.raw) == len(model.example) else "its output is not per row"
    try:
        if model.regression:
            values = predict(model, columns_of(model.example, model.columns)).columns
            numbers = np.asarray(values["prediction"], dtype="float64")
            return None if np.isfinite(numbers).all() else "its input example got non-numbers"
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


BOOKING_COLUMNS = frozenset(data.SCHEMA)


def unknown_columns(batch: Batch, columns: list[str], known: frozenset[str]) -> list[FieldError]:
    """Fields the model does not take that are neither booking columns nor another
    variant's (``known``): a typo, refused. The others are ignored, as MLflow does.
    """
    used = set(columns)
    unknown = sorted(c for c in batch.columns if c not in used and c not in known)
    return [FieldError(None, c, "unknown column") for c in unknown]  # (sorted: records read
    # from bytes keep no key order)


def ignored(batch: Batch, columns: list[str]) -> list[str]:
    """The request's fields this model does not use (accepted, not scored)."""
    used = set(columns)
    return sorted(c for c in batch.columns if c not in used)


def check(
    batch: Batch, columns: list[str], limit: int = 20, known: frozenset[str] = BOOKING_COLUMNS,
    contract: Contract = data.CONTRACT,
) -> tuple[list[FieldError], dict[str, np.ndarray]]:  # fmt: skip
    """Missing and unknown columns, then per-row types, nulls and domains (the rules of
    ``contract.checks``); with the columns as arrays the model can score when valid.
    """
    errors = [FieldError(None, c, "missing column") for c in columns if c not in batch.columns]
    errors += unknown_columns(batch, columns, known)
    if errors:
        return errors[:limit], {}
    if batch.rows == 0:
        return [FieldError(None, "(body)", "no rows to score")], {}
    arrays = {c: _column_array(batch.columns[c], contract.columns[c].kind) for c in columns}
    for column, problem, mask in checks.row_problems(contract, arrays, tuple(columns)):
        for row in np.flatnonzero(mask)[:limit]:
            errors.append(FieldError(int(row), column, f"value {problem.removeprefix('are ')}"))
    return errors[:limit], arrays


def check_model(
    model: LoadedModel, batch: Batch, known: frozenset[str] = BOOKING_COLUMNS, limit: int = 20
) -> tuple[list[FieldError], dict[str, Any]]:
    """``check`` for innflow's pipeline; for a general model, its signature's rules."""
    if model.general is None:
        return check(batch, model.columns, limit, known, model.contract)
    schema = model.general.schema
    errors = [FieldError(None, c, "missing column") for c in schema.missing(batch.columns)]
    errors += unknown_columns(batch, model.columns, known)
    if errors:
        return errors[:limit], {}
    if batch.rows == 0:
        return [FieldError(None, "(body)", "no rows to score")], {}
    problems, _, typed = schema.convert(batch.columns, batch.rows, limit)
    return [FieldError(r, c, p) for r, c, p in sorted(problems)[:limit]], typed


def general_columns(model: LoadedModel, frame: pd.DataFrame) -> dict[str, Any]:
    """A frame's columns typed by a general model's signature (ValueError when a value
    does not fit it).
    """
    assert model.general is not None
    present = {c: frame[c] for c in model.columns if c in frame.columns}
    problems, _, typed = model.general.schema.convert(present, len(frame), 1)
    if problems:
        row, column, problem = problems[0]
        raise ValueError(f"row {row}, {column}: {problem}")
    return typed


@dataclass(frozen=True)
class Prediction:
    """A request's answer: ``raw`` as /invocations sends it, and per-row ``columns``
    (``probability``/``likely_cancel``, or ``prediction``) for /predict, the log, metrics.
    """

    raw: Any
    columns: dict[str, Any]


def predict(model: LoadedModel, arrays: dict[str, Any]) -> Prediction:
    """Score checked columns on the model's path (``ModelFailed``: the model raised)."""
    if model.regression:
        with np.errstate(all="ignore"):
            values = (
                model.scorer.predict(arrays) if model.scorer is not None
                else np.asarray(model.pipeline.predict(frame_of(arrays, model.columns)), "float64")
            )  # fmt: skip
        return Prediction(values, {"prediction": values})
    if model.general is None:
        proba, decisions = score(model, arrays)
        return Prediction(np.ascontiguousarray(proba),
                          {"probability": proba[:, 1], "likely_cancel": decisions})  # fmt: skip
    frame = model.general.frame(arrays)
    raw = model.general.predict(frame)
    return Prediction(jsonable(raw), model.general.outputs(raw, len(frame)))


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


def model_frame(model: LoadedModel, arrays: dict[str, Any]) -> pd.DataFrame:
    """Checked columns as the DataFrame the model takes (the prediction log's inputs)."""
    if model.general is not None:
        return model.general.frame(arrays)
    return frame_of(arrays, model.columns)


def frame_of(arrays: dict[str, np.ndarray], columns: list[str]) -> pd.DataFrame:
    """Validated arrays as the DataFrame the pipeline takes (its own path, and explain)."""
    return pd.DataFrame({c: arrays[c] for c in columns})


def row_errors(
    frame: pd.DataFrame, columns: list[str], contract: Contract = data.CONTRACT
) -> np.ndarray:
    """Per row the first problem ("adults: value negative"), or "" for a row that can be
    scored: the rules of `check`, for batch scoring that keeps bad rows instead of
    refusing the request.
    """
    reasons = np.full(len(frame), "", dtype=object)
    for column, problem, mask in checks.row_problems(contract, frame, tuple(columns)):
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
        elif model.scorer is not None:
            proba = model.scorer.predict(arrays)
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
    from innflow.evaluation import explain

    if not explain.supports(model.pipeline):
        return None
    frame = frame_of(arrays, model.columns)
    with np.errstate(all="ignore"):
        return explain.explain_bookings(model.pipeline, frame, top)
