"""The reference profile: what a model's inputs and scores looked like when it was trained,
small enough to ride inside the logged model (``innflow_reference_profile`` in its metadata)
so that monitoring needs nothing but the model URI.

Numbers get quantile bins (for PSI) and a quantile sketch (for the Wasserstein distance);
categories get their most frequent levels plus an "other" bucket. Calendar columns are left
out: a month of bookings always differs from a two-year window in its arrival dates, and
that is not drift.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from innflow.contract import Contract
from innflow.data import CONTRACT
from innflow.monitoring.performance import figures

FORMAT = 1
# The calendar moves by design; season shows up in lead time, ADR and the mix instead.
CALENDAR = (
    "arrival_date_year",
    "arrival_date_month",
    "arrival_date_week_number",
    "arrival_date_day_of_month",
)
# Numeric codes that name things (travel agent, company): profiled as categories.
IDENTIFIERS = ("agent", "company")
OTHER = "(other)"
MISSING = "(missing)"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NumericProfile(_Frozen):
    """Quantile bins (right-closed, open at both ends) with shares, a quantile sketch, and
    the share of nulls.
    """

    edges: list[float]
    shares: list[float]
    missing: float
    quantiles: list[float]
    std: float


class CategoricalProfile(_Frozen):
    """The most frequent levels with their shares; the rest is ``(other)``."""

    levels: list[str]
    shares: list[float]
    other: float


class Performance(_Frozen):
    """The model's held-out figures, the yardstick for decay."""

    rows: int
    roc_auc: float
    brier: float
    ece: float
    cancel_rate: float


class Errors(_Frozen):
    """A regression model's held-out errors, the yardstick for its decay."""

    rows: int
    rmse: float
    mae: float
    bias: float
    target_mean: float


class ReferenceProfile(_Frozen):
    """Everything monitoring compares a batch with."""

    format: int = FORMAT
    rows: int
    numeric: dict[str, NumericProfile]
    categorical: dict[str, CategoricalProfile]
    prediction: NumericProfile
    performance: Performance | None = None
    errors: Errors | None = None  # a regression model's, instead of performance

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form (logged as ``reference/profile.json`` and in the model)."""
        return self.model_dump(mode="json")

    @property
    def features(self) -> list[str]:
        """Profiled input columns."""
        return [*self.numeric, *self.categorical]


def is_categorical(column: str, contract: Contract = CONTRACT) -> bool:
    """Whether drift of ``column`` is measured on levels rather than on numbers."""
    declared = contract.columns[column]
    return declared.type == "text" or column in IDENTIFIERS or declared.role == "identifier"


def profiled(columns: list[str], contract: Contract = CONTRACT) -> list[str]:
    """The columns whose drift is watched: the contract's, less the calendar (dates and
    the event time's parts move by design).
    """
    return [
        c for c in columns
        if c in contract.columns and c not in CALENDAR
        and contract.columns[c].role != "time_part" and contract.columns[c].type != "date"
    ]  # fmt: skip


def _label(value: object) -> str:
    if pd.isna(value):  # type: ignore[call-overload]
        return MISSING
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def level_shares(values: pd.Series) -> pd.Series:
    """Share of each level, most frequent first; nulls as ``(missing)``, identifier codes
    without ``.0``. Counted before labelling: a few distinct values, not every row, become
    text.
    """
    counts = values.value_counts(dropna=False, normalize=True, sort=False)
    shares = pd.Series(counts.to_numpy(), index=[_label(v) for v in counts.index], dtype=float)
    shares = shares.groupby(level=0, sort=True).sum()
    return shares.sort_values(ascending=False, kind="stable")


def bin_index(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Bin of each value: i such that edges[i-1] < v <= edges[i] (len(edges)+1 bins)."""
    return np.searchsorted(edges, values, side="left")


def numeric_profile(values: np.ndarray, bins: int = 10, sketch: int = 100) -> NumericProfile:
    """Quantile bins of the non-null values (ties collapse: a column that is mostly 0 gets
    a bin for 0 and bins above it) and a sketch: the quantiles at the midpoints of
    ``sketch`` equal slices, each standing for 1/sketch of the values (so min and max do
    not get a whole point's weight).
    """
    values = np.asarray(values, dtype="float64")
    present = values[~np.isnan(values)]
    missing = 1.0 - len(present) / len(values) if len(values) else 0.0
    if not len(present):
        return NumericProfile(edges=[], shares=[1.0], missing=missing, quantiles=[], std=0.0)
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]))
    counts = np.bincount(bin_index(edges, present), minlength=len(edges) + 1)
    return NumericProfile(
        edges=[float(e) for e in edges],
        shares=[float(c) for c in counts / len(present)],
        missing=float(missing),
        quantiles=[float(q) for q in np.quantile(present, (np.arange(sketch) + 0.5) / sketch)],
        std=float(present.std()),
    )


def categorical_profile(values: pd.Series, max_levels: int = 20) -> CategoricalProfile:
    """Shares of the ``max_levels`` most frequent levels; rarer ones pooled as ``(other)``."""
    kept = level_shares(values).iloc[:max_levels]
    return CategoricalProfile(
        levels=[str(v) for v in kept.index],
        shares=[float(s) for s in kept.to_numpy()],
        other=float(max(0.0, 1.0 - kept.sum())),
    )


def build(
    training: pd.DataFrame,
    scores: np.ndarray,
    labels: np.ndarray | None = None,
    bins: int = 10,
    max_levels: int = 20,
    calibration_bins: int = 10,
    contract: Contract = CONTRACT,
) -> ReferenceProfile:
    """Profile the training window's input columns and a set of held-out scores.

    The scores should be out-of-sample (the test window at training time): in-sample
    scores are sharper than anything the model will see live, so prediction drift against
    them would always fire. With ``labels`` the held-out performance (a regression's
    errors) is kept too.
    """
    columns = profiled(list(training.columns), contract)
    categorical = [c for c in columns if is_categorical(c, contract)]
    numeric = {
        c: numeric_profile(training[c].to_numpy(dtype="float64"), bins)
        for c in columns
        if c not in categorical
    }
    scores = np.asarray(scores, dtype="float64")
    performance, errors = None, None
    if labels is not None and contract.task == "regression" and len(labels):
        y = np.asarray(labels, dtype="float64")
        errors = Errors(
            rows=len(y), rmse=float(np.sqrt(np.mean((scores - y) ** 2))),
            mae=float(np.mean(np.abs(scores - y))), bias=float(np.mean(scores - y)),
            target_mean=float(y.mean()),
        )  # fmt: skip
    elif labels is not None and len(np.unique(labels)) == 2:
        found = figures(labels, scores, calibration_bins)
        performance = Performance(
            rows=len(labels),
            roc_auc=found["roc_auc"],
            brier=found["brier"],
            ece=found["ece"],
            cancel_rate=found["cancel_rate"],
        )
    return ReferenceProfile(
        rows=len(training),
        numeric=numeric,
        categorical={c: categorical_profile(training[c], max_levels) for c in categorical},
        prediction=numeric_profile(scores, bins),
        performance=performance,
        errors=errors,
    )


def from_dict(payload: dict[str, Any]) -> ReferenceProfile:
    """Read a profile back (raises pydantic's ValidationError on a malformed one)."""
    return ReferenceProfile.model_validate(payload)
