"""Evaluation plots as PNG files. Uses matplotlib's object API (no pyplot state), so it is
safe to call from any thread and never opens a window.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn import metrics as skm


def _save(fig: Figure, path: Path) -> Path:
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def roc(y: np.ndarray, proba: np.ndarray, path: Path) -> Path:
    """ROC curve with its AUC."""
    fpr, tpr, _ = skm.roc_curve(y, proba)
    fig = Figure(figsize=(5, 4.5))
    ax = fig.subplots()
    ax.plot(fpr, tpr, label=f"AUC {skm.roc_auc_score(y, proba):.4f}")
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)")
    ax.legend(loc="lower right")
    return _save(fig, path)


def precision_recall(y: np.ndarray, proba: np.ndarray, threshold: float, path: Path) -> Path:
    """Precision-recall curve, marking the chosen threshold."""
    precision, recall, thresholds = skm.precision_recall_curve(y, proba)
    fig = Figure(figsize=(5, 4.5))
    ax = fig.subplots()
    ax.plot(recall, precision, label=f"AP {skm.average_precision_score(y, proba):.4f}")
    at = int(np.clip(np.searchsorted(thresholds, threshold), 0, len(thresholds) - 1))
    ax.scatter(
        [recall[at]], [precision[at]], color="red", zorder=3, label=f"threshold {threshold:.3f}"
    )
    ax.axhline(float(np.mean(y)), linestyle="--", color="grey", linewidth=0.8)
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (test)")
    ax.legend(loc="lower left")
    return _save(fig, path)


def calibration(y: np.ndarray, proba: np.ndarray, path: Path, bins: int = 10) -> Path:
    """Reliability diagram (quantile bins) with the score histogram below."""
    from sklearn.calibration import calibration_curve

    observed, predicted = calibration_curve(y, proba, n_bins=bins, strategy="quantile")
    fig = Figure(figsize=(5, 5.5))
    top, bottom = fig.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    top.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    top.plot(predicted, observed, "o-")
    top.set(ylabel="observed cancellation rate", title="Calibration (test)")
    bottom.hist(proba, bins=40, color="tab:blue", alpha=0.7)
    bottom.set(xlabel="predicted probability", ylabel="bookings")
    return _save(fig, path)


def confusion(y: np.ndarray, proba: np.ndarray, threshold: float, path: Path) -> Path:
    """Confusion matrix at the decision threshold, with counts."""
    matrix = skm.confusion_matrix(y, (proba >= threshold).astype(int), labels=[0, 1])
    fig = Figure(figsize=(4.5, 4))
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        color = "white" if count > matrix.max() / 2 else "black"
        ax.text(j, i, f"{count:,}", ha="center", va="center", color=color)
    ax.set_xticks([0, 1], ["kept", "canceled"])
    ax.set_yticks([0, 1], ["kept", "canceled"])
    ax.set(xlabel="predicted", ylabel="actual", title=f"Confusion at {threshold:.3f} (test)")
    return _save(fig, path)


def importance(values: pd.Series, title: str, path: Path, top: int = 20) -> Path:
    """Horizontal bar chart of the largest importances."""
    shown = values.head(top)[::-1]
    fig = Figure(figsize=(6, 0.28 * len(shown) + 1.2))
    ax = fig.subplots()
    ax.barh(list(shown.index), shown.to_numpy())
    ax.set(title=title)
    return _save(fig, path)


def cost_curve(curve: pd.DataFrame, threshold: float, baseline: float, path: Path) -> Path:
    """Expected cost by threshold (missed cancellations + walked guests) on test."""
    fig = Figure(figsize=(6, 4.2))
    ax = fig.subplots()
    ax.plot(curve["threshold"], curve["cost"], label="total")
    ax.plot(curve["threshold"], curve["missed"], "--", label="missed cancellations")
    ax.plot(curve["threshold"], curve["walked"], ":", label="walked guests")
    ax.axhline(baseline, color="grey", linewidth=0.8, label="flag nobody")
    ax.axvline(threshold, color="red", linewidth=0.8, label=f"chosen {threshold:.2f}")
    ax.set(xlabel="threshold", ylabel="cost", title="Business cost by threshold (test)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def slices(table: pd.DataFrame, overall: float, path: Path, min_support: int) -> Path:
    """ROC AUC per slice value with enough support; flagged slices in red."""
    shown = table[(table["support"] >= min_support) & table["roc_auc"].notna()]
    labels = [f"{r.slice}={r.value} (n={r.support:,})" for r in shown.itertuples()]
    colors = ["tab:red" if f else "tab:blue" for f in shown["flagged"]]
    fig = Figure(figsize=(8, 0.26 * len(shown) + 1.3), layout="constrained")
    ax = fig.subplots()
    ax.barh(labels[::-1], shown["roc_auc"].to_numpy()[::-1], color=colors[::-1])
    ax.axvline(overall, color="black", linewidth=0.8)
    low = max(0.0, float(shown["roc_auc"].min()) - 0.05) if len(shown) else 0.5
    ax.set(xlim=(low, 1.0), title="ROC AUC by slice (test)", xlabel="ROC AUC")
    ax.tick_params(axis="y", labelsize=7)
    return _save(fig, path)


def predicted_vs_actual(
    y: np.ndarray, predicted: np.ndarray, baseline: np.ndarray | None, path: Path
) -> Path:
    """Each test row's prediction against its true value (a density, so 20,000 points stay
    readable), with the diagonal, and the naive baseline's binned means beside the model's.
    """
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    low, high = np.quantile(np.concatenate([y, predicted]), [0.001, 0.999])
    ax.hexbin(y, predicted, gridsize=50, extent=(low, high, low, high), mincnt=1, bins="log",
              cmap="Blues")  # fmt: skip
    ax.plot([low, high], [low, high], "--", color="grey", linewidth=0.8)
    edges = np.quantile(y, np.linspace(0, 1, 21))
    which = np.clip(np.searchsorted(edges, y, side="right") - 1, 0, 19)
    centres = np.array([y[which == b].mean() for b in range(20) if np.any(which == b)])
    model = np.array([predicted[which == b].mean() for b in range(20) if np.any(which == b)])
    ax.plot(centres, model, "o-", color="tab:red", markersize=3, label="model (binned mean)")
    if baseline is not None:
        naive = np.array([baseline[which == b].mean() for b in range(20) if np.any(which == b)])
        ax.plot(centres, naive, "s:", color="tab:orange", markersize=3, label="naive baseline")
    ax.set(xlim=(low, high), ylim=(low, high), xlabel="actual", ylabel="predicted",
           title="Predicted vs actual (test)")  # fmt: skip
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def residuals(y: np.ndarray, predicted: np.ndarray, path: Path) -> Path:
    """Residuals (predicted - actual) against the prediction, and their histogram."""
    error = predicted - y
    fig = Figure(figsize=(8, 4))
    left, right = fig.subplots(1, 2)
    low, high = np.quantile(error, [0.001, 0.999])
    left.hexbin(predicted, error, gridsize=50, mincnt=1, bins="log", cmap="Blues",
                extent=(*np.quantile(predicted, [0.001, 0.999]), low, high))  # fmt: skip
    left.axhline(0, color="grey", linewidth=0.8)
    left.set(xlabel="predicted", ylabel="predicted - actual", title="Residuals (test)")
    right.hist(np.clip(error, low, high), bins=60, color="tab:blue", alpha=0.8)
    right.axvline(float(np.mean(error)), color="tab:red", linewidth=0.8,
                  label=f"mean {float(np.mean(error)):.2f}")  # fmt: skip
    right.set(xlabel="predicted - actual", ylabel="rows", title="Error distribution")
    right.legend(fontsize=8)
    return _save(fig, path)


def slice_errors(table: pd.DataFrame, overall: float, path: Path, min_support: int) -> Path:
    """RMSE per slice value with enough support; flagged slices in red."""
    shown = table[table["support"] >= min_support]
    labels = [f"{r.slice}={r.value} (n={r.support:,})" for r in shown.itertuples()]
    colors = ["tab:red" if f else "tab:blue" for f in shown["flagged"]]
    fig = Figure(figsize=(8, 0.26 * len(shown) + 1.3), layout="constrained")
    ax = fig.subplots()
    ax.barh(labels[::-1], shown["rmse"].to_numpy()[::-1], color=colors[::-1])
    ax.axvline(overall, color="black", linewidth=0.8)
    ax.set(title="RMSE by slice (test)", xlabel="RMSE")
    ax.tick_params(axis="y", labelsize=7)
    return _save(fig, path)


def optimisation_history(values: pd.DataFrame, maximize: bool, metric: str, path: Path) -> Path:
    """Each finished trial's objective and the best so far (``number``, ``value`` columns)."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.scatter(values["number"], values["value"], s=14, label="trial")
    best = values["value"].cummax() if maximize else values["value"].cummin()
    ax.step(values["number"], best, where="post", color="red", label="best so far")
    ax.set(xlabel="trial", ylabel=f"validation {metric}", title="Optimisation history")
    ax.legend()
    return _save(fig, path)


