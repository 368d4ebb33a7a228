"""The replay engine of `innflow simulate`: history month by month as production would
have lived it under a retraining policy (pure: no runs, no registry; the workflow records).

Each month the champion scores that month's arrivals and the monitoring check runs on
them. At the start of the next month the policy decides whether to train a challenger on
everything known by then (a month's model is trained once for all policies). The
challenger must pass the champion/challenger gate before it takes over: both are judged on
the month just gone, where both are out-of-sample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from innflow import data as bookings
from innflow.config import Config
from innflow.errors import ConfigError
from innflow.evaluation import business, gate, regression
from innflow.monitoring import policies
from innflow.monitoring import profile as profiles
from innflow.monitoring.check import MonitorResult, check
from innflow.monitoring.settings import MonitoringConfig
from innflow.steps.backtesting import fit_month
from innflow.steps.training import Step


@dataclass(frozen=True)
class Model:
    """A model fitted for one month, with what monitoring and the gate need."""

    label: str
    pipeline: object
    threshold: float | None  # None: a regression model
    columns: list[str]
    profile: profiles.ReferenceProfile
    validation: tuple[pd.DataFrame, np.ndarray, np.ndarray]  # raw, labels, out-of-sample scores
    baseline: np.ndarray | None = None  # regression: the naive baseline on the validation rows

    def predict(self, raw: pd.DataFrame) -> np.ndarray:
        """Probabilities of a binary model, numbers of a regression model."""
        if self.threshold is None:
            return np.asarray(self.pipeline.predict(raw[self.columns]), dtype="float64")  # type: ignore[attr-defined]
        return self.pipeline.predict_proba(raw[self.columns])[:, 1]  # type: ignore[attr-defined]


class Replay:
    """History as it unfolds: the month's arrivals, month models trained once, and each
    (model, month) scored and checked once whichever policy asks.
    """

    def __init__(
        self, config: Config, thresholds: MonitoringConfig, threads: int, on_step: Step
    ) -> None:
        self.config, self.thresholds, self.threads, self.on_step = (
            config,
            thresholds,
            threads,
            on_step,
        )
        self.contract = bookings.contract_at(config.data.contract)
        if self.contract.event_time is None:
            raise ConfigError(f"{self.contract.name}: a replay needs the contract's event_time")
        self.frame = bookings.load_data(config.data.path, self.contract)
        self.data_sha = bookings.file_sha256(config.data.path)
        times = bookings.event_times(self.frame, self.contract)
        assert times is not None
        self.arrival = times.dt.to_period("M")
        self.priced = business.applies(self.frame.columns)  # the cost needs the bookings' columns
        self._models: dict[date, Model] = {}
        self._scored: dict[tuple[str, date], tuple[np.ndarray, MonitorResult]] = {}
        self._naive: dict[date, np.ndarray] = {}

    @property
    def regression(self) -> bool:
        """Whether the replayed model predicts a number."""
        return self.contract.task == "regression"

    def month(self, month: date) -> pd.DataFrame:
        """Bookings arriving in ``month``."""
        return self.frame[(self.arrival == pd.Period(month, "M")).to_numpy()]

    def naive(self, month: date) -> np.ndarray:
        """A regression's yardstick on ``month``: the group-median baseline of every row
        before it (refreshed monthly, the same for every policy).
        """
        if month not in self._naive:
            before = self.frame[(self.arrival < pd.Period(month, "M")).to_numpy()]
            self._naive[month] = regression.group_median_baseline(
                before,
                before[self.contract.target].to_numpy(),
                self.month(month),
                self.config.evaluation.baseline_groups,
            )
        return self._naive[month]

    def model(self, month: date) -> Model:
        """The model trained on every arrival before ``month`` (fitted at most once)."""
        if month not in self._models:
            self.on_step(f"training on arrivals before {month:%Y-%m}")
            prepared, fitted = fit_month(
                self.frame, self.config, month, self.data_sha, self.threads
            )
            raw, y = prepared.split.validation, prepared.labels("validation")
            training = pd.concat([prepared.features("train"), prepared.features("validation")])
            profile = profiles.build(
                training,
                fitted.val_scores,
                y,
                calibration_bins=self.thresholds.calibration_bins,
                contract=self.contract,
            )
            baseline = None
            if self.regression:
                train = prepared.split.train
                baseline = regression.group_median_baseline(
                    train,
                    train[self.contract.target].to_numpy(),
                    raw,
                    self.config.evaluation.baseline_groups,
                )
            self._models[month] = Model(
                f"{month:%Y-%m}",
                fitted.pipeline,
                fitted.threshold,
                prepared.input_columns,
                profile,
                (raw, y, fitted.val_scores),
                baseline,
            )
        return self._models[month]

    def score(self, model: Model, month: date) -> tuple[np.ndarray, MonitorResult]:
        """The model's scores on ``month`` and the monitoring check of them."""
        key = (model.label, month)
        if key not in self._scored:
            raw = self.month(month)
            scores = model.predict(raw)
            y = raw[self.contract.target].to_numpy(dtype="float64")
            result = check(model.profile, raw[model.columns], scores, self.thresholds, y)
            self._scored[key] = (scores, result)
        return self._scored[key]


