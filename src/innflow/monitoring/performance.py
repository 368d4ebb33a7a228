"""Performance where outcomes are known: ROC AUC, Brier and calibration (innflow's own
metric code, as at training time), and per serving variant a bootstrap confidence interval
for ROC AUC, so "is the challenger better online?" has an answer with its uncertainty.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from innflow.evaluation import classification


def figures(y: np.ndarray, proba: np.ndarray, calibration_bins: int = 10) -> dict[str, float]:
    """ROC AUC (NaN with one class), Brier, ECE, rows and cancellation rate."""
    y, proba = np.asarray(y), np.asarray(proba, dtype="float64")
    both = len(np.unique(y)) == 2
    return {
        "rows": float(len(y)),
        "cancel_rate": float(y.mean()) if len(y) else float("nan"),
        "roc_auc": float(roc_auc_score(y, proba)) if both else float("nan"),
        "brier": float(np.mean((proba - y) ** 2)) if len(y) else float("nan"),
        "ece": classification.expected_calibration_error(y, proba, calibration_bins)
        if len(y)
        else float("nan"),
    }


def weighted_auc(y: np.ndarray, proba: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC for each row of ``weights`` (rounds x rows): the Mann-Whitney statistic with
    ties counted half, computed for all rounds at once over the score-sorted rows.
    """
    order = np.argsort(proba, kind="stable")
    sorted_scores, y = proba[order], np.asarray(y)[order].astype(bool)
    w = np.asarray(weights, dtype="float64")[:, order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    positive = np.add.reduceat(w * y, starts, axis=1)
    negative = np.add.reduceat(w * ~y, starts, axis=1)
    below = np.cumsum(negative, axis=1) - negative
    pairs = positive.sum(axis=1) * negative.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (positive * (below + 0.5 * negative)).sum(axis=1) / pairs


def bootstrap_auc(
    y: np.ndarray, proba: np.ndarray, rounds: int = 200, confidence: float = 0.95, seed: int = 42
) -> tuple[float, float]:
    """Percentile bootstrap interval of ROC AUC (resamples with one class are skipped).

    Each resample is a row of counts (how often each row was drawn), so all rounds cost a
    few array passes instead of ``rounds`` calls to roc_auc_score.
    """
    y, proba = np.asarray(y), np.asarray(proba, dtype="float64")
    if len(np.unique(y)) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    n = len(y)
    take = rng.integers(0, n, (rounds, n)) + np.arange(rounds)[:, None] * n
    counts = np.bincount(take.ravel(), minlength=rounds * n).reshape(rounds, n)
    values = weighted_auc(y, proba, counts)
    values = values[~np.isnan(values)]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def by_variant(
    frame: pd.DataFrame,
    rounds: int = 200,
    confidence: float = 0.95,
    seed: int = 42,
    calibration_bins: int = 10,
) -> pd.DataFrame:
    """Per (variant, model_version) of labelled log rows: figures and a ROC AUC interval.

    ``frame`` has ``variant``, ``model_version``, ``is_canceled`` and ``probability``.
    Shadow rows score the same bookings as the live ones, so the comparison is paired.
    """
    rows = []
    for (variant, version), group in frame.groupby(["variant", "model_version"], sort=True):
        y = group["is_canceled"].to_numpy()
        p = group["probability"].to_numpy(dtype="float64")
        low, high = bootstrap_auc(y, p, rounds, confidence, seed)
        rows.append(
            {
                "variant": str(variant),
                "model_version": str(version),
                **figures(y, p, calibration_bins),
                "roc_auc_low": low,
                "roc_auc_high": high,
            }
        )
    return pd.DataFrame(rows)
