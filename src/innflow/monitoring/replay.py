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
from innflow.evaluation import business, gate
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
    threshold: float
    columns: list[str]
    profile: profiles.ReferenceProfile
    validation: tuple[pd.DataFrame, np.ndarray, np.ndarray]  # raw, labels, out-of-sample scores


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
        contract = bookings.contract_at(config.data.contract)
        if contract.task != "binary" or contract.name != bookings.CONTRACT.name:
            raise ConfigError(
                f"{contract.name}: simulate replays the cancellation model's policies "
                "(monitoring of a regression model's decay is not replayed yet); "
                "`innflow backtest` evaluates any contract month by month"
            )
        self.frame = bookings.load_data(config.data.path)
        self.data_sha = bookings.file_sha256(config.data.path)
        self.arrival = bookings.arrival_dates(self.frame).dt.to_period("M")
        self._models: dict[date, Model] = {}
        self._scored: dict[tuple[str, date], tuple[np.ndarray, MonitorResult]] = {}

    def month(self, month: date) -> pd.DataFrame:
        """Bookings arriving in ``month``."""
        return self.frame[(self.arrival == pd.Period(month, "M")).to_numpy()]

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
                training, fitted.val_scores, y, calibration_bins=self.thresholds.calibration_bins
            )
            assert fitted.threshold is not None  # binary: refused otherwise in __init__
            self._models[month] = Model(
                f"{month:%Y-%m}",
                fitted.pipeline,
                fitted.threshold,
                prepared.input_columns,
                profile,
                (raw, y, fitted.val_scores),
            )
        return self._models[month]

    def score(self, model: Model, month: date) -> tuple[np.ndarray, MonitorResult]:
        """The model's scores on ``month`` and the monitoring check of them."""
        key = (model.label, month)
        if key not in self._scored:
            raw = self.month(month)
            proba = model.pipeline.predict_proba(raw[model.columns])[:, 1]  # type: ignore[attr-defined]
            y = raw[bookings.TARGET].to_numpy(dtype="float64")
            result = check(model.profile, raw[model.columns], proba, self.thresholds, y)
            self._scored[key] = (proba, result)
        return self._scored[key]


def month_row(
    replay: Replay,
    policy: str,
    month: date,
    champion: Model,
    proba: np.ndarray,
    result: MonitorResult,
) -> dict:
    """One row of the month table: the champion's figures on the month's arrivals."""
    raw = replay.month(month)
    y = raw[bookings.TARGET].to_numpy()
    ev = replay.config.evaluation
    cost = business.summarize(
        y,
        proba,
        business.missed_cancellation_cost(raw, ev.cost),
        ev.cost.walk_cost,
        champion.threshold,
    )
    performance = result.performance or {}
    return {
        "policy": policy,
        "month": f"{month:%Y-%m}",
        "champion": champion.label,
        "rows": len(raw),
        "roc_auc": performance.get("roc_auc", float("nan")),
        "brier": performance.get("brier", float("nan")),
        "threshold": champion.threshold,
        "cost": cost.cost,
        "cost_baseline": cost.baseline_cost,
        "cost_saving": cost.saving,
        "status": result.status,
        "max_psi": max(d.psi for d in result.features),
        "prediction_psi": result.prediction.psi,
    }


@dataclass
class Retrain:
    """A challenger that faced the gate: when, against whom, the verdict and its figures."""

    policy: str
    month: str
    challenger: str
    champion: str
    decision: gate.GateDecision
    metrics: dict[str, float]


def run_policy(
    replay: Replay, policy: str, targets: list[date], on_month: Callable[[str, str], None]
) -> tuple[list[dict], list[Retrain]]:
    """Replay ``targets`` under ``policy``: the month rows and the retrains it made."""
    ev, gate_config = replay.config.evaluation, replay.config.registry.gate
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
                raw, y, theirs = challenger.validation
                if len(raw) != len(last[1]):
                    raise RuntimeError(f"{month}: gate window and last month differ in rows")
                ours, slices = gate.window_metrics(raw, y, theirs, challenger.threshold, ev)
                previous, _ = gate.window_metrics(raw, y, last[1], champion.threshold, ev)
                decision = gate.decide(ours, slices, previous, gate_config)
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
        proba, result = replay.score(champion, month)
        row = month_row(replay, policy, month, champion, proba, result)
        rows.append({**row, "retrained": retrained, "promoted": promoted})
        last = (month, proba, result)
        on_month(policy, f"{month:%Y-%m}")
    return rows, retrains


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Per policy: mean monthly ROC AUC (all months, and 2017's), cost and retrains."""
    rows = []
    for policy, group in table.groupby("policy", sort=False):
        in_2017 = group[group["month"].str.startswith("2017")]
        rows.append(
            {
                "policy": policy,
                "mean_roc_auc": float(group["roc_auc"].mean()),
                "mean_roc_auc_2017": float(in_2017["roc_auc"].mean())
                if len(in_2017)
                else float("nan"),
                "total_cost": float(group["cost"].sum()),
                "total_cost_saving": float(group["cost_saving"].sum()),
                "retrains": int(group["retrained"].sum()),
                "promotions": int(group["promoted"].sum()),
            }
        )
    return pd.DataFrame(rows)
