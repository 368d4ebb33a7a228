"""What a prediction is worth to the hotel: expected cost by decision threshold.

A booking flagged as a likely cancellation is treated as free inventory (the room is
resold or overbooked). If it then does not cancel, the hotel walks a guest (``walk_cost``).
A cancellation that was not flagged loses the room's revenue for the nights no one else
fills (``adr x nights x unsold_fraction``). Treating nobody as a likely cancellation is the
baseline: it pays every missed cancellation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from innflow.config import CostConfig

THRESHOLDS = np.round(np.arange(0.02, 0.99, 0.01), 2)


COST_COLUMNS = ("adr", "stays_in_weekend_nights", "stays_in_week_nights")


def applies(columns: object) -> bool:
    """Whether a data set has what the cost needs: the nightly rate and the nights."""
    return all(c in columns for c in COST_COLUMNS)  # type: ignore[operator]


def missed_cancellation_cost(raw: pd.DataFrame, cost: CostConfig) -> np.ndarray:
    """Per booking: revenue lost if it cancels and the room stays empty."""
    nights = raw["stays_in_weekend_nights"].to_numpy(float) + raw["stays_in_week_nights"].to_numpy(
        float
    )
    revenue = np.clip(raw["adr"].to_numpy(float), 0, None) * nights
    return revenue * cost.unsold_fraction


def cost_curve(
    y_true: np.ndarray, proba: np.ndarray, miss_cost: np.ndarray, walk_cost: float
) -> pd.DataFrame:
    """Total expected cost at each threshold in ``THRESHOLDS``."""
    y_true = np.asarray(y_true).astype(bool)
    rows = []
    for t in THRESHOLDS:
        flagged = proba >= t
        missed = float(miss_cost[y_true & ~flagged].sum())
        walked = float(walk_cost * np.count_nonzero(~y_true & flagged))
        rows.append(
            {"threshold": float(t), "missed": missed, "walked": walked, "cost": missed + walked}
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class CostSummary:
    """Cost of the model's decisions on one set vs flagging nobody."""

    threshold: float
    cost: float
    baseline_cost: float

    @property
    def saving(self) -> float:
        """Money saved against treating nobody as a likely cancellation."""
        return self.baseline_cost - self.cost

    def as_metrics(self, prefix: str = "") -> dict[str, float]:
        """Metric names as logged (``test_cost``, ``test_cost_saving``...)."""
        p = f"{prefix}_" if prefix else ""
        share = self.saving / self.baseline_cost if self.baseline_cost else 0.0
        return {
            f"{p}cost": self.cost,
            f"{p}cost_baseline": self.baseline_cost,
            f"{p}cost_saving": self.saving,
            f"{p}cost_saving_share": share,
        }


def min_cost_threshold(curve: pd.DataFrame) -> float:
    """Threshold with the lowest cost (the lowest such threshold on ties)."""
    return float(curve["threshold"].to_numpy()[int(np.argmin(curve["cost"].to_numpy()))])


def summarize(
    y_true: np.ndarray, proba: np.ndarray, miss_cost: np.ndarray, walk_cost: float, threshold: float
) -> CostSummary:
    """Cost at ``threshold`` and the do-nothing baseline."""
    y_true = np.asarray(y_true).astype(bool)
    flagged = proba >= threshold
    cost = float(
        miss_cost[y_true & ~flagged].sum() + walk_cost * np.count_nonzero(~y_true & flagged)
    )
    return CostSummary(threshold, cost, float(miss_cost[y_true].sum()))
