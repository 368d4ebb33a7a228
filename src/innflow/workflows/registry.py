"""Register, gate, promote, roll back: who may put which model where, and the record of it.

Aliases only (`staging`, `production`); registry stages are deprecated in MLflow. Every
alias move is written to the audit trail in the tracking store, before the move and confirmed
after it (see tracking.record_move).
"""

from __future__ import annotations

import contextlib
import getpass
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from innflow import tracking
from innflow.config import Config
from innflow.errors import (
    ConfigError,
    GateFailed,
    IncompatibleModelError,
    RunNotFoundError,
    TrackingError,
)
from innflow.evaluation import gate, regression
from innflow.modeling import model_inputs
from innflow.steps.training import Prepared, prepare
from innflow.workflows import challenger
from innflow.workflows.challenger import KEY_METRICS

ALIASES = ("staging", "production")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def register(run_id: str, config: Config, name: str | None = None) -> tuple[str, bool]:
    """Register a training run's model; returns (version, created)."""
    tracking.connect(config.tracking.uri)
    run = tracking.get_run(run_id)
    uri = tracking.model_uri(run)
    t, m = run.data.tags, run.data.metrics
    tags = {f"innflow.{k}": f"{m[k]:.6f}" for k in KEY_METRICS if k in m}
    tags.update(
        {
            "innflow.data_sha256": t.get("innflow.data_sha256", ""),
            "innflow.git_commit": t.get("innflow.git_commit", ""),
            "innflow.model_kind": t.get("innflow.model_kind", ""),
            "innflow.origin": "innflow training",
            "innflow.task": _task(t),
            "innflow.gate": "pending",
        }
    )
    tags.update({k: v for k, v in t.items() if k.startswith("innflow.dvc.")})
    figure = ("RMSE", "test_rmse") if "test_rmse" in m else ("ROC AUC", "test_roc_auc")
    description = (
        f"{t.get('innflow.model_kind')} trained in run {run_id}; test {figure[0]} "
        f"{m.get(figure[1], float('nan')):.4f}, data {t.get('innflow.data_sha256', '')[:12]}, "
        f"code {t.get('innflow.git_commit', '')[:12]}"
    )
    version, created = tracking.register_version(
        name or config.registry.model_name, run_id, uri, tags, description
    )
    return str(version.version), created


def _task(tags: dict[str, str]) -> str:
    """What a trained version is for: the cancellation model (the bookings' binary task,
    the name earlier versions carry), or its contract's task.
    """
    task = tags.get("innflow.model_task", "binary")
    if task == "binary" and tags.get("innflow.contract", "hotel_bookings") == "hotel_bookings":
        return "cancellation"
    return task


@dataclass
class Registered:
    """What `innflow register` did with a logged model."""

    name: str
    version: str
    created: bool
    model_uri: str
    run_id: str
    origin: str
    flavor: str
    task: str
    notes: list[str]

    def to_dict(self) -> dict:
        """JSON form (``model`` repeats ``name``, as `register --json` always printed it)."""
        return {
            "name": self.name, "model": self.name, "version": self.version,
            "created": self.created, "model_uri": self.model_uri, "run_id": self.run_id,
            "origin": self.origin, "flavor": self.flavor, "task": self.task,
            "notes": self.notes,
        }  # fmt: skip


def register_model(
    ref: str, config: Config, name: str | None = None, pick: str | None = None
) -> Registered:
    """Register any logged model: an innflow training run as always; another model (a
    notebook's, a script's) into the cancellation model when it takes booking columns
    (see innflow.modeling.model_inputs), else only under its own ``name``.

    Nothing is registered unless the model resolves, is of the right task and loads.
    """
    tracking.connect(config.tracking.uri)
    chosen = challenger.choose(ref, pick)
    ours = config.registry.model_name
    if isinstance(chosen, str):
        version, created = register(chosen, config, name)
        uri = tracking.model_uri(tracking.get_run(chosen))
        return Registered(name or ours, version, created, uri, chosen, "innflow training",
                          "sklearn", "cancellation", [])  # fmt: skip
    described = tracking.describe_model(chosen.uri)
    inputs = tracking.signature_inputs(described)
    task = model_inputs.task_of(inputs)
    target = name or ours
    if task != "cancellation" and target == ours:
        raise IncompatibleModelError(
            challenger.not_cancellation(chosen.uri, task, inputs)
            + f"; register it under its own name with --name NAME (not {ours!r})"
        )
    tracking.check_loads(chosen.uri)
    run = tracking.get_run(chosen.run_id)
    tags = challenger.version_tags(chosen, run, task, inputs)
    description = (
        f"{tags['innflow.flavor']} model {chosen.name!r} logged in {tags['innflow.origin']} "
        f"{chosen.run_id} ({chosen.run_name!r}); registered with innflow, not trained by it"
    )
    about = (
        "Hotel booking cancellation model (innflow)"
        if target == ours
        else f"Registered with innflow from run {chosen.run_id}"
    )
    version, created = tracking.register_version(
        target, chosen.run_id, chosen.uri, tags, description, chosen.model_id, about
    )
    notes = []
    if inputs is None:
        notes.append("no signature: serve, gate and monitor need one (log with input_example)")
    elif task != "cancellation":
        notes.append("not a cancellation model: gate and monitor do not apply to it")
    elif missing := model_inputs.not_in_bookings(inputs):
        notes.append(
            f"it takes {len(missing)} columns made outside the model ({missing[0]!r}...): "
            f"gate, serve and monitor need raw booking columns; {model_inputs.FIX_PREPROCESSING}"
        )
    return Registered(target, str(version.version), created, chosen.uri, chosen.run_id,
                      tags["innflow.origin"], tags["innflow.flavor"], task, notes)  # fmt: skip


