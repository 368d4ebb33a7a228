"""Run housekeeping: `innflow runs cleanup` ends runs left RUNNING by a process that died."""

from __future__ import annotations

import re
from typing import Annotated

import typer
from rich.table import Table

from innflow.cli.base import ConfigOption, JsonOption, SetOption, app, emit_json, err, out

runs_app = typer.Typer(help="Tracked runs: end those a dead process left RUNNING.")
app.add_typer(runs_app, name="runs")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90s``, ``30m``, ``12h``, ``7d`` in seconds; a one-line error otherwise."""
    from innflow.errors import ConfigError

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if match is None or float(match[1]) <= 0:
        raise ConfigError(
            f"--older-than {text!r}: give a positive number and a unit: 90s, 30m, 12h, 7d"
        )
    return float(match[1]) * _UNITS[match[2]]


@runs_app.command()
def cleanup(
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            help="Also end RUNNING runs started longer ago than this (30m, 12h, 7d), on any "
            "host: for runs of another machine or container.",
        ),
    ] = None,
    experiment: Annotated[
        list[str] | None,
        typer.Option("--experiment", help="Only this experiment (repeatable; default: all)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be ended; change nothing.")
    ] = False,
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Mark KILLED the runs left RUNNING whose process is gone (this host), with the reason."""
    from innflow import config as config_module
    from innflow import tracking

    limit = parse_duration(older_than) if older_than is not None else None
    resolved = config_module.load(config, overrides or [])
    tracking.connect(resolved.tracking.uri)
    ids = tracking.experiment_ids(experiment) if experiment else None
    ended = tracking.end_orphans(ids, limit, dry_run=dry_run)
    if as_json:
        emit_json({"dry_run": dry_run, "ended": ended})
        return
    verb = "would end" if dry_run else "ended"
    if not ended:
        err.print("no orphaned run found", highlight=False)
        return
    table = Table(title=f"{verb} {len(ended)} run(s) as KILLED")
    for column in ("run id", "experiment", "name", "host", "reason"):
        table.add_column(column, overflow="fold")
    for r in ended:
        table.add_row(r["run_id"], r["experiment_id"], r["run_name"], r["host"], r["reason"])
    out.print(table)
