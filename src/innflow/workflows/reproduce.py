"""`innflow reproduce RUN_ID`: re-execute a past run and prove it bit-identical, or say
exactly what differs.

Three kinds of evidence: the context (data fingerprint, code, locked environment, machine)
compared with now; a fresh re-execution whose every metric and test-prediction hash must
equal the original's; and the original's logged model, loaded through MLflow, which must
still produce the predictions recorded with it. Notebook runs are re-executed and compared
by workflows/reproduce_notebook.py. A run where nothing could be compared is never called
reproduced (see reproducibility/reproduction.py).
"""

from __future__ import annotations

from typing import Any

import yaml

from innflow import config as config_module
from innflow import tracking
from innflow.errors import NotReproducible
from innflow.reproducibility import dvc, provenance
from innflow.reproducibility.reproduction import (
    NOT_RECORDED,
    Check,
    Report,
    context_checks,
    metric_checks,
)
from innflow.steps.training import Prepared, Step, prepare, quiet, resolve_threads
from innflow.workflows.reproduce_notebook import replay_check, reproduce_notebook
from innflow.workflows.train import train

__all__ = ["Check", "Report", "context_checks", "replay_check", "reproduce"]

# Context worth reporting; differences here explain a mismatch but do not cause a failure.


def _context_now(prepared: Prepared, threads: int) -> dict[str, str]:
    return {
        **provenance.environment_tags(),
        **provenance.code_state().tags(),
        "innflow.data_sha256": prepared.data_sha256,
        "innflow.contract_sha256": prepared.contract.sha256 or "",
        "innflow.threads": str(threads),
    }


def reproduce(run_id: str, threads: int | None = None, on_step: Step = quiet) -> Report:
    """Re-execute ``run_id`` from its logged config (a notebook run: its logged notebook and
    parameters) and compare everything it recorded.
    """
    threads = resolve_threads(threads)
    store = tracking.connect(None)
    original = tracking.get_run(run_id)
    _check_reproducible(original)
    if original.data.tags.get("innflow.kind") == "notebook":
        return reproduce_notebook(original, threads, on_step)
    logged = yaml.safe_load(tracking.read_config_text(run_id))
    logged.setdefault("tracking", {})["uri"] = store  # record the re-run next to the original
    config = config_module.from_dict(logged)
    on_step("loading and validating data")
    prepared = prepare(config)
    checks = context_checks(original.data.tags, _context_now(prepared, threads))
    if (version := dvc.version_check(original.data.tags, config.data.path)) is not None:
        checks.append(version)
    outcome = train(
        config, threads, on_step, extra_tags={"innflow.reproduces": run_id}, prepared=prepared
    )
    new_metrics = tracking.get_run(outcome.run_id).data.metrics
    checks += _result_checks(original, new_metrics, outcome.predictions_sha256)
    on_step("replaying the original's logged model")
    checks.append(replay_check(original, prepared))
    return Report(run_id, outcome.run_id, checks)


def _check_reproducible(run: Any) -> None:
    """Refuse, before anything is re-executed or stored, a run that is not FINISHED or not
    innflow's (a plain MLflow run, or one inside a notebook run: the notebook is the unit).
    """
    run_id, tags = run.info.run_id, run.data.tags
    kind = tags.get("innflow.kind")
    if run.info.status != "FINISHED":
        raise NotReproducible(
            f"run {run_id} is {run.info.status}: only a FINISHED run can be reproduced"
        )
    if kind is not None:
        return  # train and notebook runs; another kind without a config is refused on reading
    parent = tags.get("mlflow.parentRunId")
    if (
        kind is None
        and parent
        and tracking.get_run(parent).data.tags.get("innflow.kind") == ("notebook")
    ):
        raise NotReproducible(
            f"run {run_id} is part of notebook run {parent}: reproduce {parent}, which "
            "re-executes the notebook and compares every run in it"
        )
    raise NotReproducible(
        f"run {run_id} cannot be reproduced: it is not an innflow run (no innflow.kind tag); "
        "only training and notebook runs record the config or notebook to re-execute"
    )


def _result_checks(
    original: Any, new_metrics: dict[str, float], new_predictions_sha256: str | None
) -> list[Check]:
    """Every recorded metric (wall-clock durations aside) and the test-prediction hash."""
    # wall-clock durations are not results
    checks = metric_checks(
        original.data.metrics, new_metrics, "training", skip=lambda n: n.startswith("duration_")
    )
    recorded_sha = original.data.tags.get("innflow.predictions_sha256", NOT_RECORDED)
    now_sha = new_predictions_sha256 or NOT_RECORDED
    checks.append(
        Check("test predictions sha256", recorded_sha, now_sha, True, "predictions", "model")
    )
    return checks
