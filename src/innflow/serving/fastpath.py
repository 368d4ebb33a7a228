"""A pandas-free path from booking records to the model matrix, compiled from the fitted
pipeline, for requests of a few bookings.

Per request, the pipeline's DataFrame machinery costs ~15 ms for one booking (feature
derivation 9 ms, ColumnTransformer 6 ms) while the trees take 0.5 ms. This path does the
same arithmetic with numpy on plain arrays and looks categories up in tables read from the
fitted encoder itself (every level pushed through ``encoder.transform`` once), then calls
the same fitted estimator. The logged model stays the single source of truth; tests check
the result is bit-identical to ``pipeline.predict_proba`` over the whole data set.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sklearn.preprocessing import OrdinalEncoder

from innflow.data import MONTH_NUMBER
from innflow.features import ENGINEERING_INPUTS, engineered


def _category_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "none"
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return str(int(value))
    return str(value)


class FastScorer:
    """Scores records (dicts of raw booking columns) like the pipeline, without pandas."""

    def __init__(self, pipeline: Any) -> None:
        encode = pipeline.named_steps["encode"]
        self.estimator = pipeline.named_steps["model"]
        self.categorical = list(encode.transformers_[0][2])
        self.numeric = list(encode.transformers_[1][2])
        ordinal: OrdinalEncoder = encode.named_transformers_["categorical"]
        self.codes = [
            self._codes(ordinal, i, levels) for i, levels in enumerate(ordinal.categories_)
        ]

    def _codes(self, ordinal: OrdinalEncoder, index: int, levels: np.ndarray) -> dict[str, float]:
        """Every known level of one column, encoded by the fitted encoder itself."""
        probe = pd.DataFrame({c: [ordinal.categories_[j][0]] * len(levels)
                              for j, c in enumerate(self.categorical)})  # fmt: skip
        probe[self.categorical[index]] = levels
        encoded = ordinal.transform(probe)[:, index]
        return {str(level): float(code) for level, code in zip(levels, encoded, strict=True)}

    @staticmethod
    def supports(pipeline: Any) -> bool:
        """Trees on ordinal codes only (the linear model's one-hot path stays in sklearn)."""
        encode = pipeline.named_steps["encode"]
        numeric_spec = dict((name, spec) for name, spec, _ in encode.transformers)["numeric"]
        categorical = encode.named_transformers_["categorical"]
        return isinstance(categorical, OrdinalEncoder) and numeric_spec == "passthrough"

    def matrix(self, records: list[dict[Any, Any]]) -> np.ndarray:
        """The encoded model matrix for ``records`` (validated beforehand)."""

        def col(name: str) -> np.ndarray:
            return np.array(
                [r[name] if r[name] is not None else np.nan for r in records], dtype="float64"
            )

        values = {name: col(name) for name in ENGINEERING_INPUTS}
        arrival = [
            date(int(r["arrival_date_year"]), MONTH_NUMBER[r["arrival_date_month"]],
                 int(r["arrival_date_day_of_month"]))
            for r in records
        ]  # fmt: skip
        booked = [
            a - timedelta(days=float(n)) for a, n in zip(arrival, values["lead_time"], strict=True)
        ]
        calendar = {
            "arrival_weekday": np.array([a.weekday() for a in arrival], dtype="float64"),
            "arrival_day_of_year": np.array(
                [a.timetuple().tm_yday for a in arrival], dtype="float64"
            ),
            "booking_weekday": np.array([b.weekday() for b in booked], dtype="float64"),
            "booking_month": np.array([b.month for b in booked], dtype="float64"),
        }
        derived = engineered(values, calendar)
        out = np.empty((len(records), len(self.categorical) + len(self.numeric)), dtype="float64")
        for j, (name, codes) in enumerate(zip(self.categorical, self.codes, strict=True)):
            out[:, j] = [codes.get(_category_text(r[name]), np.nan) for r in records]
        offset = len(self.categorical)
        for j, name in enumerate(self.numeric):
            out[:, offset + j] = derived[name] if name in derived else col(name)
        return out

    def predict_proba(self, records: list[dict[Any, Any]]) -> np.ndarray:
        """Both classes' probabilities, as the pipeline's ``predict_proba``."""
        return self.estimator.predict_proba(self.matrix(records))
