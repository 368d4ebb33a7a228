"""The `innflow` command: parse, call a workflow, report. No logic lives here.

Expected failures (InnflowError) become one line on stderr and their exit code; progress
goes to stderr so `--json` output on stdout stays machine-readable.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from innflow.errors import InnflowError

app = typer.Typer(
    help="innflow: reproducible, tracked hotel-booking cancellation models on MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect and validate booking data.", no_args_is_help=True)
app.add_typer(data_app, name="data")

out = Console()
err = Console(stderr=True)

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")]
SetOption = Annotated[
    list[str] | None, typer.Option("--set", help="Override a config key: a.b=value (repeatable).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
ThreadsOption = Annotated[
    int | None,
    typer.Option("--threads", help="Threads for fitting (default: INNFLOW_THREADS or all cores)."),
]


def _emit_json(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


class _Progress:
    """Step messages with elapsed time on stderr, plus a spinner on a terminal."""

    def __init__(self) -> None:
        import time

        self._clock = time.perf_counter
        self._start = self._clock()
        self._status = err.status("starting")

    def __enter__(self) -> _Progress:
        self._status.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._status.__exit__(*exc)

    def __call__(self, message: str) -> None:
        err.log(f"[{self._clock() - self._start:5.1f}s] {message}", highlight=False)
        self._status.update(message)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Show the version and exit.")] = False,
) -> None:
    if version:
        from innflow import __version__

        out.print(f"innflow {__version__}")
        raise typer.Exit()


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
        _emit_json(summary)
        return
    table = Table(title=f"{path}: valid", show_header=False)
    for key, value in summary.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    out.print(table)


def _metrics_table(metrics: dict[str, float], title: str) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("validation", justify="right")
    table.add_column("test", justify="right")
    for name in ("roc_auc", "pr_auc", "log_loss", "brier", "accuracy", "f1", "precision", "recall"):
        table.add_row(name, f"{metrics[f'val_{name}']:.4f}", f"{metrics[f'test_{name}']:.4f}")
    return table


@app.command()
def train(
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
    threads: ThreadsOption = None,
) -> None:
    """Train one model and record it, reproducibly, as one MLflow run."""
    from innflow import config as config_module
    from innflow.workflows.train import train as run_training

    resolved = config_module.load(config, overrides or [])
    with _Progress() as progress:
        outcome = run_training(resolved, threads, on_step=progress)
    if as_json:
        _emit_json(
            {
                "run_id": outcome.run_id,
                "experiment_id": outcome.experiment_id,
                "model_uri": outcome.model_uri,
                "tracking_uri": outcome.tracking_uri,
                "predictions_sha256": outcome.predictions_sha256,
                "metrics": outcome.metrics,
            }
        )
        return
    out.print(
        _metrics_table(
            outcome.metrics, f"{resolved.model.kind}: threshold {outcome.metrics['threshold']:.3f}"
        )
    )
    out.print(f"run_id      {outcome.run_id}")
    out.print(f"experiment  {resolved.tracking.experiment} ({outcome.experiment_id})")
    out.print(f"model       {outcome.model_uri}")
    out.print(f"store       {outcome.tracking_uri}")


@app.command()
def tune(
    trials: Annotated[
        int | None, typer.Option("--trials", help="Trials (default: tuning.trials).")
    ] = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Stop after S seconds.")
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
        _emit_json(payload)
        return
    out.print(_metrics_table(outcome.refit.metrics, "refit of the best trial"))
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
    from innflow import comparison
    from innflow.workflows.compare import collect, html_page

    runs = collect(run_ids or [], experiment, top, metric, ascending)
    result = comparison.compare(runs)
    names = {r.run_id: r.name for r in runs}
    if html_file is not None:
        html_file.write_text(html_page(result, names))
        err.print(f"wrote {html_file}")
    if as_json:
        _emit_json(result.to_dict())
        return
    table = Table(title=f"{len(runs)} runs")
    table.add_column("")
    for run in runs:
        table.add_column(f"{run.name}\n{run.run_id[:8]}", justify="right", overflow="fold")
    for section, rows in (("metric", result.metrics), ("param", result.params),
                          ("fingerprint", result.fingerprints)):  # fmt: skip
        for name, values in rows.items():
            cells = [_cell(values.get(r.run_id)) for r in runs]
            table.add_row(f"[dim]{section}[/] {name}", *cells)
    out.print(table)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return _short(str(value))


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
    from innflow.workflows.backtest import backtest as run_backtest
    from innflow.workflows.backtest import months

    resolved = config_module.load(config, overrides or [])
    with Progress(console=err) as bar:
        task = bar.add_task("backtest", total=len(months(start, end)))

        def on_month(label: str, metrics: dict[str, float]) -> None:
            bar.update(task, advance=1, description=f"{label} ROC AUC {metrics['roc_auc']:.3f}")

        outcome = run_backtest(resolved, start, end, threads, on_month=on_month)
    records = outcome.table.to_dict(orient="records")
    if as_json:
        _emit_json({"parent_run_id": outcome.parent_run_id, "months": records})
        return
    table = Table(title=f"backtest {start}..{end} ({resolved.model.kind})")
    for column in ("month", "test rows", "cancel rate", "ROC AUC", "threshold", "cost saving"):
        table.add_column(column, justify="right")
    for r in records:
        table.add_row(
            r["month"], f"{r['rows_test']:,.0f}", f"{r['cancel_rate']:.3f}", f"{r['roc_auc']:.4f}",
            f"{r['threshold']:.2f}", f"{r['cost_saving_share']:.1%}",
        )  # fmt: skip
    out.print(table)
    out.print(f"parent_run_id   {outcome.parent_run_id}")


NameOption = Annotated[str, typer.Option("--approved-by", help="Who approves this move.")]


def _gate_report(outcome, title: str) -> None:
    table = Table(title=title)
    for column in ("check", "value", "bound", ""):
        table.add_column(column)
    for c in outcome.decision.checks:
        value = f"{c['value']:.4f}" if isinstance(c.get("value"), float) else ""
        bound = f"{c['bound']:.4f}" if isinstance(c.get("bound"), float) else ""
        table.add_row(c["check"], value, bound, "[green]ok[/]" if c["passed"] else "[red]FAIL[/]")
    out.print(table)


@app.command()
def register(
    run_id: Annotated[str, typer.Argument(help="A finished `innflow train` run.")],
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a run's model (idempotent: the same run is never registered twice)."""
    from innflow import config as config_module
    from innflow.workflows.registry import register as run_register

    resolved = config_module.load(config, overrides or [])
    version, created = run_register(run_id, resolved)
    payload = {"model": resolved.registry.model_name, "version": version, "created": created}
    if as_json:
        _emit_json(payload)
    else:
        verb = "registered as" if created else "already registered as"
        out.print(f"run {run_id} {verb} {resolved.registry.model_name} version {version}")


