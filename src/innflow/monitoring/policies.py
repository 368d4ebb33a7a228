"""Retraining policies: when to train a challenger, given last month's monitoring check."""

from __future__ import annotations

from innflow.errors import ConfigError
from innflow.monitoring.check import MonitorResult

POLICIES = ("never", "monthly", "on-drift", "on-decay")


def validate(names: list[str]) -> list[str]:
    """The policies asked for, in order, without repeats; unknown names are refused."""
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise ConfigError(f"unknown policy {', '.join(unknown)}: use {', '.join(POLICIES)}")
    return list(dict.fromkeys(names))


def wants_retrain(policy: str, last: MonitorResult | None) -> bool:
    """``monthly`` always; ``on-drift`` when last month's check raised any alert (drift or
    decay); ``on-decay`` only on decay; ``never`` never. No check yet: no retrain.
    """
    if policy == "monthly":
        return True
    if last is None or policy == "never":
        return False
    return not last.healthy if policy == "on-drift" else last.decay
