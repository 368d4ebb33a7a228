from __future__ import annotations

import numpy as np
import pytest

from innflow.evaluation import classification


def test_metrics_on_a_hand_made_example() -> None:
    y = np.array([0, 0, 1, 1])
    proba = np.array([0.1, 0.6, 0.4, 0.9])
    m = classification.classification_metrics(y, proba, threshold=0.5)
    assert m["roc_auc"] == pytest.approx(0.75)  # one of four pairs mis-ordered
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["precision"] == pytest.approx(0.5)
    assert m["recall"] == pytest.approx(0.5)
    assert m["brier"] == pytest.approx((0.01 + 0.36 + 0.36 + 0.01) / 4)
    assert set(m) == set(classification.METRIC_NAMES)


def test_max_f1_threshold_picks_the_best_cut() -> None:
    y = np.array([0, 0, 0, 1, 1, 1])
    proba = np.array([0.1, 0.2, 0.55, 0.5, 0.8, 0.9])
    threshold = classification.choose_threshold(y, proba, "max_f1")
    # cutting at 0.5 catches all three cancellations with one false alarm: F1 = 6/7
    assert threshold == pytest.approx(0.5)
    assert classification.classification_metrics(y, proba, threshold)["f1"] == pytest.approx(6 / 7)


def test_fixed_threshold_is_used_as_given() -> None:
    assert classification.choose_threshold(np.array([0, 1]), np.array([0.2, 0.8]), 0.3) == 0.3


def test_single_class_gives_nan_auc_not_a_crash() -> None:
    m = classification.classification_metrics(np.array([1, 1]), np.array([0.2, 0.8]), 0.5)
    assert np.isnan(m["roc_auc"])
