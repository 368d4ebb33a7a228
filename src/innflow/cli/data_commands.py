"""`innflow data ...` and `innflow contract ...`: validate data files, draft contracts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from innflow.cli.base import (
    JsonOption,
    OutputsOption,
    contract_app,
    data_app,
    emit_json,
    err,
    out,
)  # fmt: skip

ContractOption = Annotated[
    Path | None,
    typer.Option("--contract", help="Data contract (YAML); default: the bundled bookings'."),
]


@data_app.command("check")
def data_check(
    path: Annotated[Path, typer.Argument(help="Parquet or CSV file.")] = Path(
        "data/hotel_bookings.parquet"
    ),
    contract: ContractOption = None,
    as_json: JsonOption = False,
    outputs: OutputsOption = None,
) -> None:
    """Validate a data file against its contract and summarise it."""
    from innflow import data
    from innflow.workflows.outputs import prepare as prepare_outputs
    from innflow.workflows.outputs import write_check_outputs

    if outputs is not None:
        prepare_outputs(outputs)
    rules = data.contract_at(contract)
    summary = {"path": str(path), "contract": rules.name,
               "sha256": data.file_sha256(path) if path.is_file() else None}  # fmt: skip
    summary.update(data.summarize(data.load_data(path, rules), rules))
    if outputs is not None:
        write_check_outputs(summary, outputs)
    if as_json:
        emit_json(summary)
        return
    table = Table(title=f"{path}: valid", show_header=False)
    for key, value in summary.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    out.print(table)


@contract_app.command("init")
def contract_init(
    path: Annotated[Path, typer.Argument(help="Parquet or CSV file to draft the contract from.")],
    target: Annotated[str, typer.Option("--target", help="The column a model predicts.")],
    time_column: Annotated[
        str | None, typer.Option("--time-column", help="A date column: the event time.")
    ] = None,
    task: Annotated[
        str | None, typer.Option("--task", help="binary | regression (default: from the target).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: stdout).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --output.")] = False,
) -> None:
    """Draft a data contract from a file: types, nulls, ranges and levels seen, with
    comments where a person must decide (which columns are known only later).
    """
    from innflow import data
    from innflow.contract.drafting import draft
    from innflow.errors import ConfigError

    if output is not None and output.exists() and not force:
        raise ConfigError(f"{output} exists; pass --force to overwrite it")
    text = draft(data.read_table(path), str(path), target, task, time_column)
    if output is None:
        out.file.write(text)
        return
    output.write_text(text)
    err.print(f"wrote {output}: read it, set each column's role, then "
              f"`innflow data check {path} --contract {output}`", soft_wrap=True)  # fmt: skip
