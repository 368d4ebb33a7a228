"""What `innflow reproduce` compared and its verdict: checks, counts and the one-line
cause of a mismatch. Pure: the workflows fill it, the CLI prints it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

NOT_RECORDED = "(not recorded)"


@dataclass(frozen=True)
class Check:
    """One compared quantity."""

    name: str
    original: str
    now: str
    decisive: bool  # a difference here makes the reproduction fail
    kind: str = ""  # "metric", "data" or "predictions": what the verdict counts
    subject: str = ""  # the run (metrics) or model (predictions) it belongs to

    @property
    def same(self) -> bool:
        """Whether original and now agree exactly."""
        return self.original == self.now

    @property
    def comparable(self) -> bool:
        """A decisive check the original recorded something for."""
        return self.decisive and self.original != NOT_RECORDED


@dataclass
class Report:
    """Everything `reproduce` compared, and the verdict."""

    run_id: str
    new_run_id: str
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what could not be compared, and why

    @property
    def comparable(self) -> bool:
        """Whether anything at all was compared."""
        return any(c.comparable for c in self.checks)

    @property
    def identical(self) -> bool:
        """True when something was compared and every decisive check agrees bit for bit."""
        return self.comparable and all(c.same for c in self.checks if c.decisive)

    def verdict(self) -> str:
        """What was compared, e.g. '14 metrics in 3 runs, 2 data files, predictions of 2
        models'; predictions are named only when some were compared.
        """
        compared = [c for c in self.checks if c.comparable]
        metrics = [c for c in compared if c.kind == "metric"]
        runs = {c.subject for c in metrics}
        parts = []
        if metrics:
            parts.append(_count(len(metrics), "metric") + (
                f" in {_count(len(runs), 'run')}" if runs != {"training"} else ""
            ))  # fmt: skip
        if data := [c for c in compared if c.kind == "data"]:
            parts.append(_count(len(data), "data file"))
        if models := {c.subject for c in compared if c.kind == "predictions"}:
            parts.append(f"predictions of {_count(len(models), 'model')}")
        others = [c for c in compared if not c.kind]
        if others:
            parts.append(_count(len(others), "other check"))
        return ", ".join(parts) or "nothing"

    def mismatch(self) -> str:
        """Why the reproduction failed, changed data files first (they are the cause)."""
        if not self.comparable:
            return (
                f"not reproduced: run {self.run_id} recorded nothing a re-execution could be "
                "compared with (no metric, data file or model with an input example)"
            )
        differing = [c for c in self.differences() if c.decisive]
        causes = [
            f"data file {c.subject} changed: sha256 {c.original[:12]}.. -> {c.now[:12]}.."
            for c in differing
            if c.kind == "data"
        ]
        others = [c.name for c in differing if c.kind != "data"]
        return "not reproduced: " + "; ".join(
            [*causes, *([f"{', '.join(others)} differ"] if others else [])]
        )

    def differences(self) -> list[Check]:
        """Checks whose values differ (decisive or not)."""
        return [c for c in self.checks if not c.same]

    def to_dict(self) -> dict:
        """JSON form for `--json`."""
        return {
            "run_id": self.run_id,
            "new_run_id": self.new_run_id,
            "identical": self.identical,
            "compared": self.verdict(),
            "notes": self.notes,
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


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def metric_text(value: float) -> str:
    """A metric as text, exactly: repr keeps every bit of a float."""
    return "nan" if math.isnan(value) else repr(value)


def metric_checks(
    then: dict[str, float],
    now: dict[str, float],
    subject: str,
    label: str = "",
    skip: Callable[[str], bool] = lambda name: False,
) -> list[Check]:
    """One decisive check per recorded metric (``skip``: the wall-clock ones), by name."""
    return [
        Check(
            f"metric {name}{label}",
            metric_text(value),
            "(missing)" if name not in now else metric_text(now[name]),
            decisive=True,
            kind="metric",
            subject=subject,
        )
        for name, value in sorted(then.items())
        if not skip(name)
    ]


CONTEXT_TAGS = {
    "innflow.data_sha256": "data sha256",
    "innflow.contract_sha256": "data contract sha256",
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


def context_checks(tags: dict[str, str], now: dict[str, str]) -> list[Check]:
    """Data, code, environment and machine then and now: reported, never decisive."""
    checks = [
        Check(label, tags.get(key, NOT_RECORDED), now.get(key, NOT_RECORDED), decisive=False)
        for key, label in CONTEXT_TAGS.items()
    ]
    return checks + [
        Check(f"lib {key.removeprefix('innflow.lib.')}", value, now.get(key, "absent"), False)
        for key, value in sorted(tags.items())
        if key.startswith("innflow.lib.")
    ]
