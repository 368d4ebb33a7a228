"""Hyperparameter search with Optuna: spaces, suggestions, staged fits that can be pruned.

No MLflow here: the tune workflow records trials through the callback it passes in.
Pruning: LightGBM and XGBoost report the validation figure (ROC AUC of a binary model, RMSE
of a regression) every ``report_every`` trees while they fit, so a trial far behind the
median is stopped early; the other kinds report once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, root_mean_squared_error
from sklearn.pipeline import Pipeline

from innflow.config import Config, ParamSpec
from innflow.errors import ConfigError
from innflow.modeling.models import pinned_threads, pipeline_kind

Report = Callable[[int, float], None]

_F, _I = "float", "int"
DEFAULT_SPACES: dict[str, dict[str, dict[str, Any]]] = {
    "lightgbm": {
        "n_estimators": {"type": _I, "low": 200, "high": 900},
        "learning_rate": {"type": _F, "low": 0.01, "high": 0.1, "log": True},
        "num_leaves": {"type": _I, "low": 8, "high": 96, "log": True},
        "min_child_samples": {"type": _I, "low": 20, "high": 400, "log": True},
        "colsample_bytree": {"type": _F, "low": 0.4, "high": 1.0},
        "subsample": {"type": _F, "low": 0.5, "high": 1.0},
        "reg_lambda": {"type": _F, "low": 1e-3, "high": 30.0, "log": True},
    },
    "xgboost": {
        "n_estimators": {"type": _I, "low": 200, "high": 900},
        "learning_rate": {"type": _F, "low": 0.01, "high": 0.1, "log": True},
        "max_depth": {"type": _I, "low": 3, "high": 9},
        "min_child_weight": {"type": _F, "low": 1.0, "high": 50.0, "log": True},
        "colsample_bytree": {"type": _F, "low": 0.4, "high": 1.0},
        "subsample": {"type": _F, "low": 0.5, "high": 1.0},
        "reg_lambda": {"type": _F, "low": 1e-3, "high": 30.0, "log": True},
    },
    "hist_gb": {
        "max_iter": {"type": _I, "low": 100, "high": 600},
        "learning_rate": {"type": _F, "low": 0.02, "high": 0.2, "log": True},
        "max_leaf_nodes": {"type": _I, "low": 8, "high": 64, "log": True},
        "min_samples_leaf": {"type": _I, "low": 20, "high": 400, "log": True},
        "l2_regularization": {"type": _F, "low": 1e-3, "high": 30.0, "log": True},
    },
    "random_forest": {
        "n_estimators": {"type": _I, "low": 100, "high": 400},
        "min_samples_leaf": {"type": _I, "low": 1, "high": 30, "log": True},
        "max_features": {"type": _F, "low": 0.2, "high": 0.8},
    },
    "logreg": {"C": {"type": _F, "low": 1e-3, "high": 10.0, "log": True}},
}


def search_space(config: Config) -> dict[str, ParamSpec]:
    """The configured space, or innflow's default for the model kind."""
    configured = config.tuning.search_space
    if configured is None:
        return {k: ParamSpec(**v) for k, v in DEFAULT_SPACES[config.model.kind].items()}
    if not configured:
        raise ConfigError("tuning.search_space is empty: nothing to tune")
    for name, spec in configured.items():
        if spec.type == "categorical" and not spec.choices:
            raise ConfigError(f"tuning.search_space.{name}: categorical needs choices")
        if spec.type != "categorical" and (
            spec.low is None or spec.high is None or spec.low > spec.high
        ):
            raise ConfigError(f"tuning.search_space.{name}: needs low <= high")
    return dict(configured)


def suggest(trial: Any, space: dict[str, ParamSpec]) -> dict[str, Any]:
    """Draw one set of hyperparameters from ``space`` for an Optuna trial."""
    params: dict[str, Any] = {}
    for name, spec in space.items():
        if spec.type == "categorical":
            params[name] = trial.suggest_categorical(name, spec.choices)
        elif spec.type == "int":
            params[name] = trial.suggest_int(name, int(spec.low), int(spec.high), log=spec.log)  # type: ignore[arg-type]
        else:
            params[name] = trial.suggest_float(name, spec.low, spec.high, log=spec.log)
    return params


OBJECTIVES = {"binary": ("roc_auc", "log_loss", "cost"), "regression": ("rmse", "mae")}


def direction(objective: str) -> Literal["maximize", "minimize"]:
    """Optuna direction for an objective name."""
    return "maximize" if objective == "roc_auc" else "minimize"


def check_objective(objective: str, task: str) -> None:
    """Refuse an objective the model's task has no figure for, naming the ones it has."""
    if objective not in OBJECTIVES[task]:
        raise ConfigError(
            f"tuning.objective {objective} is not a {task} model's figure: set "
            f"tuning.objective to one of {', '.join(OBJECTIVES[task])}"
        )


def fit_reporting(
    pipeline: Pipeline,
    X: pd.DataFrame,
    y: np.ndarray,
    X_val: pd.DataFrame,
    y_val: np.ndarray,
    threads: int,
    report: Report,
    every: int,
    regression: bool = False,
) -> Pipeline:
    """Fit like ``models.fit``, reporting validation ROC AUC (RMSE for a regression) during
    boosting so that ``report`` can stop the fit by raising (Optuna's TrialPruned).
    """
    kind = pipeline_kind(pipeline)
    metric = "rmse" if regression else "auc"
    prep, model = pipeline[:-1], pipeline.named_steps["model"]
    with pinned_threads(kind, threads):
        X_enc = prep.fit_transform(X, y)
        X_val_enc = prep.transform(X_val)
        if kind == "lightgbm":

            def lightgbm_report(env: Any) -> None:
                if (env.iteration + 1) % every == 0:
                    value = next(v for _, n, v, _ in env.evaluation_result_list if n == metric)
                    report(env.iteration + 1, float(value))

            n_categorical = len(pipeline.named_steps["encode"].transformers[0][2])
            model.fit(
                X_enc, y, eval_X=(X_val_enc,), eval_y=(y_val,), eval_metric=metric,
                categorical_feature=list(range(n_categorical)), callbacks=[lightgbm_report],
            )  # fmt: skip
        elif kind == "xgboost":
            import xgboost

            class XGBoostReport(xgboost.callback.TrainingCallback):
                def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
                    if (epoch + 1) % every == 0:
                        margin = model.inplace_predict(X_val_enc)
                        figure = root_mean_squared_error if regression else roc_auc_score
                        report(epoch + 1, float(figure(y_val, margin)))
                    return False

            model.set_params(callbacks=[XGBoostReport()])
            try:
                model.fit(X_enc, y, verbose=False)
            finally:
                model.set_params(callbacks=None)
        else:
            model.fit(X_enc, y)
    if kind == "random_forest":
        model.set_params(n_jobs=1)
    return pipeline
