from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy, wasserstein_distance

from innflow import data as bookings
from innflow.config import FeaturesConfig
from innflow.errors import ConfigError
from innflow.monitoring import drift, performance, policies, profile, settings
from innflow.monitoring.check import check

COLUMNS = bookings.input_columns(FeaturesConfig())


def test_psi_is_the_symmetrised_kl_divergence_of_scipy() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        expected, actual = rng.dirichlet(np.ones(8)), rng.dirichlet(np.ones(8))
        assert drift.psi(expected, actual) == pytest.approx(
            entropy(actual, expected) + entropy(expected, actual), rel=1e-9
        )
    assert drift.psi(expected, expected) == 0.0


def test_numeric_bins_match_numpy_and_keep_nulls_apart() -> None:
    rng = np.random.default_rng(2)
    values = rng.gamma(2.0, 30.0, 5000)
    values[::50] = np.nan
    found = profile.numeric_profile(values, bins=10)
    assert found.missing == pytest.approx(0.02)
    assert len(found.shares) == len(found.edges) + 1 == 10
    edges = np.concatenate([[-np.inf], found.edges, [np.inf]])
    present = values[~np.isnan(values)]
    counts = np.array(
        [((present > a) & (present <= b)).sum() for a, b in itertools.pairwise(edges)]
    )
    assert np.allclose(found.shares, counts / len(present))
    shares = drift.numeric_shares(found, values)
    assert shares[-1] == pytest.approx(0.02) and shares.sum() == pytest.approx(1.0)


def test_mostly_zero_columns_get_a_bin_for_zero() -> None:
    values = np.r_[np.zeros(950), np.arange(1, 51)].astype(float)
    found = profile.numeric_profile(values)
    assert found.edges[0] == 0.0 and found.shares[0] == pytest.approx(0.95)


def test_wasserstein_from_the_sketch_matches_scipy_on_the_full_sample() -> None:
    rng = np.random.default_rng(3)
    reference = rng.gamma(2.0, 40.0, 20_000)
    for shift in (0.0, 10.0, 40.0):
        batch = rng.gamma(2.0, 40.0, 3000) + shift
        sketch = profile.numeric_profile(reference)
        found = drift.numeric_drift("x", sketch, batch, 0.1, 0.25)
        exact = wasserstein_distance(reference, batch) / reference.std()
        assert found.distance == pytest.approx(exact, abs=0.03)


def test_known_shifts_fall_in_the_right_bands() -> None:
    rng = np.random.default_rng(4)
    reference = profile.numeric_profile(rng.normal(0, 1, 50_000))
    same = drift.numeric_drift("x", reference, rng.normal(0, 1, 5000), 0.1, 0.25)
    small = drift.numeric_drift("x", reference, rng.normal(0.4, 1, 5000), 0.1, 0.25)
    large = drift.numeric_drift("x", reference, rng.normal(1.0, 1, 5000), 0.1, 0.25)
    assert (same.band, small.band, large.band) == ("stable", "moderate", "shift")
    assert same.psi < small.psi < large.psi


def test_categories_are_capped_and_unseen_levels_pool_in_other() -> None:
    values = pd.Series([f"L{i % 30}" for i in range(3000)] + [None] * 30)
    found = profile.categorical_profile(values, max_levels=10)
    assert len(found.levels) == 10 and found.other == pytest.approx(1 - sum(found.shares))
    batch = pd.Series(["never-seen"] * 100 + [found.levels[0]] * 100)
    result = drift.categorical_drift("c", found, batch, 0.1, 0.25)
    assert result.current[-1] == pytest.approx(0.5) and result.band == "shift"
    reference = np.append(found.shares, found.other)
    assert result.distance == pytest.approx(jensenshannon(reference, result.current, base=2))


def test_identifier_codes_are_levels_without_decimals() -> None:
    codes = pd.Series([9.0, 240.0, np.nan, 9.0])
    shares = profile.level_shares(codes)
    assert shares.to_dict() == {"9": 0.5, "240": 0.25, profile.MISSING: 0.25}
    assert profile.level_shares(pd.Series(["b", "a", None, "a"])).index.tolist() == [
        "a",
        profile.MISSING,
        "b",
    ]
    assert profile.is_categorical("agent") and not profile.is_categorical("lead_time")


