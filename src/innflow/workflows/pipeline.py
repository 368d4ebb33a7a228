"""`innflow pipeline`: data check -> train -> evaluate -> register -> gate -> staging.

Idempotent: when a finished training run already exists for the same config, data, code
(commit and uncommitted diff) and locked environment, it is reused instead of retrained
(its result would be bit-identical), and registering it again returns the same version.
"""

from __future__ import annotations

from dataclasses import dataclass

from innflow import tracking
from innflow.config import Config
from innflow.reproducibility import provenance
from innflow.steps.training import Prepared, Step, prepare, quiet, resolve_threads
from innflow.workflows.registry import GateOutcome, move_alias, register, run_gate
from innflow.workflows.train import train


@dataclass(frozen=True)
class PipelineOutcome:
    """What the pipeline did."""

    run_id: str
    reused_run: bool
    version: str
    new_version: bool
    gate: GateOutcome
    staged: bool

    def to_dict(self) -> dict:
        """JSON form."""
        return {
            "run_id": self.run_id,
            "reused_run": self.reused_run,
            "version": self.version,
            "new_version": self.new_version,
            "gate": self.gate.to_dict(),
            "staged": self.staged,
        }


def _equivalent_run(config: Config, data_sha: str) -> str | None:
    code = provenance.code_state()
    if code.commit == "unknown":
        return None  # no git: cannot prove an earlier run used the same code
    found = tracking.find_finished_run(
        config.tracking.experiment,
        {
            "innflow.kind": "train",
            "innflow.config_sha256": config.digest(),
            "innflow.data_sha256": data_sha,
            **code.tags(),
            "innflow.uv_lock_sha256": provenance.lockfile_sha256(),
        },
    )
    if found is None or not found.data.tags.get("innflow.model_uri"):
        return None
    return found.info.run_id


def pipeline(config: Config, threads: int | None = None, on_step: Step = quiet) -> PipelineOutcome:
    """Run the chain. A refusal by the gate is an outcome (``staged`` False), not an error."""
    threads = resolve_threads(threads)
    on_step("checking data")
    prepared = prepare(config)
    tracking.connect(config.tracking.uri)
    run_id = _equivalent_run(config, prepared.data_sha256)
    reused = run_id is not None
    if run_id is None:
        run_id = train(
            config, threads, on_step, extra_tags={"innflow.pipeline": "true"}, prepared=prepared
        ).run_id
    else:
        on_step(f"reusing identical training run {run_id}")
    on_step("registering")
    version, created = register(run_id, config)
    outcome, staged = stage(version, config, prepared, on_step=on_step)
    return PipelineOutcome(run_id, reused, version, created, outcome, staged)


def stage(
    version: str,
    config: Config,
    prepared: Prepared | None = None,
    name: str | None = None,
    who: str = "innflow pipeline",
    on_step: Step = quiet,
) -> tuple[GateOutcome, bool]:
    """Gate ``version`` and move staging to it when it passes: (gate outcome, staged)."""
    on_step(f"gating version {version}")
    outcome = run_gate(version, config, prepared, name=name)
    if not outcome.decision.passed:
        return outcome, False
    on_step(f"moving staging to version {version}")
    move_alias(config, version, "staging", who, "gate passed", kind="pipeline", name=name)
    return outcome, True
