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
from pathlib import Path

import pandas as pd

from innflow import tracking
from innflow.config import Config, flatten
from innflow.monitoring import page, plots, policies
from innflow.monitoring.replay import Replay, Retrain, run_policy, summarize
from innflow.monitoring.settings import MonitoringConfig
from innflow.steps.backtesting import months
from innflow.steps.training import Step, quiet, resolve_threads

APPROVER = "innflow simulate (auto-approved)"
# The monthly figures logged as metric steps, where the model's task has them.
SERIES = ("roc_auc", "brier", "cost", "cost_saving", "rmse", "mae", "bias", "baseline_rmse",
          "max_psi", "prediction_psi", "retrained", "promoted")  # fmt: skip


@dataclass(frozen=True)
class SimulationOutcome:
    """What `innflow simulate` reports: one row per policy and month, one per policy."""

    parent_run_id: str
    months: pd.DataFrame
    summary: pd.DataFrame
    seconds: float


def simulate(
    config: Config,
    thresholds: MonitoringConfig,
    start: str = "2016-07",
    end: str = "2017-08",
    policy_names: list[str] | tuple[str, ...] = policies.POLICIES,
    threads: int | None = None,
    on_month: Callable[[str, str], None] | None = None,
    on_step: Step = quiet,
) -> SimulationOutcome:
    """Replay ``start..end`` under each policy; record a parent run with nested runs."""
    started = time.perf_counter()
    threads = resolve_threads(threads)
    chosen = policies.validate(list(policy_names))
    targets = months(start, end)
    on_step("loading and validating data")
    replay = Replay(config, thresholds, threads, on_step)
    results = {p: run_policy(replay, p, targets, on_month or (lambda _p, _m: None)) for p in chosen}
    table = pd.DataFrame([row for rows, _ in results.values() for row in rows])
    summary = summarize(table)
    tracking.connect(config.tracking.uri)
    tags = {
        "innflow.kind": "simulate",
        "innflow.model_kind": config.model.kind,
        "innflow.model_task": replay.contract.task,
        "innflow.contract": replay.contract.name,
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
            (Path(tmp) / "simulation.html").write_text(page.simulation(table, summary, start, end))
            totals = {
                f"policy.{r['policy']}.{k}": float(v)
                for r in summary.to_dict(orient="records")
                for k, v in r.items()
                if k != "policy"
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
    retrains: list[Retrain],
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
        series = {c: rows[c].astype(float).tolist() for c in SERIES if c in rows}
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
