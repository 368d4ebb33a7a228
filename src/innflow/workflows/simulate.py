"""`innflow simulate`: replay history as production, month by month, under each
retraining policy, to answer with the real data what retraining is worth.

Each month the production model (the champion) scores that month's arrivals and the
monitoring check runs on them. At the start of the next month the policy decides whether
to train a challenger on everything known by then (the backtest's `fit_month`, shared and
cached: a month's model is trained once for all policies). The challenger must pass the
champion/challenger gate before it takes over: both are judged on the month just gone,
where both are out-of-sample (the challenger's validation scores, from its fit on the
months before; the refit model that would be promoted has seen that month). Promotions are
auto-approved and recorded as such.

Models stay in-process: no registry versions, so a simulation leaves the registry and its
aliases as they were. The record is a parent run, a nested run per policy (monthly series
as metric steps) and a nested run per retrain (the gate's verdict and the approval).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from innflow import business, gate, tracking
from innflow import data as bookings
from innflow.config import Config, flatten
from innflow.monitoring import page, plots, policies
from innflow.monitoring import profile as profiles
from innflow.monitoring.check import MonitorResult, check
from innflow.monitoring.settings import MonitoringConfig
from innflow.workflows.backtest import fit_month, months
from innflow.workflows.train import Step, _quiet, resolve_threads

APPROVER = "innflow simulate (auto-approved)"


@dataclass(frozen=True)
class Model:
    """A model fitted for one month, with what monitoring and the gate need."""

    label: str
    pipeline: object
    threshold: float
    columns: list[str]
    profile: profiles.ReferenceProfile
    validation: tuple[pd.DataFrame, np.ndarray, np.ndarray]  # raw, labels, out-of-sample scores


@dataclass(frozen=True)
class SimulationOutcome:
    """What `innflow simulate` reports: one row per policy and month, one per policy."""

    parent_run_id: str
    months: pd.DataFrame
    summary: pd.DataFrame
    seconds: float


class _Replay:
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
        self.frame = bookings.load_bookings(config.data.path)
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
                training, fitted.val_proba, y, calibration_bins=self.thresholds.calibration_bins
            )
            self._models[month] = Model(
                f"{month:%Y-%m}",
                fitted.pipeline,
                fitted.threshold,
                prepared.input_columns,
                profile,
                (raw, y, fitted.val_proba),
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


def _month_row(
    replay: _Replay,
    policy: str,
    month: date,
    champion: Model,
    proba: np.ndarray,
    result: MonitorResult,
) -> dict:
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
class _Retrain:
    policy: str
    month: str
    challenger: str
    champion: str
    decision: gate.GateDecision
    metrics: dict[str, float]


def _run_policy(
    replay: _Replay, policy: str, targets: list[date], on_month: Callable[[str, str], None]
) -> tuple[list[dict], list[_Retrain]]:
    ev, gate_config = replay.config.evaluation, replay.config.registry.gate
    champion = replay.model(targets[0])
    rows: list[dict] = []
    retrains: list[_Retrain] = []
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
                    _Retrain(
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
        row = _month_row(replay, policy, month, champion, proba, result)
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


def simulate(
    config: Config,
    thresholds: MonitoringConfig,
    start: str = "2016-07",
    end: str = "2017-08",
    policy_names: list[str] | tuple[str, ...] = policies.POLICIES,
    threads: int | None = None,
    on_month: Callable[[str, str], None] | None = None,
    on_step: Step = _quiet,
) -> SimulationOutcome:
    """Replay ``start..end`` under each policy; record a parent run with nested runs."""
    started = time.perf_counter()
    threads = resolve_threads(threads)
    chosen = policies.validate(list(policy_names))
    targets = months(start, end)
    on_step("loading and validating data")
    replay = _Replay(config, thresholds, threads, on_step)
    results = {
        p: _run_policy(replay, p, targets, on_month or (lambda _p, _m: None)) for p in chosen
    }
    table = pd.DataFrame([row for rows, _ in results.values() for row in rows])
    summary = summarize(table)
    tracking.connect(config.tracking.uri)
    tags = {
        "innflow.kind": "simulate",
        "innflow.model_kind": config.model.kind,
        "innflow.data_sha256": replay.data_sha,
    }
    name = config.tracking.run_name or f"simulate-{start}-{end}"
    with tracking.run(config.tracking.experiment, name, tags) as parent:
        params = {
            **flatten(config.to_dict()),
            "simulate.start": start,
            "simulate.end": end,
            "simulate.policies": ",".join(chosen),
            **{f"monitoring.{k}": v for k, v in thresholds.model_dump().items()},
        }
        tracking.log_setup(config.to_yaml(), params, tags, {})
        for policy, (rows, retrains) in results.items():
            _log_policy(config, parent, policy, pd.DataFrame(rows), summary, retrains)
        seconds = time.perf_counter() - started
        with tempfile.TemporaryDirectory(prefix="innflow-simulate-") as tmp:
            (Path(tmp) / "plots").mkdir()
            (Path(tmp) / "plots" / "simulation.png").write_bytes(plots.policies(table))
            (Path(tmp) / "simulation.html").write_text(html_page(table, summary, start, end))
            totals = {
                f"policy.{r.policy}.{k}": float(getattr(r, k))
                for r in summary.itertuples()
                for k in ("mean_roc_auc", "mean_roc_auc_2017", "total_cost", "retrains")
            }
            tracking.log_results(
                {k: v for k, v in {**totals, "duration_seconds": seconds}.items() if v == v},
                {},
                Path(tmp),
                {"simulate/months.json": table, "simulate/summary.json": summary},
            )
    return SimulationOutcome(parent.info.run_id, table, summary, seconds)


def _log_policy(
    config: Config,
    parent,
    policy: str,
    rows: pd.DataFrame,
    summary: pd.DataFrame,
    retrains: list[_Retrain],
) -> None:
    totals = {
        str(k): v for k, v in summary[summary["policy"] == policy].iloc[0].drop("policy").items()
    }
    tags = {
        "innflow.kind": "simulate-policy",
        "innflow.policy": policy,
        "innflow.retrain_months": ",".join(r.month for r in retrains),
        "innflow.promotions": ",".join(r.month for r in retrains if r.decision.passed),
    }
    with tracking.run(
        config.tracking.experiment, f"policy-{policy}", tags, parent.info.run_id
    ) as active:
        tracking.log_params({"policy": policy, "months": ",".join(rows["month"])})
        series = {
            c: rows[c].astype(float).tolist()
            for c in (
                "roc_auc",
                "brier",
                "cost",
                "cost_saving",
                "max_psi",
                "prediction_psi",
                "retrained",
                "promoted",
            )
        }
        tracking.log_series(series)
        tracking.log_results({k: float(v) for k, v in totals.items() if v == v}, {})
        for r in retrains:
            verdict = "passed" if r.decision.passed else "failed"
            tracking.log_child_run(
                active,
                f"{policy}-{r.month}-retrain",
                {"month": r.month, "policy": policy},
                r.metrics,
                {
                    "innflow.kind": "simulate-retrain",
                    "innflow.month": r.month,
                    "innflow.challenger": r.challenger,
                    "innflow.champion": r.champion,
                    "innflow.gate": verdict,
                    "innflow.gate_reasons": "; ".join(r.decision.reasons)[:4900] or "passed",
                    "innflow.approval": "auto-approved" if r.decision.passed else "not promoted",
                    "innflow.approved_by": APPROVER if r.decision.passed else "",
                },
            )


def html_page(table: pd.DataFrame, summary: pd.DataFrame, start: str, end: str) -> str:
    """The simulation on one page: the per-policy summary, the plot and every month."""
    body = [
        f"<h1>innflow simulate {start}..{end}</h1>",
        "<p>Each month the champion scores the month's arrivals; the policy decides at the "
        "start of the next month whether a challenger trained on everything before it "
        "should face the gate. A triangle marks a month served by a new champion.</p>",
        page.table(summary),
        page.image(plots.policies(table), "policies"),
        "<h2>Months</h2>",
        page.table(table),
    ]
    return page.document("innflow simulate", body)


def to_dict(outcome: SimulationOutcome) -> dict:
    """JSON form (NaN as null)."""

    def records(frame: pd.DataFrame) -> list[dict]:
        return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")

    return {
        "parent_run_id": outcome.parent_run_id,
        "seconds": outcome.seconds,
        "summary": records(outcome.summary),
        "months": records(outcome.months),
    }
