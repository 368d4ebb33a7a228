"""Monitoring plots as PNG bytes (matplotlib's object API: thread-safe, no window)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from innflow.monitoring.drift import FeatureDrift

BAND_COLOURS = {"stable": "tab:green", "moderate": "tab:orange", "shift": "tab:red"}


def _png(fig: Figure) -> bytes:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def psi_bars(features: list[FeatureDrift], moderate: float, shift: float) -> bytes:
    """PSI per feature, coloured by band, with the band limits marked."""
    fig = Figure(figsize=(7, 0.28 * len(features) + 1.2))
    ax = fig.subplots()
    ordered = features[::-1]
    ax.barh(
        [d.feature for d in ordered],
        [d.psi for d in ordered],
        color=[BAND_COLOURS[d.band] for d in ordered],
    )
    for limit in (moderate, shift):
        ax.axvline(limit, color="grey", linestyle="--", linewidth=0.8)
    ax.set(xlabel="PSI vs the training window", title="Feature drift")
    ax.tick_params(axis="y", labelsize=8)
    return _png(fig)


def shares(drift: FeatureDrift) -> bytes:
    """Reference vs current shares over the drift bins of one feature (or the prediction)."""
    fig = Figure(figsize=(6, 3.2))
    ax = fig.subplots()
    x = np.arange(len(drift.bins))
    ax.bar(x - 0.2, drift.reference, 0.4, label="reference")
    ax.bar(x + 0.2, drift.current, 0.4, label="this batch")
    ax.set_xticks(x, drift.bins, rotation=60, ha="right", fontsize=7)
    ax.set(ylabel="share", title=f"{drift.feature}: PSI {drift.psi:.3f} ({drift.band})")
    ax.legend(fontsize=8)
    return _png(fig)


def variants(table: pd.DataFrame, reference_auc: float | None) -> bytes:
    """Each serving variant's ROC AUC with its bootstrap interval."""
    fig = Figure(figsize=(6, 3.2))
    ax = fig.subplots()
    names = [f"{r.variant} v{r.model_version}" for r in table.itertuples()]
    low = (table["roc_auc"] - table["roc_auc_low"]).to_numpy()
    high = (table["roc_auc_high"] - table["roc_auc"]).to_numpy()
    ax.errorbar(names, table["roc_auc"], yerr=[low, high], fmt="o", capsize=6)
    if reference_auc is not None:
        ax.axhline(
            reference_auc,
            color="grey",
            linestyle="--",
            linewidth=0.8,
            label="monitored model's test ROC AUC",
        )
        ax.legend(fontsize=8)
    ax.set(ylabel="ROC AUC", title="Serving variants on labelled traffic")
    return _png(fig)


def policies(table: pd.DataFrame) -> bytes:
    """Per retraining policy, month by month: ROC AUC and cost (or Brier where the data
    has no prices) of a binary model, RMSE and mean error of a regression; the months a new
    champion took over marked.
    """
    if "rmse" in table:
        (metric, label), (lower, lower_label) = ("rmse", "RMSE"), ("bias", "mean error")
    else:
        metric, label = "roc_auc", "ROC AUC"
        lower, lower_label = ("cost", "expected cost (EUR)") if "cost" in table else (
            "brier", "Brier score")  # fmt: skip
    fig = Figure(figsize=(8, 5.5))
    top, bottom = fig.subplots(2, 1, sharex=True)
    styles = ["-", "--", ":", "-."]  # identical policies stay visible on top of each other
    for i, (policy, rows) in enumerate(table.groupby("policy", sort=False)):
        style = styles[i % len(styles)]
        line = top.plot(
            rows["month"], rows[metric], marker="o", linestyle=style, label=str(policy),
            markersize=3,
        )  # fmt: skip
        retrained = rows[rows["promoted"]]
        top.plot(
            retrained["month"], retrained[metric], "^", color=line[0].get_color(), markersize=8
        )
        bottom.plot(rows["month"], rows[lower], marker="o", linestyle=style, markersize=3)
    if "baseline_rmse" in table:
        first = table[table["policy"] == table["policy"].iloc[0]]
        top.plot(first["month"], first["baseline_rmse"], color="grey", linestyle="--",
                 linewidth=0.8, label="naive baseline")  # fmt: skip
    top.set(
        ylabel=label,
        title="Retraining policies replayed month by month (triangle: a new champion took over)",
    )
    top.legend(fontsize=8)
    bottom.set(ylabel=lower_label)
    bottom.tick_params(axis="x", rotation=60, labelsize=8)
    return _png(fig)
