"""Monitoring thresholds as validated, frozen data, read from the ``monitoring:`` key of a
config YAML (kept beside the monitoring code until config.py takes it in).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from innflow import config as run_config
from innflow.errors import ConfigError


class MonitoringConfig(BaseModel):
    """When drift or decay counts as an alert (exit 4, the retraining trigger)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    psi_moderate: float = Field(default=0.10, gt=0, description="PSI band: moderate shift")
    psi_shift: float = Field(default=0.25, gt=0, description="PSI band: significant shift")
    max_shifted_features: int = Field(
        default=0, ge=0, description="drift when more features than this reach psi_shift"
    )
    prediction_psi_shift: float = Field(default=0.25, gt=0)
    max_roc_auc_drop: float = Field(default=0.03, ge=0, description="vs the model's test ROC AUC")
    max_brier_rise: float = Field(default=0.03, ge=0, description="vs the model's test Brier")
    max_ece_rise: float = Field(default=0.05, ge=0, description="vs the model's test ECE")
    min_labelled_rows: int = Field(
        default=200, ge=1, description="performance is judged only on this many outcomes"
    )
    bootstrap_rounds: int = Field(default=200, ge=10)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    calibration_bins: int = Field(default=10, ge=2)
    seed: int = 42


def load(
    path: Path | None, overrides: list[str] | tuple[str, ...] = ()
) -> tuple[run_config.Config, MonitoringConfig]:
    """The run config and the monitoring thresholds from one YAML (``monitoring:`` key) and
    ``--set`` overrides (``monitoring.psi_shift=0.3`` goes to the thresholds).
    """
    tree: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except FileNotFoundError as e:
            raise ConfigError(f"config file not found: {path}") from e
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
        tree = dict(loaded or {})
    ours = [o.removeprefix("monitoring.") for o in overrides if o.startswith("monitoring.")]
    theirs = [o for o in overrides if not o.startswith("monitoring.")]
    section = tree.pop("monitoring", None) or {}
    if not isinstance(section, dict):
        raise ConfigError("config key 'monitoring' must hold a mapping")
    for assignment in ours:
        key, _, raw = assignment.partition("=")
        if not _ or not key.strip():
            raise ConfigError(f"override monitoring.{assignment!r} is not of the form key=value")
        section[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
    try:
        thresholds = MonitoringConfig.model_validate(section)
    except ValidationError as e:
        problems = "; ".join(
            f"'monitoring.{'.'.join(str(p) for p in item['loc'])}': {item['msg']}"
            for item in e.errors()
        )
        raise ConfigError(f"invalid config: {problems}") from e
    return run_config.from_dict(tree, theirs), thresholds
