"""`innflow dashboard`: gather what the team asks about a model, from the tracking store.

One read of the registry and the runs per refresh: versions with their aliases, gate and
metrics; the alias history; monitoring results over time; retraining simulations. The web
page (innflow.dashboard) only renders this plain data.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from innflow import tracking
from innflow.config import Config
from innflow.errors import ConfigError
from innflow.redaction import uri_credentials


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
        "tracking_uri": uri_credentials(uri),
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


def sign_in(config: Config, token: str | None) -> Callable[[str, str], bool]:
    """Who may see the dashboard: with a token (INNFLOW_DASHBOARD_TOKEN), whoever gives it as
    the password; else, against a tracking server with basic auth, its users who may read
    the registered model. Neither: refused, the dashboard never serves anonymously.
    """
    from innflow.dashboard.access import token_check

    uri, model = tracking.connect(config.tracking.uri), config.registry.model_name
    if token and token.strip():
        return token_check(token)
    if tracking.is_server(uri) and tracking.server_requires_sign_in(uri, model):
        return lambda user, password: tracking.can_read_model(uri, model, user, password)
    raise ConfigError(
        "the dashboard needs sign-in: set INNFLOW_DASHBOARD_TOKEN, or use a tracking server "
        f"with basic auth (`innflow server --auth`), not {uri_credentials(uri)}"
    )


def build_app(config: Config, refresh_seconds: float = 15.0, token: str | None = None) -> Any:
    """The dashboard web app over this config's tracking store and registered model, behind
    `sign_in`.
    """
    from innflow.dashboard.app import create_app

    check = sign_in(config, token)  # a bad store URI fails here, before serving
    return create_app(lambda: collect(config), check, refresh_seconds)
