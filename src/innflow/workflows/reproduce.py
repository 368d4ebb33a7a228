"""`innflow reproduce RUN_ID`: re-execute a past run and prove it bit-identical, or say
exactly what differs.

Three kinds of evidence: the context (data fingerprint, code, locked environment, machine)
compared with now; a fresh re-execution whose every metric and test-prediction hash must
equal the original's; and the original's logged model, loaded through MLflow, which must
still produce the predictions recorded with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import yaml

from innflow import config as config_module
from innflow import provenance, tracking
from innflow.workflows.train import Step, _quiet, prepare, resolve_threads, train

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
    """Re-execute ``run_id`` from its logged config and compare everything it recorded."""
    threads = resolve_threads(threads)
    store = tracking.connect(None)
    original = tracking.get_run(run_id)
    logged = yaml.safe_load(tracking.read_config_text(run_id))
    logged.setdefault("tracking", {})["uri"] = store  # record the re-run next to the original
    config = config_module.from_dict(logged)
    on_step("loading and validating data")
    prepared = prepare(config)
    tags = original.data.tags
    now = _context_now(prepared.data_sha256, threads)
    checks = [
        Check(label, tags.get(key, "(not recorded)"), now.get(key, ""), decisive=False)
        for key, label in CONTEXT_TAGS.items()
    ]
    checks += [
        Check(f"lib {key.removeprefix('innflow.lib.')}", value, now.get(key, "absent"), False)
        for key, value in sorted(tags.items())
        if key.startswith("innflow.lib.")
    ]
    outcome = train(
        config, threads, on_step, extra_tags={"innflow.reproduces": run_id}, prepared=prepared
    )
    new_metrics = tracking.get_run(outcome.run_id).data.metrics
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
    recorded_sha = tags.get("innflow.predictions_sha256", "(not recorded)")
    checks.append(Check("test predictions sha256", recorded_sha, outcome.predictions_sha256, True))
    on_step("replaying the original's logged model")
    model = tracking.load_pyfunc(tracking.model_uri(original))
    replayed = model.predict(prepared.features("test"))
    replay_sha = provenance.predictions_sha256(_positive_class(replayed))
    checks.append(Check("logged model predictions sha256", recorded_sha, replay_sha, True))
    return Report(run_id, outcome.run_id, checks)


def _positive_class(predictions: object) -> np.ndarray:
    array = np.asarray(predictions, dtype="float64")
    return array[:, 1] if array.ndim == 2 else array
