"""Metrics, threshold choice and feature importance: pure functions of labels and scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm

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
    pipeline, X: pd.DataFrame, y: np.ndarray, seed: int, rows: int = 3000
) -> pd.Series:
    """ROC AUC lost when each raw input column is shuffled, on a fixed subsample."""
    from sklearn.inspection import permutation_importance as sk_permutation

    take = np.random.default_rng(seed).permutation(len(X))[: min(rows, len(X))]
    take.sort()
    result = sk_permutation(
        pipeline, X.iloc[take], np.asarray(y)[take], scoring="roc_auc", n_repeats=2,
        random_state=seed, n_jobs=1,
    )  # fmt: skip
    series = pd.Series(result.importances_mean, index=list(X.columns))
    return series.sort_values(ascending=False)
