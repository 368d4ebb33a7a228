"""`innflow backtest`: rolling-origin evaluation, month by month.

For each test month M the model is trained exactly as `innflow train` trains it, with
validation = the month before M (threshold chosen there) and a refit on every arrival
before M; it is then scored on M's arrivals. One parent run, a child run per month, a table
and a plot: the honest yardstick for drift and for the retraining policies that come later.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from innflow import data as bookings
from innflow import tracking
from innflow.config import Config, flatten
from innflow.errors import ConfigError
from innflow.evaluation import business, classification, plots, regression
from innflow.steps.backtesting import fit_month, months
from innflow.steps.training import Fitted, Prepared, Step, quiet, resolve_threads

MonthCallback = Callable[[str, dict[str, float]], None]


@dataclass(frozen=True)
class BacktestOutcome:
    """What `innflow backtest` reports."""

    parent_run_id: str
    table: pd.DataFrame


def backtest(
    config: Config,
    start: str = "2016-07",
    end: str = "2017-08",
    threads: int | None = None,
    on_month: MonthCallback | None = None,
    on_step: Step = quiet,
) -> BacktestOutcome:
    """Train-and-test for every month in ``start..end``, recorded as nested runs."""
    threads = resolve_threads(threads)
    targets = months(start, end)
    on_step("loading and validating data")
    contract = bookings.contract_at(config.data.contract)
    if contract.event_time is None:
        raise ConfigError(f"{contract.name}: a backtest needs the contract's event_time")
    frame = bookings.load_data(config.data.path, contract)
    data_sha = bookings.file_sha256(config.data.path)
    tracking.connect(config.tracking.uri)
    tags = {"innflow.kind": "backtest", "innflow.model_kind": config.model.kind,
            "innflow.data_sha256": data_sha, "innflow.contract": contract.name}  # fmt: skip
    rows = []
    run_name = config.tracking.run_name or f"backtest-{config.model.kind}-{start}-{end}"
    with tracking.run(config.tracking.experiment, run_name, tags) as parent:
        params = flatten(config.to_dict())
        params.update({"backtest.start": start, "backtest.end": end})
        tracking.log_setup(config.to_yaml(), params, tags, {})
        for month in targets:
            label = month.strftime("%Y-%m")
            started = time.perf_counter()
            prepared, fitted = fit_month(frame, config, month, data_sha, threads)
            metrics = _month_metrics(prepared, fitted)
            tracking.log_child_run(
                parent, f"month-{label}", {"month": label}, metrics,
                {"innflow.kind": "backtest-month", "innflow.month": label},
            )  # fmt: skip
            rows.append({"month": label, **metrics, "seconds": time.perf_counter() - started})
            if on_month is not None:
                on_month(label, metrics)
        table = pd.DataFrame(rows)
        with tempfile.TemporaryDirectory(prefix="innflow-backtest-") as tmp:
            (Path(tmp) / "plots").mkdir()
            if contract.task == "regression":
                plots.backtest_errors(table, Path(tmp) / "plots" / "backtest.png")
                summary_metrics = {
                    "mean_rmse": float(table["rmse"].mean()),
                    "max_rmse": float(table["rmse"].max()),
                    "mean_rmse_vs_baseline": float(table["rmse_vs_baseline"].mean()),
                }
            else:
                plots.backtest(table, Path(tmp) / "plots" / "backtest.png")
                summary_metrics = {
                    "mean_roc_auc": float(table["roc_auc"].mean()),
                    "min_roc_auc": float(table["roc_auc"].min()),
                    "total_cost": float(table["cost"].sum()),
                    "total_cost_saving": float(table["cost_saving"].sum()),
                }
            tracking.log_results(summary_metrics, {}, Path(tmp), {"backtest/months.json": table})
    return BacktestOutcome(parent.info.run_id, table)


def _month_metrics(prepared: Prepared, fitted: Fitted) -> dict[str, float]:
    """One month's figures: ROC AUC, Brier, threshold and cost (binary), or the errors
    beside the naive baseline's (regression).
    """
    config, split, y = prepared.config, prepared.split, prepared.labels("test")
    sizes = {
        "rows_train": float(len(split.train) + len(split.validation)),
        "rows_test": float(len(split.test)),
    }
    if fitted.threshold is None:
        naive = regression.group_median_baseline(
            *prepared.fitted_on(), split.test, config.evaluation.baseline_groups
        )
        ours = regression.regression_metrics(y, fitted.test_scores)
        baseline_rmse = regression.regression_metrics(y, naive)["rmse"]
        return {
            **ours, "baseline_rmse": baseline_rmse,
            "rmse_vs_baseline": ours["rmse"] / baseline_rmse if baseline_rmse else float("nan"),
            **sizes, "target_mean": float(np.mean(y)),
        }  # fmt: skip
    cost = config.evaluation.cost
    miss = business.missed_cancellation_cost(split.test, cost)
    summary = business.summarize(y, fitted.test_scores, miss, cost.walk_cost, fitted.threshold)
    scores = classification.classification_metrics(y, fitted.test_scores, fitted.threshold)
    return {
        "roc_auc": scores["roc_auc"],
        "brier": scores["brier"],
        "threshold": fitted.threshold,
        **summary.as_metrics(),
        **sizes,
        "cancel_rate": float(y.mean()),
    }
