"""The central tracking server command."""

from __future__ import annotations

from typing import Annotated

import typer

from innflow.cli.base import app, err


@app.command()
def server(
    ctx: typer.Context,
    backend_store_uri: Annotated[
        str,
        typer.Option(
            "--backend-store-uri",
            envvar="INNFLOW_BACKEND_STORE_URI",
            help="Metadata database, e.g. postgresql+psycopg2://user@host/mlflow. With a "
            "password, set INNFLOW_BACKEND_STORE_URI instead: a command line is public.",
        ),
    ] = "sqlite:///mlflow.db",
    artifacts_destination: Annotated[
        str,
        typer.Option(
            "--artifacts-destination",
            envvar="INNFLOW_ARTIFACTS_DESTINATION",
            help="Where the artifact proxy stores artifacts, e.g. s3://bucket/artifacts.",
        ),
    ] = "./mlartifacts",
    host: Annotated[str, typer.Option("--host", envvar="INNFLOW_SERVER_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", envvar="INNFLOW_SERVER_PORT")] = 5000,
    workers: Annotated[int, typer.Option("--workers", envvar="INNFLOW_SERVER_WORKERS")] = 2,
    auth: Annotated[
        bool,
        typer.Option("--auth", help="MLflow's basic-auth app; admin from MLFLOW_AUTH_ADMIN_*."),
    ] = False,
    auth_database_uri: Annotated[
        str | None,
        typer.Option(
            "--auth-database-uri",
            envvar="INNFLOW_AUTH_DATABASE_URI",
            help="Users and permissions (default: the backend store).",
        ),
    ] = None,
    allowed_hosts: Annotated[
        str | None,
        typer.Option(
            "--allowed-hosts",
            envvar="INNFLOW_ALLOWED_HOSTS",
            help="Host headers accepted beyond localhost and private IPs.",
        ),
    ] = None,
    allow_default_admin_password: Annotated[
        bool, typer.Option("--allow-default-admin-password", help="Only for throwaway servers.")
    ] = False,
) -> None:
    """Run the central MLflow tracking server: database, artifact proxy, optional auth."""
    import tempfile
    from pathlib import Path

    from innflow.redaction import uri_credentials
    from innflow.workflows.server import ServerSettings, serve

    source = ctx.get_parameter_source("backend_store_uri")  # typer's own click's enum
    given_in_argv = getattr(source, "name", "") == "COMMANDLINE"
    if given_in_argv and uri_credentials(backend_store_uri) != backend_store_uri:
        err.print(
            "warning: --backend-store-uri holds a password that every local user can read in "
            "`ps`; set INNFLOW_BACKEND_STORE_URI instead",
            highlight=False,
        )

    settings = ServerSettings(
        backend_store_uri, artifacts_destination, host, port, workers, auth, auth_database_uri,
        allowed_hosts, allow_default_admin_password,
    )  # fmt: skip
    err.print(f"mlflow server on http://{host}:{port} (auth {'on' if auth else 'off'})")
    code = serve(settings, Path(tempfile.mkdtemp(prefix="innflow-server-")))
    raise typer.Exit(code if code >= 0 else 128 - code)  # killed by signal N: 128 + N
