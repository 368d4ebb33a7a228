"""Performance where outcomes are known: ROC AUC, Brier and calibration (innflow's own
metric code, as at training time), and per serving variant a bootstrap confidence interval
for ROC AUC, so "is the challenger better online?" has an answer with its uncertainty.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from innflow import evaluation


def figures(y: np.ndarray, proba: np.ndarray, calibration_bins: int = 10) -> dict[str, float]:
    """ROC AUC (NaN with one class), Brier, ECE, rows and cancellation rate."""
    y, proba = np.asarray(y), np.asarray(proba, dtype="float64")
    both = len(np.unique(y)) == 2
    return {
        "rows": float(len(y)),
        "cancel_rate": float(y.mean()) if len(y) else float("nan"),
        "roc_auc": float(roc_auc_score(y, proba)) if both else float("nan"),
        "brier": float(np.mean((proba - y) ** 2)) if len(y) else float("nan"),
        "ece": evaluation.expected_calibration_error(y, proba, calibration_bins)
        if len(y)
        else float("nan"),
    }


def bootstrap_auc(
    y: np.ndarray, proba: np.ndarray, rounds: int = 200, confidence: float = 0.95, seed: int = 42
) -> tuple[float, float]:
    """Percentile bootstrap interval of ROC AUC (resamples with one class are skipped)."""
    y, proba = np.asarray(y), np.asarray(proba, dtype="float64")
    if len(np.unique(y)) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        take = rng.integers(0, len(y), len(y))
        if y[take].min() != y[take].max():
            values.append(roc_auc_score(y[take], proba[take]))
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
