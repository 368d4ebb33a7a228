"""Side-by-side comparison of runs: which params differ, the metrics, and which
fingerprints (data, code, environment, predictions) differ. Pure: dicts in, a table out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FINGERPRINTS = (
    "innflow.data_sha256", "innflow.git_commit", "innflow.git_dirty", "innflow.uv_lock_sha256",
    "innflow.env_sha256", "innflow.config_sha256", "innflow.predictions_sha256",
    "innflow.model_kind", "innflow.split",
)  # fmt: skip
KEY_METRICS = (
    "test_roc_auc", "test_pr_auc", "test_log_loss", "test_brier", "test_ece", "test_f1",
    "test_cost", "test_cost_saving", "threshold", "val_roc_auc",
)  # fmt: skip


@dataclass(frozen=True)
class RunSummary:
    """What comparison needs of one run."""

    run_id: str
    name: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]


@dataclass
class Comparison:
    """Runs side by side: only what differs, plus the metrics."""

    run_ids: list[str]
    params: dict[str, dict[str, str | None]] = field(default_factory=dict)
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)
    fingerprints: dict[str, dict[str, str | None]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON form."""
        return {
            "runs": self.run_ids,
            "params_differ": self.params,
            "metrics": self.metrics,
            "fingerprints_differ": self.fingerprints,
        }


def _differing(runs: list[RunSummary], values: dict[str, dict[str, str | None]]) -> dict:
    return {k: v for k, v in sorted(values.items()) if len(set(v.values())) > 1}


def compare(runs: list[RunSummary], metric_names: tuple[str, ...] = KEY_METRICS) -> Comparison:
    """Compare runs: params and fingerprints that are not the same in all, and metrics."""
    ids = [r.run_id for r in runs]
    param_names = {name for r in runs for name in r.params}
    params = {name: {r.run_id: r.params.get(name) for r in runs} for name in param_names}
    prints = {name: {r.run_id: r.tags.get(name) for r in runs} for name in FINGERPRINTS}
    present = [m for m in metric_names if any(m in r.metrics for r in runs)]
    metrics = {m: {r.run_id: r.metrics.get(m) for r in runs} for m in present}
    return Comparison(ids, _differing(runs, params), metrics, _differing(runs, prints))
