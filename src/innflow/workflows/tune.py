"""`innflow tune`: an Optuna search recorded as one parent run with a child run per trial,
then a refit of the best configuration as a full training run under the parent.

With ``storage`` (an Optuna RDB URL) several processes, on one machine or many, share one
study: that is the scale path for tuning.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from innflow import tracking
from innflow.config import Config, flatten, from_dict
from innflow.errors import ConfigError, TrackingError
from innflow.evaluation import assessment, business, classification, plots, regression
from innflow.modeling import models, tuning
from innflow.steps.training import Step, prepare, quiet, resolve_threads
from innflow.workflows.train import TrainOutcome, train

TrialCallback = Callable[[int, float | None, float | None, str], None]


@dataclass(frozen=True)
class TuneOutcome:
    """What `innflow tune` reports."""

    parent_run_id: str
    study_name: str
    best_value: float
    best_params: dict[str, Any]
    trials: dict[str, int]
    refit: TrainOutcome
    tracking_seconds: float
    total_seconds: float


def _not_an_interrupt(record: logging.LogRecord) -> bool:
    return not (record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt))


def _open_study(config: Config, storage: str | None, study_name: str) -> Any:
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    # Ctrl-C or SIGTERM in a trial: Optuna logs the interrupted trial with a full traceback;
    # the trial is recorded as failed and the parent run as KILLED, which says it all.
    logging.getLogger("optuna.study._optimize").addFilter(_not_an_interrupt)
    # A shared study gets a seed per worker, or every worker would draw the same trials.
    seed = config.seed if storage is None else config.seed + os.getpid()
    pruner: Any = (
        optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=config.tuning.report_every)
        if config.tuning.pruning
        else optuna.pruners.NopPruner()
    )
    for attempt in range(3):
        try:
            return optuna.create_study(
                storage=storage,
                study_name=study_name,
                direction=tuning.direction(config.tuning.objective),
                sampler=optuna.samplers.TPESampler(seed=seed),
                pruner=pruner,
                load_if_exists=True,
            )
        except Exception as e:  # SQLAlchemy/driver errors vary by backend; all mean "unusable"
            # Workers starting together race to create the schema (SQLite: "locked"): retry.
            if attempt < 2:
                time.sleep(0.5 * (attempt + 1))
                continue
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(f"cannot open Optuna storage {storage!r}: {first}") from e
    raise AssertionError("unreachable")


def _with_params(config: Config, params: dict[str, Any]) -> Config:
    tree = config.to_dict()
    tree["model"]["params"] = {**config.model.params, **params}
    return from_dict(tree)


def tune(
    config: Config,
    trials: int | None = None,
    timeout: float | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    threads: int | None = None,
    on_trial: TrialCallback | None = None,
    on_step: Step = quiet,
) -> TuneOutcome:
    """Search, record every trial, and refit the best configuration as a training run."""
    import optuna

    started = time.perf_counter()
    threads = resolve_threads(threads)
    trials = config.tuning.trials if trials is None else trials
    timeout = config.tuning.timeout_seconds if timeout is None else timeout
    if trials < 1 or (timeout is not None and timeout <= 0):
        raise ConfigError(f"tune needs trials >= 1 and a positive timeout, got {trials}, {timeout}")
    space = tuning.search_space(config)
    on_step("loading and validating data")
    prepared = prepare(config)
    regressor = prepared.contract.task == "regression"
    tuning.check_objective(config.tuning.objective, prepared.contract.task)
    if config.tuning.objective == "cost" and not business.applies(prepared.contract.columns):
        raise ConfigError(
            f"tuning.objective cost needs the bookings' cost columns; contract "
            f"{prepared.contract.name} lacks them: use roc_auc or log_loss"
        )
    name = study_name or f"innflow-{config.model.kind}-{config.digest()[:10]}"
    study = _open_study(config, storage, name)
    objective_name = config.tuning.objective
    split, cols = prepared.split, prepared.input_columns
    X_train, y_train = prepared.features("train"), prepared.labels("train")
    X_val, y_val = prepared.features("validation"), prepared.labels("validation")
    priced = business.applies(split.validation.columns)
    miss_cost = (
        business.missed_cancellation_cost(split.validation, config.evaluation.cost)
        if priced
        else None
    )
    tracking_seconds = 0.0
    tracking.connect(config.tracking.uri)
    tags = {
        "innflow.kind": "tune",
        "innflow.model_kind": config.model.kind,
        "innflow.study": name,
        "innflow.objective": f"val_{objective_name}",
        "innflow.model_task": prepared.contract.task,
        "innflow.data_sha256": prepared.data_sha256,
    }
    run_name = config.tracking.run_name or f"tune-{config.model.kind}"
    with tracking.run(config.tracking.experiment, run_name, tags) as parent:
        params = flatten(config.to_dict())
        params.update({"tune.trials": trials, "tune.storage": storage or "in-memory"})
        tracking.log_setup(config.to_yaml(), params, tags, {})

        def objective(trial: Any) -> float:
            nonlocal tracking_seconds
            drawn = tuning.suggest(trial, space)
            state, metrics = "COMPLETE", {}

            def report(step: int, value: float) -> None:
                trial.report(value, step)
                if trial.should_prune():
                    figure = "RMSE" if regressor else "ROC AUC"
                    raise optuna.TrialPruned(f"pruned at {step} trees (val {figure} {value:.4f})")

            try:
                pipeline = models.build_pipeline(
                    _with_params(config, drawn), cols, threads, prepared.contract
                )
                try:
                    tuning.fit_reporting(
                        pipeline, X_train, y_train, X_val, y_val, threads, report,
                        config.tuning.report_every, regressor,
                    )  # fmt: skip
                except ValueError as e:
                    raise ConfigError(f"trial {trial.number}: {e}") from e
                scores = models.predict(pipeline, X_val, threads)
                if regressor:
                    metrics = regression.regression_metrics(y_val, scores)
                    return metrics[objective_name]
                threshold = assessment.choose_threshold(config, y_val, scores, split.validation)
                metrics = classification.classification_metrics(y_val, scores, threshold)
                if miss_cost is not None:
                    metrics["cost"] = business.summarize(
                        y_val, scores, miss_cost, config.evaluation.cost.walk_cost, threshold
                    ).cost
                metrics["threshold"] = threshold
                return metrics[objective_name]
            except optuna.TrialPruned:
                state = "PRUNED"
                raise
            finally:
                logging_started = time.perf_counter()
                tracking.log_child_run(
                    parent,
                    f"trial-{trial.number}",
                    drawn,
                    {f"val_{k}": v for k, v in metrics.items()},
                    {
                        "innflow.kind": "trial",
                        "innflow.trial": str(trial.number),
                        "innflow.trial_state": state,
                        "innflow.study": name,
                    },
                )
                tracking_seconds += time.perf_counter() - logging_started

        def progress(study: Any, frozen: Any) -> None:
            if on_trial is not None:
                best = _best_value(study)
                on_trial(frozen.number, frozen.value, best, frozen.state.name)

        on_step(f"searching {len(space)} hyperparameters over {trials} trials")
        study.optimize(objective, n_trials=trials, timeout=timeout, callbacks=[progress])
        finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not finished:
            raise TrackingError(f"study {name} has no completed trial to refit")
        best = study.best_trial
        counts = {
            s: sum(t.state.name == s for t in study.trials) for s in ("COMPLETE", "PRUNED", "FAIL")
        }
        on_step(f"refitting the best of {len(study.trials)} trials (#{best.number})")
        with tempfile.TemporaryDirectory(prefix="innflow-tune-") as tmp:
            history = study.trials_dataframe(attrs=("number", "value", "state", "params"))
            done = history[history["state"] == "COMPLETE"]
            plot_dir = Path(tmp) / "plots"
            plot_dir.mkdir()
            plots.optimisation_history(
                done, tuning.direction(objective_name) == "maximize", objective_name,
                plot_dir / "optimisation_history.png",
            )  # fmt: skip
            importances = _importances(study)
            if not importances.empty:
                plots.importance(
                    importances,
                    "Hyperparameter importance (fANOVA)",
                    plot_dir / "param_importance.png",
                )
            # The refit fits from `prepared.config`: it must carry the best params, not the
            # search's base config (else the logged params and the fitted model disagree).
            best_config = _with_params(config, best.params)
            refit = train(
                best_config, threads, on_step,
                extra_tags={"innflow.tuned_by": parent.info.run_id, "innflow.study": name},
                prepared=dataclasses.replace(prepared, config=best_config),
                parent_run_id=parent.info.run_id,
            )  # fmt: skip
            total = time.perf_counter() - started
            tracking.log_results(
                {
                    f"best_val_{objective_name}": float(best.value),
                    "trials_complete": counts["COMPLETE"],
                    "trials_pruned": counts["PRUNED"],
                    "duration_tracking_seconds": tracking_seconds,
                    "duration_total_seconds": total,
                    **{f"refit_{k}": v for k, v in refit.metrics.items() if k.startswith("test_")},
                },
                {"innflow.best_trial": str(best.number), "innflow.refit_run_id": refit.run_id},
                Path(tmp),
                {"tuning/trials.json": history.astype({"state": str})},
            )
            tracking.log_params({f"best.{k}": v for k, v in best.params.items()})
    return TuneOutcome(
        parent.info.run_id, name, float(best.value), dict(best.params), counts, refit,
        tracking_seconds, total,
    )  # fmt: skip


def _best_value(study: Any) -> float | None:
    try:
        return float(study.best_value)
    except ValueError:  # no completed trial yet
        return None


def _importances(study: Any) -> Any:
    import optuna
    import pandas as pd

    try:
        values = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError):  # too few completed trials to tell
        return pd.Series(dtype=float)
    return pd.Series(values, dtype=float).sort_values(ascending=False)
