"""Training commands: train, reproduce, tune, backtest, compare."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from innflow.cli.base import (
    ConfigOption,
    JsonOption,
    OutputsOption,
    SetOption,
    StepLog,
    ThreadsOption,
    app,
    cell,
    emit_json,
    err,
    metrics_table,
    out,
    short,
)  # fmt: skip
from innflow.redaction import uri_credentials


@app.command()
def train(
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
    threads: ThreadsOption = None,
    outputs: OutputsOption = None,
) -> None:
    """Train one model and record it, reproducibly, as one MLflow run."""
    from innflow import config as config_module
    from innflow.workflows.outputs import prepare as prepare_outputs
    from innflow.workflows.outputs import write_train_outputs
    from innflow.workflows.train import train as run_training

    if outputs is not None:
        prepare_outputs(outputs)
    resolved = config_module.load(config, overrides or [])
    with StepLog() as progress:
        outcome = run_training(resolved, threads, on_step=progress)
    if outputs is not None:
        write_train_outputs(outcome, outputs)
    if as_json:
        emit_json(
            {
                "run_id": outcome.run_id,
                "experiment_id": outcome.experiment_id,
                "model_uri": outcome.model_uri,
                "tracking_uri": uri_credentials(outcome.tracking_uri),
                "predictions_sha256": outcome.predictions_sha256,
                "metrics": outcome.metrics,
            }
        )
        return
    out.print(
        metrics_table(
            outcome.metrics, f"{resolved.model.kind}: threshold {outcome.metrics['threshold']:.3f}"
        )
    )
    out.print(f"run_id      {outcome.run_id}")
    out.print(f"experiment  {resolved.tracking.experiment} ({outcome.experiment_id})")
    out.print(f"model       {outcome.model_uri}")
    out.print(f"store       {uri_credentials(outcome.tracking_uri)}")


@app.command()
def tune(
    trials: Annotated[
        int | None, typer.Option("--trials", min=1, help="Trials (default: tuning.trials).")
    ] = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0.001, help="Stop after S seconds.")
    ] = None,
    storage: Annotated[
        str | None, typer.Option("--storage", help="Optuna RDB URL shared by several workers.")
    ] = None,
    study: Annotated[
        str | None, typer.Option("--study", help="Study name (to share or resume).")
    ] = None,
    as_json: JsonOption = False,
    threads: ThreadsOption = None,
) -> None:
    """Search hyperparameters (nested runs), then refit the best as a full training run."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from innflow import config as config_module
    from innflow.workflows.tune import tune as run_tuning

    resolved = config_module.load(config, overrides or [])
    total = trials or resolved.tuning.trials
    columns = (TextColumn("tuning"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[best]}"))  # fmt: skip
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task("tune", total=total, best="")

        def on_trial(number: int, value: float | None, best: float | None, state: str) -> None:
            shown = f"best {best:.4f}" if best is not None else ""
            bar.update(task, advance=1, best=f"{shown} (last: {state.lower()})")

        outcome = run_tuning(resolved, trials, timeout, storage, study, threads, on_trial=on_trial)
    payload = {
        "parent_run_id": outcome.parent_run_id,
        "study": outcome.study_name,
        "best_value": outcome.best_value,
        "best_params": outcome.best_params,
        "trials": outcome.trials,
        "refit_run_id": outcome.refit.run_id,
        "refit_model_uri": outcome.refit.model_uri,
        "refit_metrics": outcome.refit.metrics,
        "tracking_seconds": outcome.tracking_seconds,
        "total_seconds": outcome.total_seconds,
    }
    if as_json:
        emit_json(payload)
        return
    out.print(metrics_table(outcome.refit.metrics, "refit of the best trial"))
    for key in (
        "parent_run_id",
        "study",
        "best_value",
        "best_params",
        "trials",
        "refit_run_id",
        "refit_model_uri",
    ):
        out.print(f"{key:<16}{payload[key]}")


@app.command()
def compare(
    run_ids: Annotated[list[str] | None, typer.Argument(help="Runs to compare.")] = None,
    experiment: Annotated[
        str | None, typer.Option("--experiment", help="Compare this experiment's best runs.")
    ] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="How many of the best runs.")] = 5,
    metric: Annotated[str, typer.Option("--metric", help="Rank by this metric.")] = "test_roc_auc",
    ascending: Annotated[bool, typer.Option("--ascending", help="Lower is better.")] = False,
    as_json: JsonOption = False,
    html_file: Annotated[
        Path | None, typer.Option("--html", help="Also write an HTML page.")
    ] = None,
) -> None:
    """Runs side by side: differing params, metrics, and differing fingerprints."""
    from innflow.reproducibility import comparison
    from innflow.workflows.compare import collect, html_page

    runs = collect(run_ids or [], experiment, top, metric, ascending)
    result = comparison.compare(runs)
    names = {r.run_id: r.name for r in runs}
    if html_file is not None:
        html_file.write_text(html_page(result, names))
        err.print(f"wrote {html_file}")
    if as_json:
        emit_json(result.to_dict())
        return
    table = Table(title=f"{len(runs)} runs")
    table.add_column("")
    for run in runs:
        table.add_column(f"{run.name}\n{run.run_id[:8]}", justify="right", overflow="fold")
    for section, rows in (("metric", result.metrics), ("param", result.params),
                          ("fingerprint", result.fingerprints)):  # fmt: skip
        for name, values in rows.items():
            cells = [cell(values.get(r.run_id)) for r in runs]
            table.add_row(f"[dim]{section}[/] {name}", *cells)
    out.print(table)


