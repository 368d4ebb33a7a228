"""Monitoring thresholds: the ``monitoring:`` section of the run config (config.py), read
together with the rest so one YAML file configures training and monitoring alike.
"""

from __future__ import annotations

from pathlib import Path

from innflow import config as run_config
from innflow.config import MonitoringConfig

__all__ = ["MonitoringConfig", "load"]


def load(
    path: Path | None, overrides: list[str] | tuple[str, ...] = ()
) -> tuple[run_config.Config, MonitoringConfig]:
    """The run config and its monitoring thresholds (``--set monitoring.psi_shift=0.3``)."""
    resolved = run_config.load(path, list(overrides))
    return resolved, resolved.monitoring
