"""`innflow dashboard`: gather what the team asks about a model, from the tracking store.

One read of the registry and the runs per refresh: versions with their aliases, gate and
metrics; the alias history; monitoring results over time; retraining simulations. The web
page (innflow.dashboard) only renders this plain data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from innflow import tracking
from innflow.config import Config


def collect(config: Config) -> dict[str, Any]:
    """Everything the dashboard shows, as JSON-ready data (also served at /api/data)."""
    from innflow.errors import RunNotFoundError
    from innflow.workflows.registry import listing

    uri = tracking.connect(config.tracking.uri)
    name = config.registry.model_name
    try:
        versions = listing(config)
    except RunNotFoundError:
        versions = []  # nothing registered yet: the page says so
    return {
        "model": name,
        "tracking_uri": uri,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": versions,
        "moves": tracking.moves(name),
        "monitoring": _monitoring(tracking.runs_of_kind("monitor"), name),
        "simulations": _simulations(tracking.runs_of_kind("simulate", limit=5)),
    }


def _monitoring(runs: list[dict[str, Any]], model: str) -> list[dict[str, Any]]:
    """Monitoring runs of this model, oldest first (a time series)."""
    mine = [r for r in runs if r["tags"].get("innflow.model_name", model) == model]
    return sorted(mine, key=lambda r: r["start_time"])


def _simulations(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Top-level simulation runs (not their nested months), newest first."""
    return [r for r in runs if not r["parent_run_id"]]


def build_app(config: Config, refresh_seconds: float = 15.0) -> Any:
    """The dashboard web app over this config's tracking store and registered model."""
    from innflow.dashboard.app import create_app

    tracking.connect(config.tracking.uri)  # a bad store URI fails here, before serving
    return create_app(lambda: collect(config), refresh_seconds)