@app.command()
def backtest(
    config: ConfigOption = None,
    overrides: SetOption = None,
    start: Annotated[str, typer.Option("--start", help="First test month (YYYY-MM).")] = "2016-07",
    end: Annotated[str, typer.Option("--end", help="Last test month (YYYY-MM).")] = "2017-08",
    as_json: JsonOption = False,
    threads: ThreadsOption = None,
) -> None:
    """Rolling-origin evaluation: for each month, train on all before it and test on it."""
    from rich.progress import Progress

    from innflow import config as config_module
    from innflow.steps.backtesting import months
    from innflow.workflows.backtest import backtest as run_backtest

    resolved = config_module.load(config, overrides or [])
    with Progress(console=err) as bar:
        task = bar.add_task("backtest", total=len(months(start, end)))

        def on_month(label: str, metrics: dict[str, float]) -> None:
            figure = (f"RMSE {metrics['rmse']:.2f}" if "rmse" in metrics
                      else f"ROC AUC {metrics['roc_auc']:.3f}")  # fmt: skip
            bar.update(task, advance=1, description=f"{label} {figure}")

        outcome = run_backtest(resolved, start, end, threads, on_month=on_month)
    records = outcome.table.to_dict(orient="records")
    if as_json:
        emit_json({"parent_run_id": outcome.parent_run_id, "months": records})
        return
    table = Table(title=f"backtest {start}..{end} ({resolved.model.kind})")
    regression = bool(records) and "rmse" in records[0]
    columns: tuple[str, ...] = (
        "month",
        "test rows",
        "cancel rate",
        "ROC AUC",
        "threshold",
        "cost saving",
    )
    if regression:
        columns = ("month", "test rows", "mean target", "RMSE", "baseline RMSE", "MAE", "bias")
    for column in columns:
        table.add_column(column, justify="right")
    for r in records:
        if regression:
            table.add_row(
                r["month"], f"{r['rows_test']:,.0f}", f"{r['target_mean']:.2f}",
                f"{r['rmse']:.2f}", f"{r['baseline_rmse']:.2f}", f"{r['mae']:.2f}",
                f"{r['bias']:+.2f}",
            )  # fmt: skip
            continue
        table.add_row(
            r["month"], f"{r['rows_test']:,.0f}", f"{r['cancel_rate']:.3f}", f"{r['roc_auc']:.4f}",
            f"{r['threshold']:.2f}", f"{r['cost_saving_share']:.1%}",
        )  # fmt: skip
    out.print(table)
    out.print(f"parent_run_id   {outcome.parent_run_id}")


@app.command()
def reproduce(
    run_id: Annotated[str, typer.Argument(help="The run to re-execute.")],
    as_json: JsonOption = False,
    threads: ThreadsOption = None,
) -> None:
    """Re-execute a past run; exit 0 when bit-identical, 1 with what differs otherwise."""
    from innflow.errors import ReproductionMismatch
    from innflow.workflows.reproduce import reproduce as run_reproduction

    with StepLog() as progress:
        report = run_reproduction(run_id, threads, on_step=progress)
    if as_json:
        emit_json(report.to_dict())
    else:
        shown = [c for c in report.checks if not c.same or c.kind in ("predictions", "data", "dvc")]
        table = Table(title=f"reproduce {run_id} -> {report.new_run_id}")
        for column in ("check", "original", "now", ""):
            table.add_column(column, overflow="fold")
        for check in shown:
            mark = (
                "[green]same[/]"
                if check.same
                else ("[red]DIFFERS[/]" if check.decisive else "[yellow]differs[/]")
            )
            table.add_row(check.name, short(check.original), short(check.now), mark)
        out.print(table)
        same = sum(c.same for c in report.checks)
        out.print(f"{same}/{len(report.checks)} checks identical")
        for note in report.notes:
            err.print(f"[yellow]not compared:[/] {note}", highlight=False)
    if not report.identical:
        raise ReproductionMismatch(report.mismatch())
    err.print(f"[green]reproduced, bit-identical: {report.verdict()}[/]", highlight=False)
