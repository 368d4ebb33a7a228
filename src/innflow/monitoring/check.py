"""One monitoring check: drift and performance of a batch against a model's reference
profile, turned into a status by the thresholds. ``healthy`` or an alert (drift, decay or
both) with the reasons: the retraining trigger.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from innflow.monitoring import drift, performance
from innflow.monitoring.profile import Errors, Performance, ReferenceProfile
from innflow.monitoring.settings import MonitoringConfig


@dataclass
class MonitorResult:
    """Everything one check found, and its verdict."""

    rows: int
    features: list[drift.FeatureDrift]
    prediction: drift.FeatureDrift
    performance: dict[str, float] | None
    reference: Performance | Errors | None  # the model's held-out figures
    variants: pd.DataFrame | None
    drift: bool
    decay: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``healthy``, ``drift``, ``decay`` or ``drift+decay``."""
        found = [name for name, on in (("drift", self.drift), ("decay", self.decay)) if on]
        return "+".join(found) or "healthy"

    @property
    def healthy(self) -> bool:
        """No threshold crossed."""
        return not (self.drift or self.decay)

    def shifted(self, threshold: float) -> list[str]:
        """Features whose PSI reaches ``threshold``."""
        return [d.feature for d in self.features if d.psi >= threshold]

    def metrics(self) -> dict[str, float]:
        """Flat figures for a tracking run (NaN-free): ``psi.<feature>``,
        ``distance.<feature>``, ``prediction_psi``, ``roc_auc``..., ``reference_roc_auc``...,
        ``variant.<variant>.v<version>.roc_auc``.
        """
        found: dict[str, float] = {"rows": float(self.rows), "prediction_psi": self.prediction.psi}
        for d in self.features:
            found[f"psi.{d.feature}"] = d.psi
            found[f"distance.{d.feature}"] = d.distance
        for name, value in (self.performance or {}).items():
            found[name] = value
        if self.reference is not None:
            found.update(
                {f"reference_{k}": float(v) for k, v in self.reference.model_dump().items()}
            )
        if self.variants is not None:
            for r in self.variants.itertuples():
                for name in ("roc_auc", "roc_auc_low", "roc_auc_high", "rows"):
                    found[f"variant.{r.variant}.v{r.model_version}.{name}"] = float(
                        getattr(r, name)
                    )
        return {k: float(v) for k, v in found.items() if not math.isnan(v)}

    def to_dict(self) -> dict:
        """JSON form (NaN as null)."""

        def clean(value: object) -> object:
            if isinstance(value, float) and math.isnan(value):
                return None
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list):
                return [clean(v) for v in value]
            return value

        return clean(  # type: ignore[return-value]
            {
                "status": self.status,
                "reasons": self.reasons,
                "rows": self.rows,
                "features": [d.to_dict() for d in self.features],
                "prediction": self.prediction.to_dict(),
                "performance": self.performance,
                "reference_performance": self.reference.model_dump() if self.reference else None,
                "variants": None
                if self.variants is None
                else self.variants.to_dict(orient="records"),
            }
        )


def check(
    profile: ReferenceProfile,
    batch: pd.DataFrame,
    scores: np.ndarray,
    thresholds: MonitoringConfig,
    labels: np.ndarray | None = None,
    log: pd.DataFrame | None = None,
) -> MonitorResult:
    """Compare a batch (model inputs) and its scores with the profile; with ``labels`` (NaN
    where the outcome is not known yet) also performance against the model's held-out
    figures; with a labelled prediction ``log`` (variant, model_version, is_canceled,
    probability) the per-variant comparison.
    """
    t = thresholds
    features = drift.feature_drift(profile, batch, t.psi_moderate, t.psi_shift)
    prediction = drift.prediction_drift(profile, scores, t.psi_moderate, t.prediction_psi_shift)
    reasons = []
    shifted = [d for d in features if d.psi >= t.psi_shift]
    if len(shifted) > t.max_shifted_features:
        named = ", ".join(f"{d.feature} {d.psi:.3f}" for d in shifted)
        reasons.append(f"{len(shifted)} feature(s) with PSI >= {t.psi_shift}: {named}")
    if prediction.psi >= t.prediction_psi_shift:
        reasons.append(f"prediction PSI {prediction.psi:.3f} >= {t.prediction_psi_shift}")
    is_drift = bool(reasons)
    figures = None
    decayed: list[str] = []
    known = ~np.isnan(labels) if labels is not None else np.zeros(len(scores), dtype=bool)
    reference: Performance | Errors | None = profile.performance
    if profile.errors is not None:  # a regression model
        reference = profile.errors
        if known.any():
            y = np.asarray(labels, dtype="float64")[known]
            figures, decayed = _errors(profile.errors, y, np.asarray(scores)[known], t)
    elif known.any():
        y = np.asarray(labels)[known].astype(int)
        figures = performance.figures(y, np.asarray(scores)[known], t.calibration_bins)
        reference = profile.performance
        if reference is not None and len(y) >= t.min_labelled_rows:
            checks = (
                ("ROC AUC", reference.roc_auc - figures["roc_auc"], t.max_roc_auc_drop, "drop"),
                ("Brier", figures["brier"] - reference.brier, t.max_brier_rise, "rise"),
                ("ECE", figures["ece"] - reference.ece, t.max_ece_rise, "rise"),
            )
            for name, change, limit, word in checks:
                if change > limit:
                    decayed.append(f"{name} {word} {change:.4f} > {limit} vs the model's test")
    variants = None
    if log is not None and len(log):
        variants = performance.by_variant(
            log, t.bootstrap_rounds, t.confidence, t.seed, t.calibration_bins
        )
    return MonitorResult(
        len(batch),
        features,
        prediction,
        figures,
        reference,
        variants,
        is_drift,
        bool(decayed),
        reasons + decayed,
    )


def _errors(
    reference: Errors, y: np.ndarray, predicted: np.ndarray, t: MonitoringConfig
) -> tuple[dict[str, float], list[str]]:
    """A regression model's errors on the labelled rows, and its decay against the test
    window's: RMSE risen by more than ``max_rmse_rise`` (a fraction), or the mean error
    moved by more than ``max_bias_shift`` of the target's mean (prices moved under it).
    """
    error = predicted - y
    figures = {
        "rows": float(len(y)), "target_mean": float(y.mean()),
        "rmse": float(np.sqrt(np.mean(error**2))), "mae": float(np.mean(np.abs(error))),
        "bias": float(error.mean()),
    }  # fmt: skip
    decayed = []
    if len(y) >= t.min_labelled_rows:
        rise = figures["rmse"] / reference.rmse - 1 if reference.rmse > 0 else 0.0
        if rise > t.max_rmse_rise:
            decayed.append(f"RMSE rise {rise:.1%} > {t.max_rmse_rise:.0%} vs the model's test "
                           f"({figures['rmse']:.4f} vs {reference.rmse:.4f})")  # fmt: skip
        scale = abs(reference.target_mean) or 1.0
        shift = abs(figures["bias"] - reference.bias) / scale
        if shift > t.max_bias_shift:
            decayed.append(f"mean error {figures['bias']:+.4f} vs the model's test "
                           f"{reference.bias:+.4f}: moved {shift:.1%} of the target's mean "
                           f"(> {t.max_bias_shift:.0%})")  # fmt: skip
    return figures, decayed
