"""The general path: any MLflow pyfunc model with a column signature, for the models
innflow did not train (a notebook's pipeline, a native booster, another data set).

The model is loaded once with ``mlflow.pyfunc.load_model`` and called with a DataFrame
built from the checked request, so it answers what MLflow's own server answers for it;
its output is turned into per-row columns (``probability``/``likely_cancel`` for a model
of two classes' probabilities, ``prediction`` otherwise) in one place, for the service's
answers, the prediction log and `innflow score` alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from innflow.serving.signature import InputSchema

THRESHOLD = 0.5  # the decision on a general model's p(class 1): it carries no threshold


class ModelFailed(Exception):
    """The model raised on input that passed its signature's checks."""


@dataclass
class GeneralModel:
    """A pyfunc model, the checker of its signature, and what its output is."""

    pyfunc: Any
    schema: InputSchema
    probabilities: bool = False  # set from its input example: two columns of p(class)

    def frame(self, typed: dict[str, Any]) -> pd.DataFrame:
        """The checked columns as the DataFrame the pyfunc takes, in signature order."""
        return pd.DataFrame({n: typed[n] for n in self.schema.names if n in typed})

    def predict(self, frame: pd.DataFrame) -> Any:
        """The pyfunc's raw output; any failure of the model is a ``ModelFailed``."""
        try:
            with np.errstate(all="ignore"):
                return self.pyfunc.predict(frame)
        except Exception as e:  # a model may raise anything on input it cannot take
            message = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise ModelFailed(f"{type(e).__name__}: {message}"[:300]) from e

    def outputs(self, raw: Any, rows: int) -> dict[str, Any]:
        """Per-row output columns: ``probability`` and ``likely_cancel`` (at 0.5) for
        class probabilities of two classes, else ``prediction`` (or ``prediction_<c>`` a
        column of a DataFrame output). Raises ``ModelFailed`` when it is not one per row.
        """
        if isinstance(raw, pd.DataFrame):
            found = {("prediction" if raw.shape[1] == 1 else f"prediction_{c}"): raw[c].to_numpy()
                     for c in raw.columns}  # fmt: skip
        else:
            values = raw.to_numpy() if isinstance(raw, pd.Series) else np.asarray(raw)
            if self.probabilities and values.ndim == 2 and values.shape[1] == 2:
                probability = values[:, 1].astype("float64")
                return {"probability": probability, "likely_cancel": probability >= THRESHOLD}
            if values.ndim == 2:
                rows_of = np.empty(len(values), dtype=object)
                rows_of[:] = [list(r) for r in values.tolist()]
                values = rows_of
            found = {"prediction": values}
        if any(np.ndim(v) != 1 or len(v) != rows for v in found.values()):
            raise ModelFailed(f"the model answered {type(raw).__name__}, not one value per row")
        return found


def jsonable(raw: Any) -> Any:
    """The output as MLflow's server puts it under ``predictions``: arrays as (nested)
    lists, a DataFrame (a Series as a one-column one) as records.
    """
    if isinstance(raw, pd.Series):
        raw = pd.DataFrame(raw)
    if isinstance(raw, pd.DataFrame):
        return raw.to_dict(orient="records")
    if isinstance(raw, np.ndarray):
        return np.ascontiguousarray(raw) if raw.dtype.kind in "biuf" else raw.tolist()
    return raw


def looks_like_probabilities(raw: Any) -> bool:
    """Two columns of numbers in [0, 1] summing to 1 per row: ``predict_proba`` of a
    binary classifier.
    """
    if not isinstance(raw, np.ndarray) or raw.ndim != 2 or raw.shape[1] != 2:
        return False
    if raw.dtype.kind != "f" or not len(raw):
        return False
    return bool(((raw >= 0) & (raw <= 1)).all() and np.allclose(raw.sum(axis=1), 1.0))
