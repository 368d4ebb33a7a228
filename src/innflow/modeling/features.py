"""The preprocessing half of the model Pipeline: raw columns in, model matrix out.

The bookings get their engineered features (``BookingFeatures``); any other set of inputs
(another contract's, or the bookings' without a column those features need) gets each
column as it is, with dates as their calendar parts (``ContractFeatures``). Everything is
computable from the row itself; nothing looks at other rows' outcomes, so the same
transform is valid in training, serving and replay.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from innflow.contract import Contract, DateRule
from innflow.data import MONTH_NUMBER
from innflow.modeling.engineered import ENGINEERED, ENGINEERING_INPUTS, engineered

CATEGORICAL = (
    "hotel", "arrival_date_month", "meal", "country", "market_segment", "distribution_channel",
    "reserved_room_type", "assigned_room_type", "deposit_type", "customer_type", "agent", "company",
)  # fmt: skip


class BookingFeatures(TransformerMixin, BaseEstimator):
    """Derive booking-time features and put categoricals in a fixed string form.

    Stateless: ``fit`` only remembers which raw columns it saw, so the fitted pipeline
    refuses frames that lack them instead of silently inventing values.
    """

    def fit(self, X: pd.DataFrame, y: object = None) -> BookingFeatures:
        """Remember the raw input columns."""
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Engineered features first, then the raw columns (categoricals as text)."""
        values = {name: X[name].to_numpy(dtype="float64") for name in ENGINEERING_INPUTS}
        month = X["arrival_date_month"].map(MONTH_NUMBER).to_numpy(dtype="float64")
        parts = {
            "year": X["arrival_date_year"],
            "month": month,
            "day": X["arrival_date_day_of_month"],
        }
        arrival = pd.to_datetime(pd.DataFrame(parts), errors="coerce")
        booked = arrival - pd.to_timedelta(values["lead_time"], unit="D")
        calendar = {
            "arrival_weekday": arrival.dt.day_of_week.to_numpy(dtype="float64"),
            "arrival_day_of_year": arrival.dt.day_of_year.to_numpy(dtype="float64"),
            "booking_weekday": booked.dt.day_of_week.to_numpy(dtype="float64"),
            "booking_month": booked.dt.month.to_numpy(dtype="float64"),
        }
        out = engineered(values, calendar)
        frame = pd.DataFrame(out, index=X.index)
        for name in self.feature_names_in_:  # extra columns are ignored, as in serving
            if name in CATEGORICAL:
                frame[name] = _as_category_text(X[name])
            else:
                frame[name] = X[name].to_numpy(dtype="float64")
        return frame

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Names of the transformed columns, in order."""
        names = list(ENGINEERED) + list(self.feature_names_in_)
        return np.asarray(names, dtype=object)


CALENDAR_PARTS = ("year", "month", "day", "weekday", "day_of_year")


class ContractFeatures(TransformerMixin, BaseEstimator):
    """Columns as the model sees them, by their contract type: text as category text, a
    date column as its calendar parts, month names as 1..12, numbers as float64.

    ``text``, ``dates`` and ``months`` (column, names in calendar order) come from the
    contract when the pipeline is built, so the fitted pipeline carries them.
    """

    def __init__(
        self, text: tuple[str, ...] = (), dates: tuple[str, ...] = (),
        months: tuple[tuple[str, tuple[str, ...]], ...] = (),
    ) -> None:  # fmt: skip
        self.text = text
        self.dates = dates
        self.months = months

    def fit(self, X: pd.DataFrame, y: object = None) -> ContractFeatures:
        """Remember the raw input columns."""
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Each input column as one or more model columns, in input order."""
        months = dict(self.months)
        frame = pd.DataFrame(index=X.index)
        for name in self.feature_names_in_:
            if name in self.dates:
                when = pd.to_datetime(X[name], errors="coerce")
                parts = (when.dt.year, when.dt.month, when.dt.day, when.dt.day_of_week,
                         when.dt.day_of_year)  # fmt: skip
                for part, values in zip(CALENDAR_PARTS, parts, strict=True):
                    frame[f"{name}_{part}"] = values.to_numpy(dtype="float64")
            elif name in months:
                numbers = {m: float(i) for i, m in enumerate(months[name], 1)}
                frame[name] = X[name].map(numbers).to_numpy(dtype="float64")
            elif name in self.text:
                frame[name] = _as_category_text(X[name])
            else:
                frame[name] = X[name].to_numpy(dtype="float64")
        return frame

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Names of the transformed columns, in order."""
        return np.asarray(_contract_names(self.feature_names_in_, self.dates), dtype=object)


def _contract_names(columns: object, dates: tuple[str, ...]) -> list[str]:
    names: list[str] = []
    for name in columns:  # type: ignore[attr-defined]
        names += [f"{name}_{p}" for p in CALENDAR_PARTS] if name in dates else [name]
    return names


def _as_category_text(series: pd.Series) -> np.ndarray:
    """Categories as plain strings: ids stay ids ("9", not "9.0"), missing becomes "none"."""
    if pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(dtype="float64")
        text = np.where(np.isnan(values), "none", np.nan_to_num(values).astype("int64").astype(str))
        return text.astype(object)
    return series.astype(object).where(series.notna(), "none").to_numpy(dtype=object)


def booking_features_apply(input_columns: list[str]) -> bool:
    """Whether the bookings' engineered features can be computed from these inputs."""
    needed = {*ENGINEERING_INPUTS, "arrival_date_year", "arrival_date_month",
              "arrival_date_day_of_month"}  # fmt: skip
    return needed <= set(input_columns)


