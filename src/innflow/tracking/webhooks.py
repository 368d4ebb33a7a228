"""The registry's webhooks on a tracking server: MLflow's own (3.3+), which `mlflow
server` delivers signed when a version is created or an alias moves. The embedded SQLite
store has no server to send them, so it is refused here rather than accepted and silent.
"""

from __future__ import annotations

from typing import Any

from innflow.errors import ConfigError
from innflow.tracking.registry import _client, _registry_errors
from innflow.tracking.store import connect

ALIAS_EVENTS = ("model_version_alias.created", "model_version_alias.deleted")
# what `innflow serve` acts on: alias moves reload, a new version is loaded ahead
SERVE_EVENTS = (*ALIAS_EVENTS, "model_version.created")
EVENTS = (*SERVE_EVENTS, "model_version_tag.set")


def _server_client() -> Any:
    uri = connect(None)
    if not uri.startswith(("http://", "https://")):
        raise ConfigError(
            f"webhooks are delivered by a tracking server (mlflow server, `innflow server`); "
            f"{uri} is a local store: set MLFLOW_TRACKING_URI to the server's URL"
        )
    return _client()


def as_dict(hook: Any) -> dict[str, Any]:
    """A webhook as JSON (never its secret: MLflow does not return it)."""
    return {
        "id": hook.webhook_id, "name": hook.name, "url": hook.url,
        "events": [str(e) for e in hook.events], "status": str(hook.status),
        "description": hook.description,
    }  # fmt: skip


def create(name: str, url: str, events: list[str], secret: str, description: str) -> dict:
    """A new active webhook on the server, signed with ``secret``."""
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise ConfigError(f"unknown event {', '.join(unknown)}: use {', '.join(EVENTS)}")
    client = _server_client()
    with _registry_errors(f"creating webhook {name} -> {url}"):
        return as_dict(client.create_webhook(name, url, events, description, secret))


def listed() -> list[dict[str, Any]]:
    """Every webhook on the server."""
    client = _server_client()
    found, token = [], None
    with _registry_errors("listing webhooks"):
        while True:
            page = client.list_webhooks(page_token=token)
            found += [as_dict(h) for h in page]
            token = page.token
            if not token:
                return found


def delete(webhook_id: str) -> None:
    """Remove a webhook."""
    client = _server_client()
    with _registry_errors(f"deleting webhook {webhook_id}"):
        client.delete_webhook(webhook_id)


def test(webhook_id: str) -> dict[str, Any]:
    """Ask the server to send the webhook's example delivery; what the receiver answered."""
    client = _server_client()
    with _registry_errors(f"testing webhook {webhook_id}"):
        result = client.test_webhook(webhook_id)
    return {
        "success": bool(result.success), "status": result.response_status,
        "body": result.response_body, "error": result.error_message,
    }  # fmt: skip
