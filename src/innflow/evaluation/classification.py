"""Metrics, threshold choice and feature importance: pure functions of labels and scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from innflow.contract import Contract

METRIC_NAMES = ("roc_auc", "pr_auc", "log_loss", "brier", "accuracy", "f1", "precision", "recall")


def choose_threshold(y_true: np.ndarray, proba: np.ndarray, rule: str | float) -> float:
    """Decision threshold from validation scores: a fixed number, or the F1-maximising cut."""
    if not isinstance(rule, str):
        return float(rule)
    precision, recall, thresholds = skm.precision_recall_curve(y_true, proba)
    f1 = np.divide(
        2 * precision * recall, precision + recall,
        out=np.zeros_like(precision), where=(precision + recall) > 0,
    )  # fmt: skip
    return float(thresholds[int(np.argmax(f1[:-1]))])


def classification_metrics(
    y_true: np.ndarray, proba: np.ndarray, threshold: float
) -> dict[str, float]:
    """The standard set of ranking, probability and decision metrics."""
    y_true = np.asarray(y_true)
    decision = (proba >= threshold).astype(int)
    both_classes = len(np.unique(y_true)) == 2
    return {
        "roc_auc": float(skm.roc_auc_score(y_true, proba)) if both_classes else float("nan"),
        "pr_auc": float(skm.average_precision_score(y_true, proba))
        if both_classes
        else float("nan"),
        "log_loss": float(skm.log_loss(y_true, proba, labels=[0, 1])),
        "brier": float(skm.brier_score_loss(y_true, proba)),
        "accuracy": float(skm.accuracy_score(y_true, decision)),
        "f1": float(skm.f1_score(y_true, decision, zero_division=0)),
        "precision": float(skm.precision_score(y_true, decision, zero_division=0)),
        "recall": float(skm.recall_score(y_true, decision, zero_division=0)),
    }


def permutation_importance(
    pipeline, X: pd.DataFrame, y: np.ndarray, seed: int, rows: int = 3000,
    scoring: str = "roc_auc",
) -> pd.Series:  # fmt: skip
    """The score lost when each raw input column is shuffled, on a fixed subsample."""
    from sklearn.inspection import permutation_importance as sk_permutation

    take = np.random.default_rng(seed).permutation(len(X))[: min(rows, len(X))]
    take.sort()
    result = sk_permutation(
        pipeline, X.iloc[take], np.asarray(y)[take], scoring=scoring, n_repeats=2,
        random_state=seed, n_jobs=1,
    )  # fmt: skip
    series = pd.Series(result.importances_mean, index=list(X.columns))
    return series.sort_values(ascending=False)


def expected_calibration_error(y_true: np.ndarray, proba: np.ndarray, bins: int = 10) -> float:
    """Support-weighted mean |observed rate - mean prediction| over equal-width bins."""
    y_true, proba = np.asarray(y_true, dtype=float), np.asarray(proba, dtype=float)
    which = np.minimum((proba * bins).astype(int), bins - 1)
    counts = np.bincount(which, minlength=bins)
    observed = np.bincount(which, weights=y_true, minlength=bins)
    predicted = np.bincount(which, weights=proba, minlength=bins)
    filled = counts > 0
    gaps = np.abs(observed[filled] - predicted[filled]) / counts[filled]
    return float(np.sum(gaps * counts[filled]) / len(proba))


LEAD_TIME_BUCKETS = (-1, 7, 30, 90, 180, 365, np.inf)
LEAD_TIME_LABELS = ("0-7d", "8-30d", "31-90d", "91-180d", "181-365d", ">365d")


def slice_columns(configured: list[str], contract: Contract) -> tuple[str, ...]:
    """The configured slices the contract has (``lead_time_bucket`` needs ``lead_time``);
    when it has none of them (another data set under the bookings' default list), its
    text features.
    """
    present = tuple(
        c for c in configured
        if c in contract.columns or (c == "lead_time_bucket" and "lead_time" in contract.columns)
    )  # fmt: skip
    if present:
        return present
    return tuple(c for c in contract.inputs if contract.columns[c].type == "text"
                 and contract.columns[c].role == "feature")  # fmt: skip


def slice_frame(raw: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """The columns to slice by that the data have, with lead time bucketed (all as text)."""
    out = pd.DataFrame(index=raw.index)
    for name in columns:
        if name not in raw and not (name == "lead_time_bucket" and "lead_time" in raw):
            continue  # a data set without the column: nothing to slice by
        if name == "lead_time_bucket":
            bucket = pd.cut(raw["lead_time"], LEAD_TIME_BUCKETS, labels=LEAD_TIME_LABELS)
            out[name] = bucket.astype(str)
        else:
            out[name] = raw[name].astype(str)
    return out


def slice_metrics(
    slices: pd.DataFrame,
    y_true: np.ndarray,
    proba: np.ndarray,
    min_support: int,
    max_auc_gap: float,
) -> pd.DataFrame:
    """ROC AUC, Brier and rates per slice value, with support; flags weak slices.

    A slice is flagged when it has at least ``min_support`` bookings, both outcomes, and a
    ROC AUC more than ``max_auc_gap`` below the overall figure.
    """
    y_true, proba = np.asarray(y_true), np.asarray(proba)
    overall = skm.roc_auc_score(y_true, proba)
    rows = []
    for column in slices.columns:
        for value, index in slices.groupby(column, observed=True).indices.items():
            y, p = y_true[index], proba[index]
            both = len(np.unique(y)) == 2
            auc = float(skm.roc_auc_score(y, p)) if both else float("nan")
            rows.append(
                {
                    "slice": column,
                    "value": str(value),
                    "support": len(index),
                    "cancel_rate": float(y.mean()),
                    "mean_proba": float(p.mean()),
                    "roc_auc": auc,
                    "brier": float(np.mean((p - y) ** 2)),
                    "flagged": bool(
                        both and len(index) >= min_support and auc < overall - max_auc_gap
                    ),
                }
            )
    columns = ["slice", "value", "support", "cancel_rate", "mean_proba", "roc_auc", "brier",
               "flagged"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns).sort_values(
        ["slice", "support"], ascending=[True, False]
    )