def backtest(table: pd.DataFrame, path: Path) -> Path:
    """ROC AUC and cost saving share by test month (rolling origin)."""
    fig = Figure(figsize=(7, 4.5))
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.plot(table["month"], table["roc_auc"], "o-")
    top.set(
        ylabel="ROC AUC", title="Rolling-origin backtest: train on all before, test on the month"
    )
    bottom.bar(table["month"], table["cost_saving_share"], color="tab:green")
    bottom.set(ylabel="cost saving share")
    bottom.tick_params(axis="x", rotation=60, labelsize=8)
    return _save(fig, path)


def backtest_errors(table: pd.DataFrame, path: Path) -> Path:
    """RMSE of the model and of the naive baseline, and the mean error, by test month."""
    fig = Figure(figsize=(7, 4.5))
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.plot(table["month"], table["rmse"], "o-", label="model")
    top.plot(table["month"], table["baseline_rmse"], "s:", label="naive baseline")
    top.set(ylabel="RMSE", title="Rolling-origin backtest: train on all before, test on the month")
    top.legend(fontsize=8)
    bottom.bar(table["month"], table["bias"], color="tab:orange")
    bottom.axhline(0, color="grey", linewidth=0.8)
    bottom.set(ylabel="mean error (pred - actual)")
    bottom.tick_params(axis="x", rotation=60, labelsize=8)
    return _save(fig, path)
