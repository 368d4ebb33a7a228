"""Build the one scikit-learn Pipeline per model kind, with what each kind needs to be
bit-reproducible pinned in its parameters.

Determinism, measured on this project's pinned versions: LightGBM with ``deterministic``
and ``force_col_wise``, XGBoost ``hist`` and HistGB give identical predictions at any thread
count. A random forest *predicting* with several jobs sums trees in thread order, so it is
fitted in parallel but stored with ``n_jobs=1``. Logistic regression goes through BLAS,
whose result depends on the kernel and the thread count: fit and predict run with one BLAS
thread, and the kernel is recorded with the run (pin it with ``OPENBLAS_CORETYPE``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from innflow.config import Config
from innflow.contract import Contract
from innflow.data import CONTRACT, excluded
from innflow.errors import ConfigError
from innflow.modeling.features import encoder, features_step, model_columns

DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "logreg": {"C": 0.5, "max_iter": 3000},
    "random_forest": {"n_estimators": 300, "min_samples_leaf": 3, "max_features": 0.4},
    "hist_gb": {
        "learning_rate": 0.06, "max_iter": 300, "max_leaf_nodes": 24, "min_samples_leaf": 100,
        "l2_regularization": 1.0, "early_stopping": False,
    },
    "lightgbm": {
        "n_estimators": 500, "learning_rate": 0.03, "num_leaves": 24, "min_child_samples": 100,
        "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.7, "reg_lambda": 1.0,
    },
    "xgboost": {
        "n_estimators": 700, "learning_rate": 0.04, "max_depth": 7, "min_child_weight": 3,
        "subsample": 0.8, "colsample_bytree": 0.7, "reg_lambda": 1.0,
    },
}  # fmt: skip


REGRESSION_KINDS = ("random_forest", "hist_gb", "lightgbm", "xgboost")


def _estimator(
    kind: str, params: dict[str, Any], seed: int, threads: int, n_categorical: int,
    task: str = "binary",
):  # fmt: skip
    """The kind's classifier (binary) or regressor (regression), pinned the same way."""
    regression = task == "regression"
    if kind == "logreg":
        if regression:
            raise ConfigError(
                f"model.kind {kind!r} does not fit a regression target; use one of "
                f"{', '.join(REGRESSION_KINDS)}"
            )
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(random_state=seed, **params)
    if kind == "random_forest":
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        forest = RandomForestRegressor if regression else RandomForestClassifier
        return forest(random_state=seed, n_jobs=threads, **params)
    if kind == "hist_gb":
        from sklearn.ensemble import (
            HistGradientBoostingClassifier,
            HistGradientBoostingRegressor,
        )

        boosted = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
        categorical = list(range(n_categorical)) or None
        return boosted(random_state=seed, categorical_features=categorical, **params)
    if kind == "lightgbm":
        from lightgbm import LGBMClassifier, LGBMRegressor

        return (LGBMRegressor if regression else LGBMClassifier)(
            random_state=seed, n_jobs=threads, deterministic=True, force_col_wise=True,
            verbose=-1, **params,
        )  # fmt: skip
    if kind == "xgboost":
        from xgboost import XGBClassifier, XGBRegressor

        if regression:
            return XGBRegressor(random_state=seed, n_jobs=threads, tree_method="hist", **params)
        return XGBClassifier(
            random_state=seed, n_jobs=threads, tree_method="hist", eval_metric="logloss", **params
        )
    raise ConfigError(f"unknown model kind {kind!r}")


def build_pipeline(
    config: Config, input_columns: list[str], threads: int, contract: Contract = CONTRACT
) -> Pipeline:
    """Raw columns in; a probability (binary) or a number (regression) out."""
    kind = config.model.kind
    params = {**DEFAULT_PARAMS[kind], **config.model.params}
    features = features_step(contract, input_columns)
    exclude = excluded(config.features, contract)
    categorical, numeric = model_columns(features, input_columns, exclude)
    estimator = _estimator(kind, {}, config.seed, threads, len(categorical), contract.task)
    unknown = sorted(set(params) - set(estimator.get_params()))
    if unknown:
        raise ConfigError(f"model.params: {kind} has no parameter(s) {', '.join(unknown)}")
    pinned = {"random_state", "n_jobs", "deterministic", "force_col_wise", "tree_method"}
    if clash := sorted(set(config.model.params) & pinned):
        raise ConfigError(
            f"model.params: {', '.join(clash)} are set by innflow for reproducibility "
            "(seed and threads come from `seed` and --threads)"
        )
    try:
        estimator.set_params(**params)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"model.params for {kind}: {e}") from e
    return Pipeline(
        [
            ("features", features),
            (
                "encode",
                encoder(kind, categorical, numeric, config.features.rare_category_min_count),
            ),
            ("model", estimator),
        ]
    )