def _window(sample_frame: pd.DataFrame) -> pd.DataFrame:
    frame = bookings.validate(sample_frame)
    return frame[bookings.arrival_dates(frame) < "2017-01-01"].reset_index(drop=True)


def test_no_drift_between_two_random_halves_of_the_training_window(sample_frame) -> None:
    window = _window(sample_frame)
    order = np.random.default_rng(5).permutation(len(window))
    first, second = window.iloc[order[::2]], window.iloc[order[1::2]]
    scores = np.random.default_rng(6).beta(2, 3, len(window))
    reference = profile.build(first[COLUMNS], scores[order[::2]])
    result = check(reference, second[COLUMNS], scores[order[1::2]], settings.MonitoringConfig())
    assert result.healthy and result.status == "healthy"
    assert max(d.psi for d in result.features) < 0.1
    assert not set(profile.CALENDAR) & {d.feature for d in result.features}


def test_doubled_lead_time_is_drift_named_by_feature(sample_frame) -> None:
    window = _window(sample_frame)
    scores = np.random.default_rng(7).beta(2, 3, len(window))
    reference = profile.build(window[COLUMNS], scores)
    shifted = window[COLUMNS].assign(lead_time=window["lead_time"] * 2)
    result = check(reference, shifted, scores, settings.MonitoringConfig())
    assert result.drift and not result.decay and result.status == "drift"
    assert result.shifted(0.25) == ["lead_time"]
    assert "lead_time" in result.reasons[0]


def test_decay_against_the_models_own_test_figures() -> None:
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 4000)
    good = np.clip(y * 0.6 + rng.normal(0.2, 0.15, 4000), 0, 1)
    frame = pd.DataFrame({"lead_time": rng.integers(0, 300, 4000)})
    reference = profile.build(frame, good, y)
    assert reference.performance is not None and reference.performance.roc_auc > 0.9
    thresholds = settings.MonitoringConfig()
    labels = y.astype(float)
    assert not check(reference, frame, good, thresholds, labels).decay
    worse = np.clip(good + rng.normal(0, 0.4, 4000), 0, 1)
    decayed = check(reference, frame, worse, thresholds, labels)
    assert decayed.decay and any("ROC AUC drop" in r for r in decayed.reasons)
    unknown = np.full(4000, np.nan)
    unknown[:100] = labels[:100]  # too few outcomes to judge
    few = check(reference, frame, worse, thresholds, unknown)
    assert not few.decay and few.performance is not None and few.performance["rows"] == 100


def test_bootstrap_interval_holds_the_estimate_and_narrows_with_data() -> None:
    rng = np.random.default_rng(9)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 2, n)
        return y, np.clip(y * 0.3 + rng.normal(0.35, 0.2, n), 0, 1)

    y, p = sample(300)
    low, high = performance.bootstrap_auc(y, p)
    assert low < performance.figures(y, p)["roc_auc"] < high
    y_big, p_big = sample(5000)
    low_big, high_big = performance.bootstrap_auc(y_big, p_big)
    assert high_big - low_big < (high - low) / 2
    assert np.isnan(performance.bootstrap_auc(np.ones(10), p[:10])[0])


def test_weighted_auc_matches_sklearn_with_sample_weights() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(13)
    y = rng.integers(0, 2, 500)
    p = np.round(np.clip(y * 0.3 + rng.normal(0.35, 0.2, 500), 0, 1), 2)  # many ties
    weights = rng.multinomial(500, np.full(500, 1 / 500), size=5)
    found = performance.weighted_auc(y, p, weights)
    expected = [roc_auc_score(y, p, sample_weight=w) for w in weights]
    assert np.allclose(found, expected, atol=1e-12)


def test_variants_are_compared_per_version() -> None:
    rng = np.random.default_rng(10)
    y = rng.integers(0, 2, 2000)
    log = pd.DataFrame(
        {
            "variant": ["production"] * 1000 + ["staging"] * 1000,
            "model_version": ["1"] * 1000 + ["2"] * 1000,
            "is_canceled": y,
            "probability": np.r_[
                np.clip(y[:1000] * 0.5 + rng.normal(0.25, 0.2, 1000), 0, 1), rng.uniform(size=1000)
            ],
        }
    )
    table = performance.by_variant(log, rounds=100)
    assert table["variant"].tolist() == ["production", "staging"]
    production, staging = table.iloc[0], table.iloc[1]
    assert production["roc_auc_low"] > staging["roc_auc_high"]  # the better one, with confidence