def month_row(
    replay: Replay,
    policy: str,
    month: date,
    champion: Model,
    scores: np.ndarray,
    result: MonitorResult,
) -> dict:
    """One row of the month table: the champion's figures on the month's rows (a binary
    model's ROC AUC, Brier and, where the data has prices, cost; a regression's errors
    beside the naive baseline's).
    """
    raw = replay.month(month)
    y = raw[replay.contract.target].to_numpy()
    row: dict = {"policy": policy, "month": f"{month:%Y-%m}", "champion": champion.label,
                 "rows": len(raw)}  # fmt: skip
    if champion.threshold is None:
        errors = regression.regression_metrics(y, scores)
        naive = regression.regression_metrics(y, replay.naive(month))["rmse"]
        row.update(errors, baseline_rmse=naive,
                   rmse_vs_baseline=errors["rmse"] / naive if naive else float("nan"))  # fmt: skip
    else:
        performance = result.performance or {}
        row.update(
            roc_auc=performance.get("roc_auc", float("nan")),
            brier=performance.get("brier", float("nan")),
            threshold=champion.threshold,
        )
        if replay.priced:
            ev = replay.config.evaluation
            cost = business.summarize(y, scores, business.missed_cancellation_cost(raw, ev.cost),
                                      ev.cost.walk_cost, champion.threshold)  # fmt: skip
            row.update(cost=cost.cost, cost_baseline=cost.baseline_cost, cost_saving=cost.saving)
    row.update(
        status=result.status,
        max_psi=max((d.psi for d in result.features), default=0.0),
        prediction_psi=result.prediction.psi,
    )
    return row


@dataclass
class Retrain:
    """A challenger that faced the gate: when, against whom, the verdict and its figures."""

    policy: str
    month: str
    challenger: str
    champion: str
    decision: gate.GateDecision
    metrics: dict[str, float]


def _face_gate(
    replay: Replay, challenger: Model, champion: Model, champion_scores: np.ndarray
) -> tuple[dict[str, float], dict[str, float], gate.GateDecision]:
    """Both models on the month just gone (the challenger's validation window), judged by
    the gate of the model's task: the challenger's figures, the champion's, the verdict.
    """
    ev, gate_config = replay.config.evaluation, replay.config.registry.gate
    raw, y, theirs = challenger.validation
    if challenger.threshold is None:
        assert challenger.baseline is not None
        ours, _ = gate.regression_window_metrics(
            raw, y, theirs, challenger.baseline, ev, replay.contract
        )
        previous, _ = gate.regression_window_metrics(
            raw, y, champion_scores, challenger.baseline, ev, replay.contract
        )
        return ours, previous, gate.decide_regression(ours, previous, gate_config)
    assert champion.threshold is not None
    ours, slices = gate.window_metrics(raw, y, theirs, challenger.threshold, ev, replay.contract)
    previous, _ = gate.window_metrics(
        raw, y, champion_scores, champion.threshold, ev, replay.contract
    )
    return ours, previous, gate.decide(ours, slices, previous, gate_config)


def run_policy(
    replay: Replay, policy: str, targets: list[date], on_month: Callable[[str, str], None]
) -> tuple[list[dict], list[Retrain]]:
    """Replay ``targets`` under ``policy``: the month rows and the retrains it made."""
    champion = replay.model(targets[0])
    rows: list[dict] = []
    retrains: list[Retrain] = []
    last: tuple[date, np.ndarray, MonitorResult] | None = None
    for month in targets:
        promoted = retrained = False
        if last is not None and policies.wants_retrain(policy, last[2]):
            challenger = replay.model(month)
            if challenger.label != champion.label:
                retrained = True
                raw = challenger.validation[0]
                if len(raw) != len(last[1]):
                    raise RuntimeError(f"{month}: gate window and last month differ in rows")
                ours, previous, decision = _face_gate(replay, challenger, champion, last[1])
                metrics = {
                    **{f"challenger_{k}": v for k, v in ours.items()},
                    **{f"champion_{k}": v for k, v in previous.items()},
                }
                retrains.append(
                    Retrain(
                        policy,
                        f"{month:%Y-%m}",
                        challenger.label,
                        champion.label,
                        decision,
                        metrics,
                    )
                )
                if decision.passed:
                    champion, promoted = challenger, True
        scores, result = replay.score(champion, month)
        row = month_row(replay, policy, month, champion, scores, result)
        rows.append({**row, "retrained": retrained, "promoted": promoted})
        last = (month, scores, result)
        on_month(policy, f"{month:%Y-%m}")
    return rows, retrains


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Per policy: the monthly figures' means (all months, and 2017's for the bookings'
    ROC AUC), total cost where there is one, retrains and promotions.
    """
    rows = []
    for policy, group in table.groupby("policy", sort=False):
        row: dict = {"policy": policy}
        if "rmse" in group:
            row.update(
                mean_rmse=float(group["rmse"].mean()),
                max_rmse=float(group["rmse"].max()),
                mean_rmse_vs_baseline=float(group["rmse_vs_baseline"].mean()),
                mean_bias=float(group["bias"].mean()),
            )
        else:
            in_2017 = group[group["month"].str.startswith("2017")]
            row.update(
                mean_roc_auc=float(group["roc_auc"].mean()),
                mean_roc_auc_2017=float(in_2017["roc_auc"].mean())
                if len(in_2017)
                else float("nan"),
            )
            if "cost" in group:
                row.update(
                    total_cost=float(group["cost"].sum()),
                    total_cost_saving=float(group["cost_saving"].sum()),
                )
        row.update(retrains=int(group["retrained"].sum()), promotions=int(group["promoted"].sum()))
        rows.append(row)
    return pd.DataFrame(rows)
