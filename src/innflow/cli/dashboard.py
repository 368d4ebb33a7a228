"""`innflow dashboard`: the team's web page about the model."""

from __future__ import annotations

from typing import Annotated

import typer

from innflow.cli.base import ConfigOption, SetOption, app, out


@app.command()
def dashboard(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8090,
    refresh: Annotated[
        float,
        typer.Option("--refresh", min=0, help="Re-read the tracking store at most this often (s)."),
    ] = 15.0,
    config: ConfigOption = None,
    overrides: SetOption = None,
) -> None:
    """Versions and aliases, alias history, monitoring and simulations, on one web page.

    Sign-in: the password INNFLOW_DASHBOARD_TOKEN when it is set (any user name), else the
    tracking server's basic-auth users who may read the model.
    """
    import os

    import uvicorn

    from innflow import config as config_module
    from innflow.workflows.dashboard import build_app

    resolved = config_module.load(config, overrides or [])
    # from the environment only: an option would put the token in `ps` for every local user
    web = build_app(resolved, refresh, token=os.environ.get("INNFLOW_DASHBOARD_TOKEN"))
    out.print(f"dashboard on http://{host}:{port}/")
    uvicorn.run(web, host=host, port=port, log_level="warning")