@dataclass
class GateOutcome:
    """A gate decision for one version."""

    version: str
    champion_version: str | None
    decision: gate.GateDecision
    candidate_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None

    def to_dict(self) -> dict:
        """JSON form."""
        return {
            "version": self.version,
            "champion_version": self.champion_version,
            "candidate": self.candidate_metrics,
            "champion": self.champion_metrics,
            **self.decision.to_dict(),
        }


def _probabilities(prepared: Prepared, uri: str) -> tuple[np.ndarray, dict]:
    """Test-window p(cancel) of a model and its description: innflow's own through the
    Pipeline's raw columns, any other through its pyfunc and signature.
    """
    described = tracking.describe_model(uri)
    if described["metadata"].get("innflow_input_columns"):
        model = tracking.load_pyfunc(uri)
        proba = np.asarray(model.predict(prepared.features("test")), dtype="float64")
        return (proba[:, 1] if proba.ndim == 2 else proba), described
    return challenger.scores(uri, described, prepared.split.test), described


def _window_metrics(
    config: Config, prepared: Prepared, scores: np.ndarray, threshold: float
) -> tuple[dict[str, float], pd.DataFrame]:
    raw, y = prepared.split.test, prepared.labels("test")
    if prepared.contract.task == "regression":
        naive = regression.group_median_baseline(
            *prepared.fitted_on(), raw, config.evaluation.baseline_groups
        )
        return gate.regression_window_metrics(
            raw, y, scores, naive, config.evaluation, prepared.contract
        )
    return gate.window_metrics(raw, y, scores, threshold, config.evaluation, prepared.contract)


def _threshold(version) -> float:
    """The run's ``threshold`` metric (innflow's trainer logs the tuned one), else 0.5."""
    run = tracking.get_run(version.run_id)
    return float(run.data.metrics.get("threshold", 0.5))


def run_gate(
    version: str, config: Config, prepared: Prepared | None = None, name: str | None = None
) -> GateOutcome:
    """Evaluate candidate and champion on the same current test window; record the result
    as tags on the version and a report on the candidate's run. A model innflow did not
    train gets the reference profile monitoring needs, once.
    """
    tracking.connect(config.tracking.uri)
    name = name or config.registry.model_name
    candidate = tracking.model_version(name, version)
    prepared = prepared or prepare(config)
    proba, described = _probabilities(prepared, f"models:/{name}/{version}")
    task = described["metadata"].get("innflow_task", "binary")
    if task != prepared.contract.task:
        raise ConfigError(
            f"version {version} of {name!r} is a {task} model, but the config's contract "
            f"({prepared.contract.name}) is {prepared.contract.task}: gate it with its own "
            "config (data.contract)"
        )
    ours, slices = _window_metrics(config, prepared, proba, _threshold(candidate))
    champion = tracking.alias_version(name, "production")
    theirs = None
    if champion is not None and str(champion.version) != str(version):
        champion_proba, _ = _probabilities(prepared, f"models:/{name}/{champion.version}")
        theirs, _ = _window_metrics(config, prepared, champion_proba, _threshold(champion))
    if prepared.contract.task == "regression":
        decision = gate.decide_regression(ours, theirs, config.registry.gate)
    else:
        decision = gate.decide(ours, slices, theirs, config.registry.gate)
    champion_version = str(champion.version) if champion is not None and theirs else None
    outcome = GateOutcome(str(version), champion_version, decision, ours, theirs)
    report = {**outcome.to_dict(), "evaluated_at": _now(), "data_sha256": prepared.data_sha256}
    tracking.log_run_text(
        candidate.run_id, json.dumps(report, indent=2), f"gate/report-v{version}.json"
    )
    if tracking.PROFILE_KEY not in described["metadata"] and (
        tracking.PROFILE_TAG not in candidate.tags
    ):
        profile = challenger.reference(prepared, described, proba)
        tracking.log_version_profile(name, str(version), candidate.run_id, profile)
    tracking.set_version_tags(
        name, version,
        {"innflow.gate": "passed" if decision.passed else "failed",
         "innflow.gate_reasons": "; ".join(decision.reasons)[:4900] or "all checks passed",
         "innflow.gate_champion": champion_version or "none"},
    )  # fmt: skip
    return outcome


