"""Monitoring commands: monitor (drift and decay against the model's reference) and
simulate (retraining policies replayed on history).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from innflow.cli.base import (
    ConfigOption,
    JsonOption,
    SetOption,
    ThreadsOption,
    app,
    emit_json,
    err,
    out,
)

DEFAULT_MODEL_URI = "models:/hotel-booking-cancellation@production"


@app.command()
def monitor(
    batch: Annotated[
        Path | None, typer.Option("--batch", help="Bookings file (parquet/CSV) to check.")
    ] = None,
    log: Annotated[
        Path | None, typer.Option("--log", help="The serving prediction log directory.")
    ] = None,
    model_uri: Annotated[
        str, typer.Option("--model-uri", help="The model whose reference profile to use.")
    ] = DEFAULT_MODEL_URI,
    since: Annotated[
        datetime | None,
        typer.Option(
            "--since",
            formats=["%Y-%m-%d"],
            help="Only arrivals (batch) or predictions (log) from this date.",
        ),
    ] = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
    html_file: Annotated[Path | None, typer.Option("--html", help="Write the HTML report.")] = None,
    prom_file: Annotated[
        Path | None, typer.Option("--prom", help="Write Prometheus metrics (textfile collector).")
    ] = None,
) -> None:
    """Drift and decay against the model's reference profile; exit 4 when a threshold is crossed."""
    from innflow.errors import DriftDetected
    from innflow.monitoring.settings import load
    from innflow.workflows.monitor import monitor as run_monitor

    resolved, thresholds = load(config, overrides or [])
    outcome = run_monitor(
        resolved,
        thresholds,
        model_uri,
        batch,
        log,
        since.date() if since else None,
        html_file,
        prom_file,
    )
    result = outcome.result
    if as_json:
        emit_json(outcome.to_dict())
    else:
        table = Table(title=f"{outcome.source}: {result.rows:,} bookings vs {model_uri}")
        for column in ("feature", "PSI", "band", "distance"):
            table.add_column(column, justify="right")
        for d in [result.prediction, *result.features]:
            colour = {"stable": "green", "moderate": "yellow", "shift": "red"}[d.band]
            table.add_row(d.feature, f"{d.psi:.3f}", f"[{colour}]{d.band}[/]", f"{d.distance:.3f}")
        out.print(table)
        for name, value in (result.performance or {}).items():
            out.print(f"{name:<12}{value:.4f}")
        if result.variants is not None:
            for r in result.variants.itertuples():
                out.print(
                    f"{r.variant} v{r.model_version}: ROC AUC {r.roc_auc:.4f} "
                    f"[{r.roc_auc_low:.4f}, {r.roc_auc_high:.4f}] on {r.rows:,.0f}"
                )
        out.print(f"run_id      {outcome.run_id}")
    for path in (html_file, prom_file):
        if path is not None:
            err.print(f"wrote {path}")
    if not result.healthy:
        raise DriftDetected(f"{result.status}: " + "; ".join(result.reasons))
    err.print("[green]healthy: no threshold crossed[/]")


@app.command()
def simulate(
    start: Annotated[str, typer.Option("--start", help="First month (YYYY-MM).")] = "2016-07",
    end: Annotated[str, typer.Option("--end", help="Last month (YYYY-MM).")] = "2017-08",
    policy: Annotated[
        list[str] | None,
        typer.Option(
            "--policy",
            help="never | monthly | on-drift | on-decay (repeatable; default: all four).",
        ),
    ] = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
    html_file: Annotated[Path | None, typer.Option("--html", help="Write the HTML report.")] = None,
    threads: ThreadsOption = None,
) -> None:
    """Replay history month by month under retraining policies, gate included."""
    from rich.progress import Progress

    from innflow.monitoring.page import simulation as simulation_page
    from innflow.monitoring.policies import POLICIES, validate
    from innflow.monitoring.settings import load
    from innflow.steps.backtesting import months
    from innflow.workflows.monitor import check_writable
    from innflow.workflows.simulate import simulate as run_simulation
    from innflow.workflows.simulate import to_dict

    resolved, thresholds = load(config, overrides or [])
    chosen = validate(policy or list(POLICIES))
    check_writable(html_file)
    with Progress(console=err) as bar:
        task = bar.add_task("simulate", total=len(chosen) * len(months(start, end)))

        def on_month(name: str, month: str) -> None:
            bar.update(task, advance=1, description=f"{name} {month}")

        outcome = run_simulation(resolved, thresholds, start, end, chosen, threads, on_month)
    if html_file is not None:
        html_file.write_text(simulation_page(outcome.months, outcome.summary, start, end))
        err.print(f"wrote {html_file}")
    if as_json:
        emit_json(to_dict(outcome))
        return
    table = Table(title=f"retraining policies {start}..{end} ({resolved.model.kind})")
    for column in outcome.summary.columns:
        table.add_column(column.replace("_", " "), justify="right")
    for row in outcome.summary.to_dict(orient="records"):
        table.add_row(*(_figure(v) for v in row.values()))
    out.print(table)
    out.print(f"parent_run_id   {outcome.parent_run_id}  ({outcome.seconds:.0f} s)")


def _figure(value: object) -> str:
    """A summary cell: counts as integers, money with separators, rates to four places."""
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4f}"
    return str(value)
