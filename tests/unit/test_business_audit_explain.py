from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from innflow import config, data
from innflow.config import CostConfig
from innflow.evaluation import audit, business, classification, explain
from innflow.modeling import models


def test_expected_calibration_error_by_hand() -> None:
    # bin [0.1, 0.2): two bookings at 0.1, one cancels -> gap 0.4
    # bin [0.9, 1.0): one booking at 0.9 that cancels -> gap 0.1
    y = np.array([0, 1, 1])
    p = np.array([0.1, 0.1, 0.9])
    assert classification.expected_calibration_error(y, p, bins=10) == pytest.approx(
        (2 * 0.4 + 0.1) / 3
    )
    assert classification.expected_calibration_error(np.array([0, 1]), np.array([0.0, 1.0])) == 0


def test_slice_metrics_support_and_flags() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    good = np.where(y == 1, 0.8, 0.2) + rng.normal(0, 0.05, 400)
    noise = rng.uniform(0, 1, 400)
    slices = pd.DataFrame({"hotel": ["A"] * 400 + ["B"] * 400})
    table = classification.slice_metrics(
        slices, np.concatenate([y, y]), np.concatenate([good, noise]), 100, 0.05
    )
    rows = {r.value: r for r in table.itertuples()}
    assert rows["A"].support == 400 and rows["A"].roc_auc > 0.99
    assert rows["B"].flagged and not rows["A"].flagged
    assert rows["A"].cancel_rate == pytest.approx(y.mean())


def test_lead_time_buckets() -> None:
    frame = pd.DataFrame({"lead_time": [0, 7, 8, 400]})
    buckets = classification.slice_frame(frame, ("lead_time_bucket",))["lead_time_bucket"].tolist()
    assert buckets == ["0-7d", "0-7d", "8-30d", ">365d"]


def _stays(adr: list[float], nights: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {"adr": adr, "stays_in_weekend_nights": [0] * len(adr), "stays_in_week_nights": nights}
    )


def test_cost_of_decisions_by_hand() -> None:
    raw = _stays([100.0, 100.0, 50.0, 80.0], [2, 1, 4, 1])
    miss = business.missed_cancellation_cost(raw, CostConfig(unsold_fraction=0.5, walk_cost=30))
    assert miss.tolist() == [100.0, 50.0, 100.0, 40.0]
    y = np.array([1, 1, 0, 0])
    p = np.array([0.9, 0.3, 0.6, 0.1])
    summary = business.summarize(y, p, miss, walk_cost=30, threshold=0.5)
    # flagged: 0 (cancels: saved) and 2 (stays: walked, 30); missed: 1 (50)
    assert summary.cost == 80 and summary.baseline_cost == 150 and summary.saving == 70
    curve = business.cost_curve(y, p, miss, 30)
    assert business.min_cost_threshold(curve) == pytest.approx(0.11)  # flags 0 and 1 (and 2)
    assert curve["cost"].min() == 30


def test_negative_adr_costs_nothing() -> None:
    miss = business.missed_cancellation_cost(_stays([-6.38], [3]), CostConfig())
    assert miss.tolist() == [0.0]


def test_leakage_audit_finds_the_parking_space_pattern() -> None:
    frame = pd.DataFrame(
        {
            "is_canceled": [0] * 600 + [1] * 300 + [0] * 300,
            "required_car_parking_spaces": [1] * 600 + [0] * 600,
            "hotel": ["City Hotel"] * 1200,
        }
    )
    table = audit.leakage_audit(
        frame, ["required_car_parking_spaces", "hotel"], {"hotel"}, min_support=500, max_purity=0.99
    )
    assert table["condition"].tolist() == ["required_car_parking_spaces > 0"]
    assert table.iloc[0]["support"] == 600 and table.iloc[0]["cancel_rate"] == 0
    assert not table.iloc[0]["used_by_model"]


@pytest.fixture(scope="module")
def fitted(sample_frame: pd.DataFrame):
    def fit(kind: str):
        cfg = config.load(
            None,
            [f"model.kind={kind}", "model.params.n_estimators=30"]
            if kind != "logreg"
            else ["model.kind=logreg"],
        )
        frame = data.validate(sample_frame)
        cols = data.input_columns(cfg.features)
        pipeline = models.fit(
            models.build_pipeline(cfg, cols, 1), frame[cols], frame["is_canceled"].to_numpy(), 1
        )
        return pipeline, frame[cols].head(200)

    return fit


@pytest.mark.parametrize("kind", ["lightgbm", "xgboost", "logreg"])
def test_contributions_add_up_to_the_models_log_odds(fitted, kind: str) -> None:
    pipeline, X = fitted(kind)
    contrib = explain.contributions(pipeline, X)
    proba = pipeline.predict_proba(X)[:, 1]
    np.testing.assert_allclose(contrib.sum(axis=1), np.log(proba / (1 - proba)), atol=1e-6)
    assert "lead_time" in contrib.columns and "agent" in contrib.columns


def test_explain_one_booking(fitted) -> None:
    pipeline, X = fitted("lightgbm")
    reasons = explain.explain_booking(pipeline, X.iloc[[0]], top=3)
    assert len(reasons) == 3
    magnitudes = [abs(r["contribution"]) for r in reasons]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert all(r["effect"] in ("raises", "lowers") for r in reasons)


@pytest.mark.parametrize("kind", ["lightgbm", "logreg"])
def test_a_batch_is_explained_as_each_booking_alone(fitted, kind: str) -> None:
    pipeline, X = fitted(kind)
    batch = explain.explain_bookings(pipeline, X.head(40), top=4)
    assert batch == [explain.explain_booking(pipeline, X.iloc[[i]], top=4) for i in range(40)]
    contrib = explain.contributions(pipeline, X.head(40)).drop(columns="bias")
    for i, reasons in enumerate(batch):  # each row's own largest contributions, in order
        largest = contrib.iloc[i].abs().sort_values(ascending=False).head(4)
        assert [r["feature"] for r in reasons] == list(largest.index)


def test_unsupported_kind_says_so(fitted) -> None:
    pipeline, X = fitted("random_forest")
    with pytest.raises(explain.ExplanationUnavailable, match="random_forest"):
        explain.contributions(pipeline, X)
