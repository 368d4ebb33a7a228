"""A pandas-free path from booking columns to the model matrix, compiled from the fitted
pipeline: the same arithmetic on numpy arrays (a DataFrame per request costs ~30x the
trees), tested bit-identical to ``pipeline.predict_proba``; other pipelines are refused by
``supports`` and served by the pipeline itself (docs/reference/serving.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from innflow.data import month_numbers
from innflow.modeling.engineered import ENGINEERING_INPUTS, engineered
from innflow.serving.accelerate import PredictorStatus
from innflow.serving.compiled import CompiledTrees

if TYPE_CHECKING:  # scikit-learn is imported only with a pipeline (not for a snapshot)
    from sklearn.preprocessing import OrdinalEncoder

STEPS = ("features", "encode", "model")
CORES = os.cpu_count() or 1  # asked once: the call reads sysfs (~60 us a request)


class _Codes(dict):
    """Level -> code, where a value that is not a key is looked up as the pipeline would
    spell it (``features._as_category_text``): a missing value is the "none" level, a
    number in an object array its id, anything else unseen (NaN). Only misses run Python
    code; they are never stored, so unseen values in requests cannot grow it.
    """

    def __init__(self, table: dict[Any, float], none: float, ids: dict[float, float]) -> None:
        super().__init__(table)
        self.none, self.ids = none, ids

    def __missing__(self, key: Any) -> float:
        if pd.isna(key):
            return self.none
        if isinstance(key, (int, float, np.integer, np.floating)) and not isinstance(
            key, (bool, np.bool_)
        ):
            return self.ids.get(float(np.trunc(key)), np.nan)
        return np.nan


class LookupTable:
    """A fitted mapping from a category's text to a number (NaN when the level is unseen).

    Values are looked up as they come, with no text made of them: strings by their text,
    numbers (``agent``, ``company``) by their whole value against the levels that are ids
    ("9"), missing values as "none". The same codes as the encoder gives the pipeline's
    text, at a third of the cost of building that text (no strings made of ids, no pandas
    Index per request).
    """

    def __init__(self, column: str, table: dict[str, float]) -> None:
        self.column, self.table = column, table
        self._none = table.get("none", np.nan)
        self._ids = {float(level): code for level, code in table.items() if _is_id(level)}
        self._text = _Codes(table, self._none, self._ids)
        # the ids sorted, with their codes: numbers are looked up by a binary search
        self._id_keys = np.array(sorted(self._ids), dtype="float64")
        self._id_codes = np.array([self._ids[k] for k in self._id_keys.tolist()], dtype="float64")

    def __call__(self, values: Any) -> np.ndarray:
        """Look every value up (numbers, or text and nulls). A pandas text column (a file's)
        is looked up once per distinct value: its 119k strings never become objects.
        """
        if _is_text_array(values):
            return _per_level(values, self, self._none)
        values = np.asarray(values)
        if values.dtype.kind in "iuf":  # ids are whole: 9.7 is "9"; NaN is "none"
            numbers = np.trunc(values.astype("float64"))
            found = np.full(len(numbers), np.nan)
            if len(self._id_keys):
                at = np.minimum(np.searchsorted(self._id_keys, numbers), len(self._id_keys) - 1)
                hit = self._id_keys[at] == numbers
                found[hit] = self._id_codes[at[hit]]
            found[np.isnan(numbers)] = self._none
            return found
        return np.fromiter(map(self._text.__getitem__, values), "float64", len(values))


def _is_text_array(values: Any) -> bool:
    return isinstance(getattr(values, "dtype", None), pd.StringDtype)


def _per_level(values: Any, convert: Callable[[np.ndarray], np.ndarray], null: float) -> np.ndarray:
    """``convert`` of a pandas text column, run once per distinct value (its levels as
    objects) and spread back over the rows; nulls get ``null``.
    """
    codes, levels = pd.factorize(values)  # nulls: code -1
    found = convert(np.asarray(levels, dtype=object))
    return np.where(codes < 0, null, found[codes] if len(found) else null)


def _month_numbers(names: Any) -> np.ndarray:
    """Valid month names as 1..12, a pandas text column once per distinct value."""
    if _is_text_array(names):
        return _per_level(names, month_numbers, np.nan)
    return month_numbers(names)


def _is_id(level: str) -> bool:
    """A level the pipeline writes for a number: its whole value in decimal."""
    try:
        return str(int(level)) == level
    except ValueError:
        return False


def calendar(
    year: np.ndarray, month_name: Any, day: np.ndarray, lead_time: np.ndarray
) -> dict[str, np.ndarray]:
    """Arrival weekday and day of year, booking weekday and month, with numpy dates
    (the pipeline uses pandas datetimes; both are exact integer arithmetic on valid dates).
    """
    month = _month_numbers(month_name).astype("int64")  # valid names: no NaN
    arrival = (
        (year.astype("int64") - 1970).astype("timedelta64[Y]") + np.datetime64("1970", "Y")
    ).astype("datetime64[M]")
    arrival = (arrival + (month - 1).astype("timedelta64[M]")).astype("datetime64[D]")
    arrival = arrival + (day.astype("int64") - 1).astype("timedelta64[D]")
    booked = arrival - lead_time.astype("int64").astype("timedelta64[D]")

    def weekday(days: np.ndarray) -> np.ndarray:
        return ((days.astype("int64") + 3) % 7).astype("float64")  # 1970-01-01 was a Thursday

    year_start = arrival.astype("datetime64[Y]").astype("datetime64[D]")
    return {
        "arrival_weekday": weekday(arrival),
        "arrival_day_of_year": ((arrival - year_start).astype("int64") + 1).astype("float64"),
        "booking_weekday": weekday(booked),
        "booking_month": (booked.astype("datetime64[M]").astype("int64") % 12 + 1).astype(
            "float64"
        ),
    }


class FastScorer:
    """Scores validated booking columns like the pipeline, without pandas DataFrames.

    Built from a fitted pipeline (``from_pipeline``), or from its tables and a verified
    compiled predictor alone (``from_tables``, serving/snapshot.py): then no estimator is
    at hand, and the compiled trees are the only predictor.
    """

    def __init__(
        self,
        categorical: list[str],
        numeric: list[str],
        lookups: list[LookupTable],
        estimator: Any = None,
        trees: CompiledTrees | None = None,
    ) -> None:
        self.categorical, self.numeric, self.lookups = categorical, numeric, lookups
        self.estimator = estimator
        self.booster = (
            estimator.booster_ if estimator is not None and _is_binary_lightgbm(estimator) else None
        )
        self.trees = trees  # set by accelerate.accelerate once verified
        # None: the compiled trees split requests above their own size threshold over every
        # core and LightGBM's predictor runs single-threaded (a few rows a request);
        # `innflow score` sets every core for both.
        self.threads: int | None = None
        self.status = PredictorStatus()

    @classmethod
    def from_pipeline(cls, pipeline: Any) -> FastScorer:
        """The lookup tables read from the fitted encoder, and its fitted estimator."""
        encode = pipeline.named_steps["encode"]
        categorical = list(encode.transformers_[0][2])
        ordinal = encode.named_transformers_["categorical"]
        lookups = [
            LookupTable(categorical[i], cls._codes(ordinal, categorical, i, levels))
            for i, levels in enumerate(ordinal.categories_)
        ]
        estimator = pipeline.named_steps["model"]
        return cls(categorical, list(encode.transformers_[1][2]), lookups, estimator)

    @classmethod
    def from_tables(cls, tables: dict[str, Any], trees: CompiledTrees) -> FastScorer:
        """From ``tables()`` and the compiled predictor verified for the same model."""
        lookups = [LookupTable(c, tables["lookups"][c]) for c in tables["categorical"]]
        scorer = cls(list(tables["categorical"]), list(tables["numeric"]), lookups, None, trees)
        library = str(trees.library)
        scorer.status = PredictorStatus("compiled", "from the start-up snapshot", library)
        return scorer

    def tables(self) -> dict[str, Any]:
        """Everything but the predictor, as JSON-able data."""
        return {
            "categorical": self.categorical,
            "numeric": self.numeric,
            "lookups": {lookup.column: lookup.table for lookup in self.lookups},
        }

    @staticmethod
    def _codes(
        ordinal: OrdinalEncoder, categorical: list[str], index: int, levels: np.ndarray
    ) -> dict[str, float]:
        """Every known level of one column, encoded by the fitted encoder itself."""
        probe = pd.DataFrame({c: [ordinal.categories_[j][0]] * len(levels)
                              for j, c in enumerate(categorical)})  # fmt: skip
        probe[categorical[index]] = levels
        encoded = ordinal.transform(probe)[:, index]
        return {str(level): float(code) for level, code in zip(levels, encoded, strict=True)}

    @staticmethod
    def supports(pipeline: Any) -> bool:
        """The steps this path knows: the bookings' features, trees on ordinal codes (the
        linear model's one-hot path stays in sklearn).
        """
        from sklearn.preprocessing import OrdinalEncoder

        from innflow.modeling.features import BookingFeatures

        if tuple(pipeline.named_steps) != STEPS:
            return False
        if not isinstance(pipeline.named_steps["features"], BookingFeatures):
            return False  # another data set's features: the pipeline computes them
        encode = pipeline.named_steps["encode"]
        numeric_spec = dict((name, spec) for name, spec, _ in encode.transformers)["numeric"]
        categorical = encode.named_transformers_["categorical"]
        return isinstance(categorical, OrdinalEncoder) and numeric_spec == "passthrough"

    def matrix(self, columns: Mapping[str, Any]) -> np.ndarray:
        """The encoded model matrix for validated columns (floats for numbers; text as
        objects, or a file's pandas text arrays), in the encoder's column order.
        """
        values = {name: np.asarray(columns[name], dtype="float64") for name in ENGINEERING_INPUTS}
        dates = calendar(
            np.asarray(columns["arrival_date_year"], dtype="float64"),
            columns["arrival_date_month"],
            np.asarray(columns["arrival_date_day_of_month"], dtype="float64"),
            values["lead_time"],
        )
        derived = engineered(values, dates)
        rows = len(values["lead_time"])
        out = np.empty((rows, len(self.categorical) + len(self.numeric)), dtype="float64")
        for j, lookup in enumerate(self.lookups):
            out[:, j] = lookup(columns[lookup.column])
        offset = len(self.categorical)
        for j, name in enumerate(self.numeric):
            out[:, offset + j] = (
                derived[name] if name in derived else np.asarray(columns[name], dtype="float64")
            )
        return out

    def predict_proba(self, columns: Mapping[str, Any]) -> np.ndarray:
        """Both classes' probabilities, as the pipeline's ``predict_proba``."""
        matrix = self.matrix(columns)
        trees = self.trees
        if trees is not None:
            cancel = trees.predict(matrix, threads=self.threads or CORES)
        elif self.booster is not None:
            # LightGBM's scikit-learn wrapper re-validates the matrix on every call (~3 ms,
            # most of a one-booking request); its booster computes the same numbers.
            cancel = self.booster.predict(matrix, num_threads=self.threads or 1)
        else:
            return self.estimator.predict_proba(matrix)
        out = np.empty((len(cancel), 2))
        out[:, 0] = 1.0 - cancel
        out[:, 1] = cancel
        return out


def _is_binary_lightgbm(estimator: Any) -> bool:
    return (
        type(estimator).__name__ == "LGBMClassifier"
        and getattr(estimator, "n_classes_", 0) == 2
        and not callable(estimator.objective)
    )
