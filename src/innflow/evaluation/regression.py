"""Regression metrics, the naive baseline and errors by slice: pure functions of targets
and predictions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm

METRIC_NAMES = ("rmse", "mae", "r2", "bias")
LOWER_IS_BETTER = {"rmse", "mae"}


def regression_metrics(y_true: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, R² and the mean error (prediction minus truth: > 0 overestimates)."""
    y_true, predicted = np.asarray(y_true, dtype="float64"), np.asarray(predicted, "float64")
    return {
        "rmse": float(np.sqrt(skm.mean_squared_error(y_true, predicted))),
        "mae": float(skm.mean_absolute_error(y_true, predicted)),
        "r2": float(skm.r2_score(y_true, predicted)) if len(y_true) > 1 else float("nan"),
        "bias": float(np.mean(predicted - y_true)),
    }


def group_median_baseline(
    train: pd.DataFrame, y_train: np.ndarray, scored: pd.DataFrame, groups: list[str]
) -> np.ndarray:
    """The naive forecast a revenue manager would start from: the training target's median
    in the row's group (e.g. hotel, room type, arrival month). A group never seen in
    training falls back to the median of the coarser group (the last column dropped),
    down to the overall median.
    """
    target = pd.Series(np.asarray(y_train, dtype="float64"), index=train.index)
    forecast = np.full(len(scored), np.nan)
    for depth in range(len(groups), 0, -1):
        keys = groups[:depth]
        medians = target.groupby([train[k] for k in keys], observed=True).median()
        index = pd.MultiIndex.from_frame(scored[keys]) if depth > 1 else pd.Index(scored[keys[0]])
        found = medians.reindex(index).to_numpy(dtype="float64")
        forecast = np.where(np.isnan(forecast), found, forecast)
    return np.where(np.isnan(forecast), float(target.median()), forecast)


def slice_errors(
    slices: pd.DataFrame, y_true: np.ndarray, predicted: np.ndarray, min_support: int,
    max_error_ratio: float,
) -> pd.DataFrame:  # fmt: skip
    """RMSE, MAE and the mean error per slice value, with support; a slice with at least
    ``min_support`` rows whose RMSE exceeds the overall one by more than the ratio
    (``max_error_ratio`` 0.25: 25% worse) is flagged.
    """
    y_true, predicted = np.asarray(y_true, "float64"), np.asarray(predicted, "float64")
    overall = float(np.sqrt(np.mean((predicted - y_true) ** 2)))
    rows = []
    for column in slices.columns:
        for value, index in slices.groupby(column, observed=True).indices.items():
            y, p = y_true[index], predicted[index]
            rmse = float(np.sqrt(np.mean((p - y) ** 2)))
            rows.append({
                "slice": column, "value": str(value), "support": len(index),
                "mean_target": float(y.mean()), "mean_prediction": float(p.mean()),
                "rmse": rmse, "mae": float(np.mean(np.abs(p - y))),
                "bias": float(np.mean(p - y)),
                "flagged": bool(len(index) >= min_support
                                and rmse > overall * (1 + max_error_ratio)),
            })  # fmt: skip
    columns = ["slice", "value", "support", "mean_target", "mean_prediction", "rmse", "mae",
               "bias", "flagged"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns).sort_values(
        ["slice", "support"], ascending=[True, False]
    )