@app.command()
def gate(
    version: Annotated[str, typer.Argument(help="Model version to judge.")],
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Judge a version: absolute bars, slice floors, and vs the production champion.

    Exit 0 passed, 3 failed.
    """
    from innflow import config as config_module
    from innflow.errors import GateFailed
    from innflow.workflows.registry import run_gate

    resolved = config_module.load(config, overrides or [])
    outcome = run_gate(version, resolved)
    if as_json:
        _emit_json(outcome.to_dict())
    else:
        champion = outcome.champion_version or "none"
        _gate_report(outcome, f"gate: version {version} (champion: {champion})")
    if not outcome.decision.passed:
        raise GateFailed(f"version {version} refused: " + "; ".join(outcome.decision.reasons))
    err.print(f"[green]version {version} passed the gate[/]")


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="Model version to move the alias to.")],
    to: Annotated[str, typer.Option("--to", help="Alias: staging or production.")] = "production",
    approved_by: NameOption = "",
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")] = "",
    force: Annotated[bool, typer.Option("--force", help="Skip the gate check (recorded).")] = False,
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move an alias to a version that passed the gate, with a recorded approval."""
    from innflow import config as config_module
    from innflow.workflows.registry import move_alias

    resolved = config_module.load(config, overrides or [])
    move = move_alias(resolved, version, to, approved_by, reason, force=force)
    if as_json:
        _emit_json(move)
    else:
        out.print(f"{to}: v{move['from_version']} -> v{move['to_version']} (by {approved_by})")


@app.command()
def rollback(
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")] = "",
    approved_by: NameOption = "",
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Put production back on the previous production version."""
    import getpass

    from innflow import config as config_module
    from innflow.workflows.registry import rollback as run_rollback

    resolved = config_module.load(config, overrides or [])
    move = run_rollback(resolved, approved_by or getpass.getuser(), reason)
    if as_json:
        _emit_json(move)
    else:
        out.print(f"production: v{move['from_version']} -> v{move['to_version']} (rollback)")


@app.command()
def history(
    config: ConfigOption = None, overrides: SetOption = None, as_json: JsonOption = False
) -> None:
    """Every alias move of the registered model: what, who, when, why, gate."""
    from innflow import config as config_module
    from innflow import tracking

    resolved = config_module.load(config, overrides or [])
    tracking.connect(resolved.tracking.uri)
    moves = tracking.moves(resolved.registry.model_name)
    if as_json:
        _emit_json({"model": resolved.registry.model_name, "moves": moves})
        return
    table = Table(title=f"alias history of {resolved.registry.model_name}")
    for column in ("at", "alias", "from", "to", "kind", "who", "why", "gate", "forced"):
        table.add_column(column)
    for m in moves:
        table.add_row(m.get("at", "")[:19], m["alias"], m["from_version"], m["to_version"],
                      m.get("kind", ""), m.get("who", ""), m.get("why", ""), m.get("gate", ""),
                      m.get("forced", ""))  # fmt: skip
    out.print(table)


@app.command()
def models(
    config: ConfigOption = None, overrides: SetOption = None, as_json: JsonOption = False
) -> None:
    """The registered versions with their aliases, gate status and key metrics."""
    from innflow import config as config_module
    from innflow.workflows.registry import listing

    resolved = config_module.load(config, overrides or [])
    rows = listing(resolved)
    if as_json:
        _emit_json({"model": resolved.registry.model_name, "versions": rows})
        return
    table = Table(title=resolved.registry.model_name)
    for column in rows[0] if rows else ("version",):
        table.add_column(column)
    for row in rows:
        table.add_row(*[_short(v) for v in row.values()])
    out.print(table)


@app.command()
def pipeline(
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
    threads: ThreadsOption = None,
) -> None:
    """Data check -> train -> evaluate -> register -> gate -> staging.

    Exit 0 when the version is on staging, 3 when the gate refuses it, 2 on bad input.
    """
    from innflow import config as config_module
    from innflow.errors import GateFailed
    from innflow.workflows.pipeline import pipeline as run_pipeline

    resolved = config_module.load(config, overrides or [])
    with _Progress() as progress:
        outcome = run_pipeline(resolved, threads, on_step=progress)
    if as_json:
        _emit_json(outcome.to_dict())
    else:
        _gate_report(outcome.gate, f"gate: version {outcome.version}")
        out.print(f"run_id   {outcome.run_id}{' (reused)' if outcome.reused_run else ''}")
        out.print(f"version  {resolved.registry.model_name} v{outcome.version}")
    if not outcome.staged:
        raise GateFailed(
            f"version {outcome.version} refused by the gate: "
            + "; ".join(outcome.gate.decision.reasons)
        )
    err.print(f"[green]version {outcome.version} is on staging[/]")


ModelUriOption = Annotated[
    str, typer.Option("--model-uri", help="Model to use (registry alias, version or run).")
]


@app.command()
def serve(
    model_uri: ModelUriOption = "models:/hotel-booking-cancellation@production",
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8080,
    workers: Annotated[int, typer.Option("--workers", min=1)] = 1,
    prediction_log: Annotated[
        Path | None, typer.Option("--prediction-log", help="Directory for the prediction log.")
    ] = None,
    routes: Annotated[
        list[str] | None,
        typer.Option("--route", help="A/B split by alias, e.g. production=90 (repeatable)."),
    ] = None,
    shadows: Annotated[
        list[str] | None, typer.Option("--shadow", help="Alias scored and logged, never returned.")
    ] = None,
    model_name: Annotated[
        str, typer.Option("--model-name", help="Registered model for --route/--shadow.")
    ] = "hotel-booking-cancellation",
    reload_seconds: Annotated[
        float, typer.Option("--reload-seconds", help="Poll the aliases this often (0: off).")
    ] = 30.0,
) -> None:
    """Serve a model over HTTP: MLflow's /invocations, /predict, /metrics and more."""
    import os

    import uvicorn

    from innflow.workflows.serve import load

    if workers > 1:
        os.environ["INNFLOW_MODEL_URI"] = model_uri
        load(model_uri)  # fail here, once and clearly, rather than in every worker
        uvicorn.run("innflow.workflows.serve:app_from_environment", factory=True, host=host,
                    port=port, workers=workers, log_level="warning")  # fmt: skip
        return
    from innflow.workflows.serve import build_app

    app, serving = build_app(
        model_uri, routes or [], shadows or [], model_name, prediction_log, reload_seconds
    )
    err.print(f"serving {serving} on http://{host}:{port}")
    uvicorn.run(app, host=host, port=port, log_level="warning")


@app.command()
def score(
    source: Annotated[Path, typer.Argument(help="Parquet or CSV bookings.")],
    target: Annotated[Path, typer.Argument(help="Output .parquet or .csv.")],
    model_uri: ModelUriOption = "models:/hotel-booking-cancellation@production",
    engine: Annotated[str, typer.Option("--engine", help="local (spark: not yet).")] = "local",
    as_json: JsonOption = False,
) -> None:
    """Batch scoring: the input columns plus probability, decision, version and error."""
    from innflow.errors import ConfigError
    from innflow.workflows.serve import score_file

    if engine != "local":
        raise ConfigError(f"engine {engine!r} is not available yet: use --engine local")
    with _Progress() as progress:
        progress(f"scoring {source} with {model_uri}")
        outcome = score_file(model_uri, source, target)
    payload = {"rows": outcome.rows, "scored": outcome.scored, "rejected": outcome.rejected,
               "seconds": round(outcome.seconds, 3), "model_version": outcome.model_version,
               "output": str(target)}  # fmt: skip
    if as_json:
        _emit_json(payload)
    else:
        out.print(f"{outcome.scored:,} scored, {outcome.rejected:,} rejected (reasons in the "
                  f"'error' column) -> {target} in {outcome.seconds:.2f}s")  # fmt: skip


def _short(value: str) -> str:
    """Hashes shortened for the terminal table (`--json` has them whole)."""
    return value[:16] + "..." if len(value) == 64 and value.isalnum() else value


@app.command()
def reproduce(
    run_id: Annotated[str, typer.Argument(help="The run to re-execute.")],
    as_json: JsonOption = False,
    threads: ThreadsOption = None,
) -> None:
    """Re-execute a past run; exit 0 when bit-identical, 1 with what differs otherwise."""
    from innflow.errors import ReproductionMismatch
    from innflow.workflows.reproduce import reproduce as run_reproduction

    with _Progress() as progress:
        report = run_reproduction(run_id, threads, on_step=progress)
    if as_json:
        _emit_json(report.to_dict())
    else:
        shown = [c for c in report.checks if not c.same or c.name.endswith("predictions sha256")]
        table = Table(title=f"reproduce {run_id} -> {report.new_run_id}")
        for column in ("check", "original", "now", ""):
            table.add_column(column, overflow="fold")
        for check in shown:
            mark = (
                "[green]same[/]"
                if check.same
                else ("[red]DIFFERS[/]" if check.decisive else "[yellow]differs[/]")
            )
            table.add_row(check.name, _short(check.original), _short(check.now), mark)
        out.print(table)
        same = sum(c.same for c in report.checks)
        out.print(f"{same}/{len(report.checks)} checks identical")
    if not report.identical:
        decisive = [c.name for c in report.differences() if c.decisive]
        raise ReproductionMismatch(f"not reproduced: {', '.join(decisive)} differ")
    err.print("[green]reproduced: every metric and prediction is bit-identical[/]")


def main() -> None:
    """Console-script entry point: map innflow's errors to one line and an exit code."""
    try:
        app()
    except InnflowError as e:
        err.print(f"[red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)


if __name__ == "__main__":  # `python -m innflow.cli`
    main()
