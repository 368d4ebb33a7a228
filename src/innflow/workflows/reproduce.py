"""`innflow reproduce RUN_ID`: re-execute a past run and prove it bit-identical, or say
exactly what differs.

Three kinds of evidence: the context (data fingerprint, code, locked environment, machine)
compared with now; a fresh re-execution whose every metric and test-prediction hash must
equal the original's; and the original's logged model, loaded through MLflow, which must
still produce the predictions recorded with it.

A notebook run is re-executed from its logged notebook and parameters (see
workflows/notebook.py) and compared the same way: its metrics and prediction hash are
those of the last training it ran.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from innflow import config as config_module
from innflow import provenance, tracking
from innflow.workflows.train import Prepared, Step, _quiet, prepare, resolve_threads, train

# Context worth reporting; differences here explain a mismatch but do not cause a failure.
CONTEXT_TAGS = {
    "innflow.data_sha256": "data sha256",
    "innflow.git_commit": "code commit",
    "innflow.git_dirty": "uncommitted changes",
    "innflow.git_diff_sha256": "uncommitted diff sha256",
    "innflow.uv_lock_sha256": "uv.lock sha256",
    "innflow.env_sha256": "installed packages sha256",
    "innflow.python": "python",
    "innflow.platform": "platform",
    "innflow.cpu": "cpu",
    "innflow.blas": "BLAS kernel",
    "innflow.threads": "threads",
}


@dataclass(frozen=True)
class Check:
    """One compared quantity."""

    name: str
    original: str
    now: str
    decisive: bool  # a difference here makes the reproduction fail

    @property
    def same(self) -> bool:
        """Whether original and now agree exactly."""
        return self.original == self.now


@dataclass
class Report:
    """Everything `reproduce` compared, and the verdict."""

    run_id: str
    new_run_id: str
    checks: list[Check] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        """True when every decisive check agrees bit for bit."""
        return all(c.same for c in self.checks if c.decisive)

    def differences(self) -> list[Check]:
        """Checks whose values differ (decisive or not)."""
        return [c for c in self.checks if not c.same]

    def to_dict(self) -> dict:
        """JSON form for `--json`."""
        return {
            "run_id": self.run_id,
            "new_run_id": self.new_run_id,
            "identical": self.identical,
            "checks": [
                {
                    "name": c.name,
                    "original": c.original,
                    "now": c.now,
                    "same": c.same,
                    "decisive": c.decisive,
                }
                for c in self.checks
            ],
        }


def _metric_text(value: float) -> str:
    return "nan" if math.isnan(value) else repr(value)


def _context_now(data_sha: str, threads: int) -> dict[str, str]:
    return {
        **provenance.environment_tags(),
        **provenance.code_state().tags(),
        "innflow.data_sha256": data_sha,
        "innflow.threads": str(threads),
    }


def reproduce(run_id: str, threads: int | None = None, on_step: Step = _quiet) -> Report:
    """Re-execute ``run_id`` from its logged config (a notebook run: its logged notebook and
    parameters) and compare everything it recorded.
    """
    threads = resolve_threads(threads)
    store = tracking.connect(None)
    original = tracking.get_run(run_id)
    if original.data.tags.get("innflow.kind") == "notebook":
        return _reproduce_notebook(original, threads, on_step)
    logged = yaml.safe_load(tracking.read_config_text(run_id))
    logged.setdefault("tracking", {})["uri"] = store  # record the re-run next to the original
    config = config_module.from_dict(logged)
    on_step("loading and validating data")
    prepared = prepare(config)
    checks = _context_checks(original.data.tags, _context_now(prepared.data_sha256, threads))
    outcome = train(
        config, threads, on_step, extra_tags={"innflow.reproduces": run_id}, prepared=prepared
    )
    new_metrics = tracking.get_run(outcome.run_id).data.metrics
    checks += _result_checks(original, new_metrics, outcome.predictions_sha256)
    on_step("replaying the original's logged model")
    checks.append(_replay_check(original, prepared))
    return Report(run_id, outcome.run_id, checks)


def _reproduce_notebook(original: Any, threads: int, on_step: Step) -> Report:
    """Execute the logged notebook again with the logged parameters, in a fresh kernel."""
    from innflow.workflows.notebook import logged_notebook, run_notebook

    run_id, tags = original.info.run_id, original.data.tags
    recorded_path = Path(tags.get("innflow.notebook_path", ""))
    same_notebook = {
        "innflow.reproduces": run_id,
        "innflow.notebook_path": str(recorded_path),
        "innflow.notebook_sha256": tags.get("innflow.notebook_sha256", ""),
    }
    with tempfile.TemporaryDirectory(prefix="innflow-reproduce-") as tmp:
        source, parameters = logged_notebook(run_id, Path(tmp))
        on_step(f"re-executing the logged notebook with {parameters or 'its defaults'}")
        outcome = run_notebook(source, parameters, threads, extra_tags=same_notebook)
    again = tracking.get_run(outcome.run_id)
    file_now = (
        hashlib.sha256(recorded_path.read_bytes()).hexdigest()
        if recorded_path.is_file()
        else "(missing)"
    )
    checks = [
        Check(
            "notebook file sha256 (logged copy re-executed)",
            tags.get("innflow.notebook_sha256", "(not recorded)"),
            file_now,
            decisive=False,
        )
    ]
    checks += _context_checks(tags, again.data.tags)
    checks += _result_checks(original, again.data.metrics, outcome.predictions_sha256)
    if "innflow.train_run_id" in tags:
        on_step("replaying the original's logged model")
        trained = tracking.get_run(tags["innflow.train_run_id"])
        config = config_module.from_dict(
            yaml.safe_load(tracking.read_config_text(trained.info.run_id))
        )
        checks.append(_replay_check(trained, prepare(config)))
    return Report(run_id, outcome.run_id, checks)


def _context_checks(tags: dict[str, str], now: dict[str, str]) -> list[Check]:
    """Data, code, environment and machine then and now: reported, never decisive."""
    checks = [
        Check(label, tags.get(key, "(not recorded)"), now.get(key, ""), decisive=False)
        for key, label in CONTEXT_TAGS.items()
    ]
    return checks + [
        Check(f"lib {key.removeprefix('innflow.lib.')}", value, now.get(key, "absent"), False)
        for key, value in sorted(tags.items())
        if key.startswith("innflow.lib.")
    ]


def _result_checks(
    original: Any, new_metrics: dict[str, float], new_predictions_sha256: str | None
) -> list[Check]:
    """Every recorded metric (wall-clock durations aside) and the test-prediction hash."""
    checks = []
    for name, value in sorted(original.data.metrics.items()):
        if name.startswith("duration_"):
            continue  # wall-clock time is not a result
        again = new_metrics.get(name)
        checks.append(
            Check(
                f"metric {name}",
                _metric_text(value),
                "(missing)" if again is None else _metric_text(again),
                decisive=True,
            )
        )
    recorded_sha = original.data.tags.get("innflow.predictions_sha256", "(not recorded)")
    now_sha = new_predictions_sha256 or "(not recorded)"
    checks.append(Check("test predictions sha256", recorded_sha, now_sha, True))
    return checks


def _replay_check(trained: Any, prepared: Prepared) -> Check:
    """The training run's logged model, loaded through MLflow, on today's test set."""
    model = tracking.load_pyfunc(tracking.model_uri(trained))
    replayed = model.predict(prepared.features("test"))
    replay_sha = provenance.predictions_sha256(_positive_class(replayed))
    recorded_sha = trained.data.tags.get("innflow.predictions_sha256", "(not recorded)")
    return Check("logged model predictions sha256", recorded_sha, replay_sha, True)


def _positive_class(predictions: object) -> np.ndarray:
    array = np.asarray(predictions, dtype="float64")
    return array[:, 1] if array.ndim == 2 else array
