"""A regression model's figures: error metrics, the naive baseline, errors by slice, the
gate's verdict and monitoring's decay; and contracts written as changes to another.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from innflow import contract
from innflow.config import GateConfig, MonitoringConfig
from innflow.contract.bookings import BOOKINGS, of_model
from innflow.errors import ConfigError
from innflow.evaluation import classification, gate, regression
from innflow.monitoring import profile as profiles
from innflow.monitoring.check import check

ROOT = Path(__file__).resolve().parents[2]


def test_metrics_are_the_textbook_ones() -> None:
    y, p = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 2.0, 2.0, 6.0])
    found = regression.regression_metrics(y, p)
    assert found["rmse"] == pytest.approx(np.sqrt((1 + 0 + 1 + 4) / 4))
    assert found["mae"] == pytest.approx(1.0)
    assert found["bias"] == pytest.approx(0.5)  # predicted - actual: over by half on average
    assert found["r2"] == pytest.approx(1 - 6 / 5)


def test_baseline_is_the_group_median_falling_back_to_coarser_groups() -> None:
    train = pd.DataFrame({"hotel": ["a", "a", "a", "b", "b"], "room": ["x", "x", "y", "x", "x"]})
    y = np.array([10.0, 20.0, 100.0, 50.0, 70.0])
    scored = pd.DataFrame({"hotel": ["a", "a", "b", "c"], "room": ["x", "z", "y", "x"]})
    got = regression.group_median_baseline(train, y, scored, ["hotel", "room"])
    # (a, x) seen: 15; (a, z) unseen: a's median 20; (b, y): b's 60; hotel c: overall 50
    assert got.tolist() == [15.0, 20.0, 60.0, 50.0]
    assert regression.group_median_baseline(train, y, scored, []).tolist() == [50.0] * 4


def test_slice_errors_flag_a_slice_well_above_the_overall_rmse() -> None:
    slices = pd.DataFrame({"hotel": ["a"] * 300 + ["b"] * 300 + ["c"] * 10})
    y = np.zeros(610)
    predicted = np.r_[np.full(300, 1.0), np.full(300, 3.0), np.full(10, 5.0)]
    table = regression.slice_errors(slices, y, predicted, min_support=200, max_error_ratio=0.25)
    flagged = dict(zip(table["value"], table["flagged"], strict=True))
    assert flagged == {"a": False, "b": True, "c": False}  # c is worse, but 10 rows


def test_the_regression_gate() -> None:
    bars = GateConfig(min_r2=0.5, max_rmse=30.0)
    good = {"rmse": 27.0, "mae": 20.0, "r2": 0.7, "bias": 0.0, "baseline_rmse": 36.0}
    assert gate.decide_regression(good, None, bars).passed
    weak = {**good, "r2": 0.4, "rmse": 37.0}
    reasons = gate.decide_regression(weak, None, bars).reasons
    assert len(reasons) == 3 and any("naive baseline" in r for r in reasons)
    champion = {**good, "rmse": 26.0, "mae": 20.0}
    worse = gate.decide_regression(good, champion, bars)  # 27 > 26 * 1.01
    assert not worse.passed and worse.reasons[0].startswith("rmse 27.0000 vs champion 26.0000")
    assert gate.decide_regression(good, {**good, "rmse": 26.8}, bars).passed  # within 1%


def test_a_contract_extends_another_and_is_logged_whole(tmp_path: Path) -> None:
    adr = contract.load(ROOT / "configs" / "contracts" / "adr.yaml")
    assert (adr.task, adr.target, adr.columns["is_canceled"].role) == ("regression", "adr",
                                                                     "outcome")  # fmt: skip
    assert adr.columns["lead_time"] == BOOKINGS.columns["lead_time"]  # the rest unchanged
    assert "is_canceled" not in adr.inputs and "adr" not in adr.inputs
    assert "extends" not in adr.text and contract.parse(adr.text) == adr
    assert of_model({"innflow_contract": adr.text}) == adr
    assert of_model({}) is BOOKINGS and of_model({"innflow_contract": BOOKINGS.text}) is BOOKINGS
    # the base keeps its target: two targets is refused, as in any contract
    (tmp_path / "two.yaml").write_text("extends: bookings\ntarget: adr\ntask: regression\n")
    with pytest.raises(ConfigError, match="one target only"):
        contract.load(tmp_path / "two.yaml")
    (tmp_path / "lost.yaml").write_text("extends: nowhere.yaml\n")
    with pytest.raises(ConfigError, match=r"extends .nowhere\.yaml., which cannot be read"):
        contract.load(tmp_path / "lost.yaml")
    (tmp_path / "new.yaml").write_text("extends: bookings\ncolumns:\n  points: {role: feature}\n")
    with pytest.raises(ConfigError, match="'points': type must be one of"):
        contract.load(tmp_path / "new.yaml")  # a column the base lacks is declared whole


def test_slices_default_to_another_data_sets_text_features() -> None:
    gym = contract.from_mapping({"target": "churned", "columns": {
        "club": {"type": "text"}, "plan": {"type": "text"}, "member": {"type": "text",
        "role": "identifier"}, "visits": {"type": "integer", "minimum": 0},
        "churned": {"type": "integer", "categories": [0, 1]}}})  # fmt: skip
    assert classification.slice_columns(["hotel", "lead_time_bucket"], gym) == ("club", "plan")
    assert classification.slice_columns(["plan", "hotel"], gym) == ("plan",)
    assert "lead_time_bucket" in classification.slice_columns(["lead_time_bucket"], BOOKINGS)


def test_a_regression_model_decays_when_its_error_rises_or_its_bias_moves() -> None:
    rng = np.random.default_rng(1)
    training = pd.DataFrame({"lead_time": rng.integers(0, 300, 1000)})
    y = rng.normal(100, 20, 1000)
    held_out = y + rng.normal(0, 10, 1000)
    adr = contract.load(ROOT / "configs" / "contracts" / "adr.yaml")
    reference = profiles.build(training, held_out, y, contract=adr)
    assert reference.errors is not None and reference.performance is None
    t = MonitoringConfig()
    same = check(reference, training, held_out, t, y)
    assert not same.decay and same.performance["rmse"] == pytest.approx(reference.errors.rmse)
    noisier = check(reference, training, y + rng.normal(0, 13, 1000), t, y)
    assert noisier.decay and "RMSE rise" in noisier.reasons[-1]
    shifted = check(reference, training, held_out - 12.0, t, y)  # prices rose under the model
    assert shifted.decay and "mean error" in shifted.reasons[-1]


def test_another_contracts_fast_path_is_used_only_when_it_matches_the_pipeline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from innflow import config
    from innflow.modeling import models
    from innflow.serving import contract_path, core

    shop = contract.from_mapping({"task": "regression", "target": "price", "columns": {
        "store": {"type": "text"}, "units": {"type": "integer", "minimum": 0, "nullable": True},
        "sold_on": {"type": "date"}, "price": {"type": "number"}}})  # fmt: skip
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({
        "store": rng.choice(["a", "b", "c"], 400), "units": rng.integers(0, 9, 400).astype(float),
        "sold_on": pd.date_range("2022-01-01", periods=400).strftime("%Y-%m-%d"),
    })  # fmt: skip
    frame.loc[::7, "units"] = np.nan
    y = rng.normal(10, 2, 400) + frame["units"].fillna(0).to_numpy()
    cfg = config.load(None, ["model.params.n_estimators=20"])
    pipeline = models.fit(models.build_pipeline(cfg, list(frame.columns), 1, shop), frame, y, 1)
    arrays = core.columns_of(frame, list(frame.columns))
    scorer = contract_path.verified(pipeline, frame, arrays)
    assert scorer is not None and np.array_equal(scorer.predict(arrays), pipeline.predict(frame))
    # a scorer that strays by one ulp is not used: the pipeline answers
    stray = contract_path.ContractScorer.predict
    monkeypatch.setattr(contract_path.ContractScorer, "predict",
                        lambda self, c: np.nextafter(stray(self, c), np.inf))  # fmt: skip
    assert contract_path.verified(pipeline, frame, arrays) is None
