"""What a model innflow did not train needs from the bookings, read from its signature.

Pure: column specs (name, MLflow type) in, a decision or a frame out. Used by `register`
(which registered model a logged model belongs in), `gate` (the test window as the model
wants it) and `monitor` (the booking columns to profile).

The rule for the cancellation task: a model belongs to it when more than half of its
signature's inputs are booking columns or are named after one the way one-hot encoders
name their outputs (pandas ``get_dummies``: ``hotel_City Hotel``; scikit-learn's
ColumnTransformer: ``cat__hotel_City Hotel``, ``num__lead_time``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from innflow.data import FORBIDDEN, INPUT_COLUMNS, SCHEMA, TARGET
from innflow.errors import IncompatibleModelError

Task = Literal["cancellation", "other", "unknown"]
InputSpec = tuple[str, str]  # (column name, MLflow type: long, double, string...)

# The booking columns a name may be derived from, longest first, so that
# `arrival_date_week_number_53` is read as `arrival_date_week_number`, not a shorter one.
_BOOKING = sorted((c for c in SCHEMA if c != TARGET), key=len, reverse=True)
FIX_PREPROCESSING = (
    "put the preprocessing inside the logged model (a scikit-learn Pipeline with its "
    "encoder, or a pyfunc) so it takes raw booking columns, and log it again"
)
FIX_LABELS = (
    'log it with pyfunc_predict_fn="predict_proba" (mlflow.sklearn.log_model) or as a '
    "pyfunc that returns the probability of cancellation"
)


def booking_source(name: str) -> str | None:
    """The booking column an input is, or is named after; None when it is neither."""
    base = name.split("__", 1)[1] if "__" in name else name
    if base in SCHEMA and base != TARGET:
        return base
    return next((c for c in _BOOKING if base.startswith(f"{c}_")), None)


def task_of(inputs: list[InputSpec] | None) -> Task:
    """``cancellation`` by the rule above, ``other`` for other data, ``unknown`` without a
    signature (nothing says which data the model takes).
    """
    if not inputs:
        return "unknown"
    ours = sum(booking_source(name) is not None for name, _ in inputs)
    return "cancellation" if 2 * ours > len(inputs) else "other"


def raw_columns(inputs: list[InputSpec]) -> list[str]:
    """The inputs that are booking columns as they are in the data."""
    return [name for name, _ in inputs if name in INPUT_COLUMNS]


def not_in_bookings(inputs: list[InputSpec]) -> list[str]:
    """The inputs the bookings do not have as columns (made outside the model)."""
    return [name for name, _ in inputs if name not in INPUT_COLUMNS]


def model_frame(bookings: pd.DataFrame, inputs: list[InputSpec], model: str) -> pd.DataFrame:
    """The booking rows as the signature asks for them: its columns, cast to its types
    where the values allow it (MLflow would refuse a float column for a long one even
    when every value is whole). Anything else is one line naming the column.
    """
    missing = not_in_bookings(inputs)
    if missing:
        leaky = [m for m in missing if m in FORBIDDEN or m == TARGET]
        if leaky:
            raise IncompatibleModelError(
                f"model {model} takes {', '.join(leaky)}, which is the outcome itself: "
                "retrain it without those columns"
            )
        shown = ", ".join(repr(m) for m in missing[:6]) + (" ..." if len(missing) > 6 else "")
        raise IncompatibleModelError(
            f"model {model} expects {len(missing)} inputs that are not booking columns "
            f"({shown}): they were made outside the model; {FIX_PREPROCESSING}"
        )
    return pd.DataFrame(
        {name: _cast(bookings[name], kind, model) for name, kind in inputs}, index=bookings.index
    )


def _cast(column: pd.Series, kind: str, model: str) -> pd.Series:
    numeric = pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
    if kind in ("double", "float"):
        if not numeric:
            raise _type_error(column.name, kind, "text", model)
        return column.astype("float64" if kind == "double" else "float32")
    if kind in ("long", "integer", "boolean"):
        if not numeric:
            raise _type_error(column.name, kind, "text", model)
        values = column.to_numpy(dtype="float64")
        if np.isnan(values).any():
            raise _type_error(
                column.name, kind, f"{int(np.isnan(values).sum())} missing values", model
            )
        if not (values == np.round(values)).all():
            raise _type_error(column.name, kind, "fractions", model)
        if kind == "boolean":
            if not np.isin(values, (0, 1)).all():
                raise _type_error(column.name, kind, "values other than 0 and 1", model)
            return column.astype(bool)
        return column.astype("int64" if kind == "long" else "int32")
    if kind == "string" and numeric:
        raise _type_error(column.name, kind, "numbers", model)
    return column


def _type_error(name: object, kind: str, found: str, model: str) -> IncompatibleModelError:
    return IncompatibleModelError(
        f"column {name!r}: model {model}'s signature says {kind}, the bookings have {found}: "
        f"log the model with a signature that allows them (an input example with such rows)"
    )


def probabilities(output: object, model: str) -> np.ndarray:
    """p(cancel) per row from what a pyfunc returned: 1-D probabilities (a LightGBM
    booster), an (n, 2) matrix of class probabilities (predict_proba) or one column of
    probabilities. Labels, or anything else, are refused with the fix.
    """
    values = output.to_numpy() if isinstance(output, pd.DataFrame | pd.Series) else output
    values = np.asarray(values)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if not (np.issubdtype(values.dtype, np.floating) and values.size):
        raise _not_probabilities(model, f"{values.dtype} values (labels)")
    inside = bool(((values >= 0) & (values <= 1)).all())
    if values.ndim == 2:
        if values.shape[1] == 2 and inside and np.allclose(values.sum(axis=1), 1, atol=1e-6):
            return values[:, 1].astype("float64")
        raise _not_probabilities(
            model, f"{values.shape[1]} columns per row, not the two class probabilities"
        )
    if values.ndim != 1 or not inside:
        raise _not_probabilities(model, "values outside [0, 1]")
    if np.isin(values, (0.0, 1.0)).all():
        raise _not_probabilities(model, "only 0 and 1 (labels)")
    return values.astype("float64")


def _not_probabilities(model: str, found: str) -> IncompatibleModelError:
    return IncompatibleModelError(
        f"model {model} returns {found}, not probabilities of cancellation: {FIX_LABELS}"
    )
