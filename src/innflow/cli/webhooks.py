"""`innflow webhooks ...`: MLflow's registry webhooks on the tracking server, so services
reload and CI starts the moment an alias moves.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.table import Table

from innflow.cli.base import JsonOption, app, emit_json, out
from innflow.errors import ConfigError

webhooks_app = typer.Typer(
    help="The registry's webhooks on the tracking server (MLflow 3.3+).", no_args_is_help=True
)
app.add_typer(webhooks_app, name="webhooks")

SECRET_VARIABLE = "INNFLOW_WEBHOOK_SECRET"


@webhooks_app.command("create")
def create(
    url: Annotated[
        str, typer.Argument(help="Where deliveries go, e.g. http://serve:8080/webhooks/mlflow.")
    ],
    name: Annotated[str, typer.Option("--name", help="The webhook's name.")] = "innflow-serve",
    events: Annotated[
        list[str] | None,
        typer.Option(
            "--event",
            help="model_version_alias.created | model_version_alias.deleted | "
            "model_version.created | model_version_tag.set (repeatable; default: alias moves and "
            "new versions, which innflow serve loads ahead).",
        ),
    ] = None,
    secret_env: Annotated[
        str, typer.Option("--secret-env", help="Variable holding the signing secret.")
    ] = SECRET_VARIABLE,
    description: Annotated[str, typer.Option("--description")] = "innflow: follow alias moves",
    as_json: JsonOption = False,
) -> None:
    """Create a signed webhook (the secret is read from a variable: a command line is public)."""
    from innflow.tracking import webhooks

    secret = os.environ.get(secret_env, "").strip()
    if not secret:
        raise ConfigError(
            f"{secret_env} is empty: set it to the secret the receiver verifies with "
            f"(the service reads {SECRET_VARIABLE})"
        )
    hook = webhooks.create(name, url, list(events or webhooks.SERVE_EVENTS), secret, description)
    if as_json:
        emit_json(hook)
        return
    out.print(f"webhook {hook['id']} ({hook['name']}): {', '.join(hook['events'])} -> {url}")


@webhooks_app.command("list")
def list_webhooks(as_json: JsonOption = False) -> None:
    """The tracking server's webhooks."""
    from innflow.tracking import webhooks

    found = webhooks.listed()
    if as_json:
        emit_json({"webhooks": found})
        return
    table = Table(title="webhooks")
    for column in ("id", "name", "status", "events", "url"):
        table.add_column(column)
    for hook in found:
        table.add_row(hook["id"], hook["name"], hook["status"], ", ".join(hook["events"]),
                      hook["url"])  # fmt: skip
    out.print(table)


@webhooks_app.command("delete")
def delete(webhook_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Remove a webhook."""
    from innflow.tracking import webhooks

    webhooks.delete(webhook_id)
    out.print(f"deleted webhook {webhook_id}")


@webhooks_app.command("test")
def test(
    webhook_id: Annotated[str, typer.Argument(metavar="ID")], as_json: JsonOption = False
) -> None:
    """Have the server send the webhook's example delivery and say what came back."""
    from innflow.tracking import webhooks

    result = webhooks.test(webhook_id)
    if as_json:
        emit_json(result)
    else:
        out.print(f"status {result['status']}: {result['body'] or result['error']}")
    if not result["success"]:
        raise typer.Exit(1)
