from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from innflow import config, data
from innflow.config import MODEL_KINDS
from innflow.errors import ConfigError
from innflow.modeling import models

SMALL = {
    "logreg": {},
    "random_forest": {"n_estimators": 20},
    "hist_gb": {"max_iter": 30},
    "lightgbm": {"n_estimators": 30},
    "xgboost": {"n_estimators": 30},
}


@pytest.fixture(scope="module")
def frames(sample_frame: pd.DataFrame):
    frame = data.validate(sample_frame)
    columns = data.input_columns(config.load().features)
    return frame[columns].iloc[:3000], frame["is_canceled"].to_numpy()[:3000], columns


def _config(kind: str, **params) -> config.Config:
    overrides = [f"model.kind={kind}"] + [
        f"model.params.{k}={v}" for k, v in {**SMALL[kind], **params}.items()
    ]
    return config.load(None, overrides)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_every_kind_fits_and_gives_probabilities(kind: str, frames) -> None:
    X, y, columns = frames
    pipeline = models.fit(models.build_pipeline(_config(kind), columns, 2), X, y, 2)
    proba = models.predict_proba(pipeline, X, 2)
    assert proba.shape == (len(X),) and proba.dtype == np.float64
    assert ((proba >= 0) & (proba <= 1)).all()
    assert models.pipeline_kind(pipeline) == kind


@pytest.mark.parametrize("kind", ["lightgbm", "xgboost", "hist_gb", "random_forest", "logreg"])
def test_predictions_do_not_depend_on_thread_count(kind: str, frames) -> None:
    X, y, columns = frames
    runs = []
    for threads in (1, 2):
        pipeline = models.fit(models.build_pipeline(_config(kind), columns, threads), X, y, threads)
        runs.append(models.predict_proba(pipeline, X, threads))
    assert runs[0].tobytes() == runs[1].tobytes()


def test_random_forest_is_stored_single_threaded(frames) -> None:
    X, y, columns = frames
    pipeline = models.fit(models.build_pipeline(_config("random_forest"), columns, 2), X, y, 2)
    assert pipeline.named_steps["model"].n_jobs == 1


def test_unknown_and_pinned_params_are_refused(frames) -> None:
    _, _, columns = frames
    with pytest.raises(ConfigError, match="lightgbm has no parameter"):
        models.build_pipeline(_config("lightgbm", num_leafs=8), columns, 1)
    with pytest.raises(ConfigError, match="random_state are set by innflow"):
        models.build_pipeline(_config("xgboost", random_state=3), columns, 1)


def test_invalid_param_value_fails_at_fit_with_clear_error(frames) -> None:
    X, y, columns = frames
    pipeline = models.build_pipeline(_config("hist_gb", learning_rate=-1), columns, 1)
    with pytest.raises(ConfigError, match="learning_rate"):
        models.fit(pipeline, X, y, 1)


def test_unseen_category_is_valid_input(frames) -> None:
    X, y, columns = frames
    pipeline = models.fit(models.build_pipeline(_config("lightgbm"), columns, 1), X, y, 1)
    odd = X.head(3).copy()
    odd["market_segment"] = "Brand New Segment"
    odd["agent"] = 99999.0
    proba = models.predict_proba(pipeline, odd, 1)
    assert np.isfinite(proba).all()


def test_native_importance_sums_to_one(frames) -> None:
    X, y, columns = frames
    pipeline = models.fit(models.build_pipeline(_config("lightgbm"), columns, 1), X, y, 1)
    importance = models.feature_importance(pipeline)
    assert importance.sum() == pytest.approx(1.0)
    assert importance.index[0] in set(pipeline.named_steps["encode"].get_feature_names_out())
