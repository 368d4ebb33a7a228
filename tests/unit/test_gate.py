from __future__ import annotations

import pandas as pd

from innflow.config import GateConfig
from innflow.evaluation.gate import decide

GOOD = {"roc_auc": 0.85, "brier": 0.15, "ece": 0.03, "pr_auc": 0.8, "log_loss": 0.45, "cost": 100.0}
NO_SLICES = pd.DataFrame(columns=["slice", "value", "support", "roc_auc"])


def test_good_model_without_champion_passes() -> None:
    decision = decide(GOOD, NO_SLICES, None, GateConfig())
    assert decision.passed and decision.reasons == []


def test_absolute_bars_name_what_failed() -> None:
    bad = {**GOOD, "roc_auc": 0.7, "ece": 0.2}
    decision = decide(bad, NO_SLICES, None, GateConfig())
    assert not decision.passed
    assert any("ROC AUC 0.7000 (minimum 0.8)" in r for r in decision.reasons)
    assert any("calibration error" in r for r in decision.reasons)
    assert len(decision.reasons) == 2


def test_weak_slice_with_support_fails_small_one_does_not() -> None:
    slices = pd.DataFrame(
        {
            "slice": ["hotel", "hotel"],
            "value": ["A", "B"],
            "support": [500, 50],
            "roc_auc": [0.55, 0.4],
        }
    )
    decision = decide(GOOD, slices, None, GateConfig())
    assert decision.reasons == ["slice hotel=A ROC AUC 0.5500 on 500 bookings (floor 0.6)"]


def test_challenger_must_not_be_worse_than_champion_beyond_margin() -> None:
    gate = GateConfig(compare_metrics=["roc_auc", "brier"], margin=0.005)
    slightly_worse = {**GOOD, "roc_auc": 0.846, "brier": 0.152}
    assert decide(slightly_worse, NO_SLICES, GOOD, gate).passed
    worse = {**GOOD, "roc_auc": 0.84}
    decision = decide(worse, NO_SLICES, GOOD, gate)
    assert not decision.passed
    assert decision.reasons == ["roc_auc 0.8400 vs champion 0.8500 (tolerated loss 0.005)"]
    worse_brier = {**GOOD, "brier": 0.16}
    assert not decide(worse_brier, NO_SLICES, GOOD, gate).passed
