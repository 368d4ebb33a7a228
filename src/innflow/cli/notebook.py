"""Notebook commands: run a notebook as one tracked, reproducible MLflow run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from innflow.cli.base import JsonOption, ThreadsOption, app, emit_json, err, metrics_table, out
from innflow.redaction import uri_credentials

notebook_app = typer.Typer(
    help="Run notebooks as tracked, reproducible runs.", no_args_is_help=True
)
app.add_typer(notebook_app, name="notebook")


@notebook_app.command("run")
def run(
    notebook: Annotated[Path, typer.Argument(help="Jupytext percent .py or .ipynb notebook.")],
    parameters: Annotated[
        list[str] | None,
        typer.Option(
            "--parameter", "-p", help="Set a notebook parameter: name=value (repeatable)."
        ),
    ] = None,
    experiment: Annotated[
        str | None,
        typer.Option(
            "--experiment", "-e", help="MLflow experiment of the run (whatever the notebook sets)."
        ),
    ] = None,
    as_json: JsonOption = False,
    threads: ThreadsOption = None,
) -> None:
    """Execute a notebook in a fresh kernel as one MLflow run; exit 1 if a cell fails."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from innflow.workflows.notebook import DEFAULT_EXPERIMENT, parse_parameters, run_notebook

    values = parse_parameters(parameters or [])
    columns = (TextColumn(f"{notebook.name}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("cells"), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=err) as bar:
        task = bar.add_task("cells", total=None)
        outcome = run_notebook(
            notebook, values, threads, experiment or DEFAULT_EXPERIMENT,
            on_cell=lambda done, total: bar.update(task, completed=done, total=total),
        )  # fmt: skip
    if outcome.output:
        err.print(f"[dim]{notebook.name}, last printed output:[/]")
        err.print(outcome.output, markup=False, highlight=False)
    if as_json:
        emit_json({**outcome.to_dict(), "tracking_uri": uri_credentials(outcome.tracking_uri)})
        return
    if outcome.train_run_id and "val_roc_auc" in outcome.metrics:
        out.print(metrics_table(outcome.metrics, f"{notebook.name}: its last training"))
    elif outcome.metrics:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(outcome.metrics.items()))
        out.print(f"metrics       {shown}", markup=False, highlight=False)
    out.print(f"run_id        {outcome.run_id}")
    out.print(f"train_run_id  {outcome.train_run_id or '-'}")
    out.print(f"parameters    {outcome.parameters}")
    for file in outcome.data_files:
        out.print(f"data          {file['path']} (sha256 {file['sha256'][:16]}...)")
    out.print(f"store         {uri_credentials(outcome.tracking_uri)}")