def move_alias(
    config: Config,
    version: str,
    alias: str,
    who: str,
    why: str,
    force: bool = False,
    kind: str = "promote",
    name: str | None = None,
) -> dict[str, str]:
    """Point ``alias`` at ``version`` of ``name`` (default: the cancellation model) after
    the checks, and record the move.

    Against a server that authenticates, the approver is the authenticated user: ``who``
    may be left empty, and a different name is refused (a move is recorded under one
    identity the server vouches for). Elsewhere (SQLite, a server without auth) ``who`` is
    a stated name, recorded as such; a rollback defaults to the operating-system user.
    """
    if alias not in ALIASES:
        raise ConfigError(f"unknown alias {alias!r}: use one of {', '.join(ALIASES)}")
    tracking.connect(config.tracking.uri)
    who, user, identity = _approver(who.strip(), kind)
    name = name or config.registry.model_name
    tracking.settle_moves(name)
    target = tracking.model_version(name, version)
    status = target.tags.get("innflow.gate", "pending")
    if target.tags.get("innflow.task") in ("other", "unknown") and not force:
        raise GateFailed(
            f"version {version} of {name!r} is not a cancellation model, so innflow's gate "
            "does not apply to it: promote it with --force (recorded)"
        )
    if status != "passed" and not force:
        raise GateFailed(
            f"version {version} has gate status {status!r}; run `innflow gate {version}` or "
            "use --force (recorded)"
        )
    previous = tracking.alias_version(name, alias)
    move = {
        "alias": alias, "from_version": str(previous.version) if previous else "none",
        "to_version": str(version), "who": who, "why": why, "gate": status,
        "forced": str(force).lower(), "kind": kind, "at": _now(), "user": user,
        "identity": identity,
    }  # fmt: skip
    # No alias move without its record, even when the store dies in between: the record is
    # written first and confirmed after the move; one left pending is settled by the next
    # move (settle_moves), by whether the alias did move.
    record = tracking.record_move(name, move)
    try:
        tracking.set_alias(name, alias, version)
    except BaseException as e:
        with contextlib.suppress(TrackingError):  # the store is gone: settled later
            moved = tracking.alias_version(name, alias)  # a lost reply to a move that happened
            if moved is not None and str(moved.version) == str(version):
                tracking.confirm_move(record)
            else:
                tracking.abandon_move(record, f"{type(e).__name__}: {e}")
        raise
    tracking.confirm_move(record)
    # A copy of the approval on the version, for the UI; the record above is the audit.
    if alias == "production":
        tracking.set_version_tags(
            name, version,
            {"innflow.approved_by": who, "innflow.approval_reason": why,
             "innflow.approval_identity": identity},
        )  # fmt: skip
    return move


def _approver(who: str, kind: str) -> tuple[str, str, str]:
    """(approver, MLflow user, identity) of a move: ``authenticated`` when the server
    vouches for the user, else ``stated`` (the name given, the OS account beside it).
    """
    authenticated = tracking.authenticated_user()
    if authenticated is not None:
        if who and who != authenticated and kind != "pipeline":
            raise ConfigError(
                f"--approved-by {who!r} is not the authenticated user {authenticated!r}: "
                "against an authenticated server the approver is the user of the tracking "
                f"credentials (MLFLOW_TRACKING_USERNAME); leave it out or give {authenticated!r}"
            )
        return authenticated, authenticated, "authenticated"
    account = getpass.getuser()
    if not who and kind == "rollback":
        who = account
    if not who:
        raise ConfigError("an approval needs a name (--approved-by)")
    return who, account, "stated"


def rollback(config: Config, who: str, why: str) -> dict[str, str]:
    """Put `production` back on the version it held before the current one."""
    tracking.connect(config.tracking.uri)
    name = config.registry.model_name
    current = tracking.alias_version(name, "production")
    if current is None:
        raise RunNotFoundError(f"model {name!r} has no production version to roll back")
    history = [m for m in tracking.moves(name) if m["alias"] == "production"]
    into_current = [m for m in history if m["to_version"] == str(current.version)]
    previous = into_current[-1]["from_version"] if into_current else "none"
    if previous == "none":
        raise RunNotFoundError(f"model {name!r} has no previous production version to roll back to")
    return move_alias(
        config, previous, "production", who, why or "rollback", force=True, kind="rollback"
    )


def listing(config: Config, name: str | None = None) -> list[dict[str, str]]:
    """Every version with its aliases, gate status and key metrics (`innflow models`): a
    regression model's RMSE and R², a classifier's ROC AUC and Brier.
    """
    tracking.connect(config.tracking.uri)
    rows = []
    for v, aliases in tracking.versions(name or config.registry.model_name):
        shown = ("test_rmse", "test_r2") if "innflow.test_rmse" in v.tags else (
            "test_roc_auc", "test_brier")  # fmt: skip
        rows.append(
            {
                "version": str(v.version),
                "aliases": ",".join(aliases),
                "gate": v.tags.get("innflow.gate", "pending"),
                "model_kind": v.tags.get("innflow.model_kind", ""),
                **{key: v.tags.get(f"innflow.{key}", "") for key in shown},
                "run_id": v.run_id or "",
                "approved_by": v.tags.get("innflow.approved_by", ""),
            }
        )
    return rows