def test_profile_survives_json(sample_frame) -> None:
    window = _window(sample_frame)
    scores = np.random.default_rng(11).uniform(size=len(window))
    built = profile.build(window[COLUMNS], scores, window["is_canceled"].to_numpy())
    assert profile.from_dict(json.loads(json.dumps(built.to_dict()))) == built
    assert set(built.categorical) >= {"hotel", "agent", "market_segment"}


def test_policies_decide_from_last_months_check(sample_frame) -> None:
    window = _window(sample_frame)
    scores = np.random.default_rng(12).uniform(size=len(window))
    reference = profile.build(window[COLUMNS], scores)
    healthy = check(reference, window[COLUMNS], scores, settings.MonitoringConfig())
    drifted = check(
        reference,
        window[COLUMNS].assign(adr=window["adr"] * 3),
        scores,
        settings.MonitoringConfig(),
    )
    expected = {
        "never": (False, False, False),
        "monthly": (True, True, True),
        "on-drift": (False, False, True),
        "on-decay": (False, False, False),
    }
    for policy, wanted in expected.items():
        got = tuple(policies.wants_retrain(policy, last) for last in (None, healthy, drifted))
        assert got == wanted, policy
    with pytest.raises(ConfigError, match="unknown policy sometimes"):
        policies.validate(["never", "sometimes"])


def test_thresholds_come_from_the_monitoring_key(tmp_path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("seed: 7\nmonitoring:\n  psi_shift: 0.3\n")
    run, thresholds = settings.load(path, ["monitoring.max_shifted_features=2"])
    assert run.seed == 7 and thresholds.psi_shift == 0.3 and thresholds.max_shifted_features == 2
    path.write_text("monitoring:\n  psi_shfit: 0.3\n")
    with pytest.raises(ConfigError, match=r"monitoring\.psi_shfit"):
        settings.load(path)
    with pytest.raises(ConfigError, match="psi_shift"):
        settings.load(None, ["monitoring.psi_shift=-1"])


def test_alert_rules_use_metrics_innflow_exports(tmp_path, sample_frame) -> None:
    import re
    from pathlib import Path

    import yaml

    from innflow.monitoring.exposition import write_textfile
    from innflow.serving.metrics import ServiceMetrics

    exported = set()
    for family in ServiceMetrics().registry.collect():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
        exported |= {family.name + s for s in suffixes.get(family.type, [""])}
    window = _window(sample_frame)
    scores = np.random.default_rng(14).uniform(size=len(window))
    reference = profile.build(window[COLUMNS], scores, window["is_canceled"].to_numpy())
    log = pd.DataFrame(
        {
            "variant": "production",
            "model_version": "1",
            "is_canceled": window["is_canceled"],
            "probability": scores,
        }
    )
    labels = window["is_canceled"].to_numpy(dtype=float)
    result = check(reference, window[COLUMNS], scores, settings.MonitoringConfig(), labels, log)
    write_textfile(result, {"name": "m", "version": "1", "uri": "models:/m/1"}, tmp_path / "m.prom")
    exported |= set(re.findall(r"^(innflow_\w+)", (tmp_path / "m.prom").read_text(), re.M))
    rules_file = Path(__file__).parents[2] / "deploy" / "prometheus" / "alerts.yml"
    rules = [r for g in yaml.safe_load(rules_file.read_text())["groups"] for r in g["rules"]]
    assert {
        "InnflowFeatureDrift",
        "InnflowPerformanceDecay",
        "InnflowHighErrorRate",
        "InnflowHighLatency",
    } <= {r["alert"] for r in rules}
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical")
        used = set(re.findall(r"\b(innflow_\w+)", rule["expr"]))
        assert used and used <= exported, (rule["alert"], used - exported)


def test_a_training_config_may_carry_monitoring_thresholds(tmp_path) -> None:
    from innflow import config

    path = tmp_path / "config.yaml"
    path.write_text("seed: 7\nmonitoring:\n  psi_shift: 0.3\n")
    cfg = config.load(path)
    assert cfg.monitoring.psi_shift == 0.3
    # thresholds do not change what a training run is, so reuse and reproduce ignore them
    assert cfg.digest() == config.load(None, ["seed=7"]).digest()