@contextmanager
def pinned_threads(kind: str, threads: int) -> Iterator[None]:
    """OpenMP at ``threads``; BLAS at one thread for logreg, whose sums it decides."""
    blas = 1 if kind == "logreg" else threads
    with threadpool_limits(limits=blas, user_api="blas"), threadpool_limits(threads, "openmp"):
        yield


def fit(pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray, threads: int) -> Pipeline:
    """Fit with thread pools pinned; leave the pipeline ready for deterministic prediction."""
    kind = pipeline_kind(pipeline)
    fit_params: dict[str, Any] = {}
    if kind == "lightgbm":
        n_categorical = len(pipeline.named_steps["encode"].transformers[0][2])
        fit_params["model__categorical_feature"] = list(range(n_categorical))
    try:
        with pinned_threads(kind, threads):
            pipeline.fit(X, y, **fit_params)
    except ValueError as e:
        raise ConfigError(f"model.params for {kind}: {e}") from e
    if kind == "random_forest":
        pipeline.set_params(model__n_jobs=1)  # summing trees across threads is not reproducible
    return pipeline


def predict_proba(pipeline: Pipeline, X: pd.DataFrame, threads: int) -> np.ndarray:
    """Probability of cancellation as float64, computed under the same thread pinning."""
    kind = pipeline_kind(pipeline)
    with pinned_threads(kind, threads):
        return np.asarray(pipeline.predict_proba(X)[:, 1], dtype="float64")


def predict(pipeline: Pipeline, X: pd.DataFrame, threads: int) -> np.ndarray:
    """What the model scores each row with: the positive class's probability (binary) or
    the predicted number (regression), float64, under the same thread pinning.
    """
    if is_regressor(pipeline):
        with pinned_threads(pipeline_kind(pipeline), threads):
            return np.asarray(pipeline.predict(X), dtype="float64")
    return predict_proba(pipeline, X, threads)


def is_regressor(pipeline: Pipeline) -> bool:
    """Whether the pipeline predicts a number."""
    return type(pipeline.named_steps["model"]).__name__.endswith("Regressor")


def pipeline_kind(pipeline: Pipeline) -> str:
    """The model kind of a fitted or unfitted innflow pipeline."""
    name = type(pipeline.named_steps["model"]).__name__
    return {
        "LogisticRegression": "logreg",
        "RandomForestClassifier": "random_forest",
        "HistGradientBoostingClassifier": "hist_gb",
        "LGBMClassifier": "lightgbm",
        "XGBClassifier": "xgboost",
        "RandomForestRegressor": "random_forest",
        "HistGradientBoostingRegressor": "hist_gb",
        "LGBMRegressor": "lightgbm",
        "XGBRegressor": "xgboost",
    }[name]


def feature_importance(pipeline: Pipeline) -> pd.Series:
    """Native importances of the fitted estimator, by model feature (gain where available)."""
    model = pipeline.named_steps["model"]
    names = list(pipeline.named_steps["encode"].get_feature_names_out())
    kind = pipeline_kind(pipeline)
    if kind == "lightgbm":
        values = model.booster_.feature_importance(importance_type="gain")
    elif kind == "logreg":
        values = np.abs(model.coef_[0])
    elif kind == "hist_gb":
        return pd.Series(dtype="float64")  # no native importance; see evaluation.permutation
    else:
        values = model.feature_importances_
    series = pd.Series(np.asarray(values, dtype="float64"), index=names)
    total = series.sum()
    return (series / total if total > 0 else series).sort_values(ascending=False)