def features_step(contract: Contract, input_columns: list[str]) -> TransformerMixin:
    """The first step of a pipeline on these inputs (see the module's docstring)."""
    if booking_features_apply(input_columns):
        return BookingFeatures()
    columns = [contract.columns[c] for c in input_columns]
    rule = contract.event_time
    months = tuple(
        (c.name, tuple(c.categories or ())) for c in columns
        if isinstance(rule, DateRule) and c.name == rule.month
    )  # fmt: skip
    month_names = {m for m, _ in months}
    return ContractFeatures(
        text=tuple(c.name for c in columns if c.type == "text" and c.name not in month_names),
        dates=tuple(c.name for c in columns if c.type == "date"),
        months=months,
    )


def model_columns(
    step: TransformerMixin, input_columns: list[str], exclude: list[str]
) -> tuple[list[str], list[str]]:
    """(categorical, numeric) feature names the estimator sees, in a fixed order."""
    used = [c for c in input_columns if c not in exclude]
    if isinstance(step, ContractFeatures):
        categorical = [c for c in used if c in step.text]
        rest = [c for c in used if c not in step.text]
        return categorical, _contract_names(rest, step.dates)
    categorical = [c for c in used if c in CATEGORICAL]
    numeric = [c for c in ENGINEERED] + [c for c in used if c not in CATEGORICAL]
    return categorical, numeric


def encoder(
    kind: str, categorical: list[str], numeric: list[str], min_count: int
) -> ColumnTransformer:
    """Encode the engineered frame for an estimator family.

    Trees get ordinal codes (rare levels grouped, unseen levels as missing) so LightGBM and
    HistGB can treat them as native categoricals; the linear model gets one-hot columns and
    scaled numbers. Categoricals come first, so their indices are ``range(len(categorical))``.
    """
    if kind == "logreg":
        cat = OneHotEncoder(
            handle_unknown="infrequent_if_exist", min_frequency=min_count, sparse_output=False
        )
        num = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    else:
        cat = OrdinalEncoder(
            handle_unknown="use_encoded_value",
            unknown_value=np.nan,
            encoded_missing_value=np.nan,
            min_frequency=min_count,
            max_categories=250,
            dtype=np.float64,
        )
        num = "passthrough"
    return ColumnTransformer(
        [("categorical", cat, categorical), ("numeric", num, numeric)],
        remainder="drop",
        verbose_feature_names_out=False,
    )
