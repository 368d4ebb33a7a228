"""The promotion gate: absolute bars, slice floors, and challenger vs champion on the same
test window. Pure: metrics in, a decision with its reasons out.

Why not `mlflow.models.evaluate` + `mlflow.validate_evaluation_results`: the gate needs
innflow's own metrics (cost at the model's threshold, slices with support, ECE) computed
exactly as at training time, and both models scored in one process on one frame; MLflow's
evaluator would recompute a different metric set and its thresholds compare one metric at
a time without slices. The rule it encodes is the same: absolute thresholds plus a
tolerated change against a baseline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from innflow.config import EvaluationConfig, GateConfig
from innflow.contract import Contract
from innflow.data import CONTRACT
from innflow.evaluation import business, classification, regression

LOWER_IS_BETTER = {"brier", "log_loss", "cost", "ece"}


@dataclass
class GateDecision:
    """The verdict and every check behind it."""

    passed: bool
    reasons: list[str] = field(default_factory=list)
    checks: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON form (the report artifact)."""
        return {"passed": self.passed, "reasons": self.reasons, "checks": self.checks}


def window_metrics(
    raw: pd.DataFrame, y: np.ndarray, proba: np.ndarray, threshold: float, ev: EvaluationConfig,
    contract: Contract = CONTRACT,
) -> tuple[dict[str, float], pd.DataFrame]:  # fmt: skip
    """What the gate looks at for one model on one window: metrics, ECE, cost at the
    model's threshold, and slices (the same code as at training time).
    """
    metrics = classification.classification_metrics(y, proba, threshold)
    metrics["ece"] = classification.expected_calibration_error(y, proba, ev.calibration_bins)
    if business.applies(raw.columns):
        miss = business.missed_cancellation_cost(raw, ev.cost)
        metrics["cost"] = business.summarize(y, proba, miss, ev.cost.walk_cost, threshold).cost
    slices = classification.slice_metrics(
        classification.slice_frame(raw, classification.slice_columns(ev.slices, contract)),
        y, proba, ev.slice_min_support,
        ev.slice_max_auc_gap,
    )  # fmt: skip
    return metrics, slices


def decide(
    candidate: dict[str, float],
    slices: pd.DataFrame,
    champion: dict[str, float] | None,
    gate: GateConfig,
) -> GateDecision:
    """Apply the gate to the candidate's metrics (and the champion's, on the same window)."""
    checks: list[dict] = []

    def check(name: str, value: float, bound: float, ok: bool, detail: str) -> None:
        checks.append(
            {"check": name, "value": value, "bound": bound, "passed": bool(ok), "detail": detail}
        )

    floors = (
        ("roc_auc", gate.min_roc_auc, True, "ROC AUC", "minimum"),
        ("brier", gate.max_brier, False, "Brier", "maximum"),
        ("ece", gate.max_ece, False, "calibration error", "maximum"),
    )
    for name, bound, higher_is_better, label, word in floors:
        value = candidate[name]
        ok = value >= bound if higher_is_better else value <= bound
        check(name, value, bound, ok, f"{label} {value:.4f} ({word} {bound})")
    supported = slices[(slices["support"] >= gate.slice_min_support) & slices["roc_auc"].notna()]
    for column, level, support, auc in zip(
        supported["slice"],
        supported["value"],
        supported["support"],
        supported["roc_auc"],
        strict=True,
    ):
        if float(auc) < gate.slice_floor_roc_auc:
            detail = (
                f"slice {column}={level} ROC AUC {float(auc):.4f} on {support} bookings "
                f"(floor {gate.slice_floor_roc_auc})"
            )
            check(f"slice {column}={level}", float(auc), gate.slice_floor_roc_auc, False, detail)
    if champion is None:
        checks.append({"check": "champion", "passed": True, "detail": "no production model yet"})
    else:
        for name in gate.compare_metrics:
            ours, theirs = candidate[name], champion[name]
            worse_by = (ours - theirs) if name in LOWER_IS_BETTER else (theirs - ours)
            detail = f"{name} {ours:.4f} vs champion {theirs:.4f} (tolerated loss {gate.margin})"
            check(f"vs champion {name}", ours, theirs, worse_by <= gate.margin, detail)
    reasons = [c["detail"] for c in checks if not c["passed"]]
    return GateDecision(not reasons, reasons, checks)


def regression_window_metrics(
    raw: pd.DataFrame, y: np.ndarray, predicted: np.ndarray, baseline: np.ndarray,
    ev: EvaluationConfig, contract: Contract = CONTRACT,
) -> tuple[dict[str, float], pd.DataFrame]:  # fmt: skip
    """What the gate looks at for one regression model on one window: its errors, the
    naive baseline's RMSE on the same rows, and errors by slice.
    """
    metrics = regression.regression_metrics(y, predicted)
    metrics["baseline_rmse"] = regression.regression_metrics(y, baseline)["rmse"]
    slices = regression.slice_errors(
        classification.slice_frame(raw, classification.slice_columns(ev.slices, contract)),
        y, predicted, ev.slice_min_support,
        ev.slice_max_error_ratio,
    )  # fmt: skip
    return metrics, slices


def decide_regression(
    candidate: dict[str, float], champion: dict[str, float] | None, gate: GateConfig
) -> GateDecision:
    """The gate for a regression model: R² floor, RMSE ceiling (if set), beating the naive
    baseline, and against the champion no more than ``relative_margin`` worse.
    """
    checks: list[dict] = []

    def check(name: str, value: float, bound: float, ok: bool, detail: str) -> None:
        checks.append(
            {"check": name, "value": value, "bound": bound, "passed": bool(ok), "detail": detail}
        )

    r2 = candidate["r2"]
    check("r2", r2, gate.min_r2, r2 >= gate.min_r2, f"R² {r2:.4f} (minimum {gate.min_r2})")
    rmse = candidate["rmse"]
    if gate.max_rmse is not None:
        check("rmse", rmse, gate.max_rmse, rmse <= gate.max_rmse,
              f"RMSE {rmse:.4f} (maximum {gate.max_rmse})")  # fmt: skip
    if gate.beat_baseline:
        naive = candidate["baseline_rmse"]
        check("baseline", rmse, naive, rmse < naive,
              f"RMSE {rmse:.4f} vs the naive baseline's {naive:.4f}")  # fmt: skip
    if champion is None:
        checks.append({"check": "champion", "passed": True, "detail": "no production model yet"})
    else:
        for name in gate.regression_compare:
            ours, theirs = candidate[name], champion[name]
            bound = theirs * (1 + gate.relative_margin)
            detail = (f"{name} {ours:.4f} vs champion {theirs:.4f} (tolerated "
                      f"{gate.relative_margin:.1%} worse)")  # fmt: skip
            check(f"vs champion {name}", ours, theirs, ours <= bound, detail)
    reasons = [c["detail"] for c in checks if not c["passed"]]
    return GateDecision(not reasons, reasons, checks)
