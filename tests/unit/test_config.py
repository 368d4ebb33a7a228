from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from innflow import config, data
from innflow.errors import ConfigError


def test_defaults_are_the_honest_choices() -> None:
    cfg = config.load()
    assert cfg.split.strategy == "time"
    assert cfg.split.validation_start == date(2016, 7, 1)
    assert cfg.split.test_start == date(2017, 1, 1)
    assert cfg.features.allow_known_later is False
    assert cfg.features.exclude is None and "arrival_date_year" in data.excluded(cfg.features)
    assert cfg.tracking.experiment == "hotel-cancellation"


def test_overrides_are_parsed_as_yaml_values() -> None:
    cfg = config.load(None, ["model.kind=xgboost", "model.params.max_depth=4", "seed=7"])
    assert cfg.model.kind == "xgboost"
    assert cfg.model.params == {"max_depth": 4}
    assert cfg.seed == 7


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.kindd=lightgbm", "unknown key 'model.kindd'"),
        ("seed=abc", "'seed'"),
        ("model.kind=catboost", "'model.kind'"),
        ("evaluation.threshold=1.5", "threshold"),
        ("split.test_start=2016-01-01", "test_start must be after validation_start"),
        ("seed", "key=value"),
        ("seed.x=1", "'seed': Input should be a valid integer"),
    ],
)
def test_bad_overrides_name_the_problem(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        config.load(None, [override])


def test_yaml_file_with_unknown_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  kind: lightgbm\n  colour: blue\n")
    with pytest.raises(ConfigError, match=r"unknown key 'model\.colour'"):
        config.load(path)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        config.load(bad)


def test_config_is_frozen() -> None:
    cfg = config.load()
    with pytest.raises(Exception, match="frozen"):
        cfg.seed = 3  # type: ignore[misc]


def test_digest_ignores_tracking_but_not_model() -> None:
    base = config.load()
    assert base.digest() == config.load(None, ["tracking.uri=http://x:5000"]).digest()
    assert base.digest() != config.load(None, ["model.params.num_leaves=8"]).digest()


def test_resolved_yaml_round_trips() -> None:
    import yaml

    cfg = config.load(None, ["model.params.learning_rate=0.1", "split.test_end=2017-06-30"])
    again = config.from_dict(yaml.safe_load(cfg.to_yaml()))
    assert again == cfg


def test_flatten_uses_dotted_keys() -> None:
    flat = config.flatten({"a": {"b": 1, "c": {"d": 2}}, "e": {}})
    assert flat == {"a.b": 1, "a.c.d": 2, "e": {}}


def test_override_into_a_value_is_refused() -> None:
    with pytest.raises(ConfigError, match="'kind' is not a section"):
        config.load(None, ["model.kind=logreg", "model.kind.x=1"])


def test_documented_default_file_equals_builtin_defaults() -> None:
    path = Path(__file__).resolve().parents[2] / "configs" / "default.yaml"
    assert config.load(path) == config.load()
