"""Everything innflow computes about a fitted model: the threshold (chosen on validation),
metrics, calibration, the business cost, slices, the leakage audit and explanations.

Pure: frames and arrays in, an ``Assessment`` out. The train workflow logs it; tuning and
backtests reuse the parts they need.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from innflow.config import Config
from innflow.contract import Contract
from innflow.data import CONTRACT, excluded
from innflow.evaluation import audit, business, classification, explain, regression
from innflow.modeling import models

# Slices important enough to be logged as metrics too (the rest live in the table).
METRIC_SLICES = ("hotel", "customer_type", "market_segment")


@dataclass
class Assessment:
    """Metrics and tables describing one fitted model."""

    threshold: float | None  # None: a regression model decides nothing
    metrics: dict[str, float]
    slices: pd.DataFrame
    audit: pd.DataFrame
    cost_curve: pd.DataFrame
    importance: pd.Series
    importance_kind: str

    def flagged_slices(self) -> list[str]:
        """``column=value`` of slices far worse than the overall figure."""
        flagged = self.slices[self.slices["flagged"]]
        return [f"{r.slice}={r.value}" for r in flagged.itertuples()]

    def flagged_audit(self) -> list[str]:
        """Audit conditions on columns the model uses."""
        if self.audit.empty:  # a regression model has no audit of label purity
            return []
        return list(self.audit.loc[self.audit["used_by_model"], "condition"])


def choose_threshold(
    config: Config, y_val: np.ndarray, val_proba: np.ndarray, val_raw: pd.DataFrame
) -> float:
    """The decision threshold, from validation only."""
    rule = config.evaluation.threshold
    if rule == "min_cost":
        cost = config.evaluation.cost
        curve = business.cost_curve(
            y_val, val_proba, business.missed_cancellation_cost(val_raw, cost), cost.walk_cost
        )
        return business.min_cost_threshold(curve)
    return classification.choose_threshold(y_val, val_proba, rule)


def _metric_key(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_")


def assess(
    config: Config,
    pipeline: Pipeline,
    threshold: float,
    parts: dict[str, tuple[pd.DataFrame, np.ndarray, np.ndarray]],
    train_frame: pd.DataFrame,
    input_columns: list[str],
    contract: Contract = CONTRACT,
) -> Assessment:
    """Assess a fitted pipeline. ``parts`` maps "val"/"test" to (raw frame, labels, proba).
    The business cost needs the bookings' rate and stay columns; another data set's model
    is assessed without it.
    """
    ev, cost = config.evaluation, config.evaluation.cost
    costed = business.applies(contract.columns)
    metrics: dict[str, float] = {"threshold": threshold}
    for prefix, (raw, y, proba) in parts.items():
        metrics.update(
            {
                f"{prefix}_{k}": v
                for k, v in classification.classification_metrics(y, proba, threshold).items()
            }
        )
        metrics[f"{prefix}_ece"] = classification.expected_calibration_error(
            y, proba, ev.calibration_bins
        )
        if costed:
            miss = business.missed_cancellation_cost(raw, cost)
            summary = business.summarize(y, proba, miss, cost.walk_cost, threshold)
            metrics.update(summary.as_metrics(prefix))
    raw, y, proba = parts["test"]
    curve = pd.DataFrame()
    if costed:
        miss = business.missed_cancellation_cost(raw, cost)
        curve = business.cost_curve(y, proba, miss, cost.walk_cost)
    slices = classification.slice_metrics(
        classification.slice_frame(raw, classification.slice_columns(ev.slices, contract)),
        y,
        proba,
        ev.slice_min_support,
        ev.slice_max_auc_gap,
    )
    logged = slices[
        slices["slice"].isin(METRIC_SLICES)
        & (slices["support"] >= ev.slice_min_support)
        & slices["roc_auc"].notna()
    ]
    for column, value, auc in zip(logged["slice"], logged["value"], logged["roc_auc"], strict=True):
        metrics[f"test_roc_auc__{column}__{_metric_key(str(value))}"] = float(auc)
    auditable = [c for c in contract.inputs if contract.columns[c].role != "target"]
    used = set(input_columns) - set(excluded(config.features, contract))
    leaks = audit.leakage_audit(
        train_frame, auditable, used, ev.audit_min_support, ev.audit_max_purity, contract
    )
    importance, kind = _importance(pipeline, raw[input_columns], y, config.seed)
    return Assessment(threshold, metrics, slices, leaks, curve, importance, kind)


def assess_regression(
    config: Config,
    pipeline: Pipeline,
    parts: dict[str, tuple[pd.DataFrame, np.ndarray, np.ndarray]],
    fitted_on: tuple[pd.DataFrame, np.ndarray],
    input_columns: list[str],
    contract: Contract = CONTRACT,
) -> Assessment:
    """Assess a regression pipeline: error metrics of each part beside the naive
    baseline's (the median of ``fitted_on``, the window the model learnt from, by
    ``evaluation.baseline_groups``), errors by slice on test, and explanations.
    """
    ev = config.evaluation
    metrics: dict[str, float] = {}
    for prefix, (raw, y, predicted) in parts.items():
        ours = regression.regression_metrics(y, predicted)
        naive = regression.regression_metrics(
            y, regression.group_median_baseline(*fitted_on, raw, ev.baseline_groups)
        )
        metrics.update({f"{prefix}_{k}": v for k, v in ours.items()})
        metrics.update({f"{prefix}_baseline_{k}": v for k, v in naive.items()})
        if naive["rmse"] > 0:
            metrics[f"{prefix}_rmse_vs_baseline"] = ours["rmse"] / naive["rmse"]
    raw, y, predicted = parts["test"]
    slices = regression.slice_errors(
        classification.slice_frame(raw, classification.slice_columns(ev.slices, contract)),
        y, predicted, ev.slice_min_support, ev.slice_max_error_ratio,
    )  # fmt: skip
    supported = slices["support"] >= ev.slice_min_support
    logged = slices[slices["slice"].isin(METRIC_SLICES) & supported]
    for column, value, rmse in zip(logged["slice"], logged["value"], logged["rmse"], strict=True):
        metrics[f"test_rmse__{column}__{_metric_key(str(value))}"] = float(rmse)
    importance = models.feature_importance(pipeline)
    kind = "native"
    if importance.empty:
        importance, kind = (
            classification.permutation_importance(
                pipeline, raw[input_columns], y, config.seed, scoring="neg_root_mean_squared_error"
            ),
            "permutation (RMSE rise)",
        )
    empty = pd.DataFrame()
    return Assessment(None, metrics, slices, empty, empty, importance, kind)


def _importance(
    pipeline: Pipeline, raw: pd.DataFrame, y: np.ndarray, seed: int
) -> tuple[pd.Series, str]:
    if explain.supports(pipeline):
        # TreeSHAP costs ~1 ms a booking here: 1,000 bookings spread over the test window
        # give a stable global ranking in about a second.
        step = max(1, len(raw) // 1000)
        return explain.global_importance(
            pipeline, raw.iloc[::step]
        ), "mean |contribution| (log-odds)"
    native = models.feature_importance(pipeline)
    if not native.empty:
        return native, "native"
    return classification.permutation_importance(
        pipeline, raw, y, seed
    ), "permutation (ROC AUC drop)"
