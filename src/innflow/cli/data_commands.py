"""`innflow data ...`: inspect and validate booking data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from innflow.cli.base import (
    JsonOption,
    data_app,
    emit_json,
    out,
)  # fmt: skip


@data_app.command("check")
def data_check(
    path: Annotated[Path, typer.Argument(help="Parquet or CSV bookings file.")] = Path(
        "data/hotel_bookings.parquet"
    ),
    as_json: JsonOption = False,
) -> None:
    """Validate a bookings file against the schema and summarise it."""
    from innflow import data

    summary = {"path": str(path), "sha256": data.file_sha256(path) if path.is_file() else None}
    summary.update(data.summarize(data.load_bookings(path)))
    if as_json:
        emit_json(summary)
        return
    table = Table(title=f"{path}: valid", show_header=False)
    for key, value in summary.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    out.print(table)
