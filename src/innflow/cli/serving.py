"""Serving commands: serve and batch score."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from innflow.cli.base import (
    JsonOption,
    StepLog,
    app,
    emit_json,
    err,
    out,
)  # fmt: skip

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

    from innflow.serving.settings import service_settings
    from innflow.workflows.serve import build_app, worker_environment

    settings = service_settings(
        model_uri=model_uri, routes=tuple(routes or ()), shadows=tuple(shadows or ()),
        model_name=model_name, prediction_log=prediction_log, reload_seconds=reload_seconds,
    )  # fmt: skip
    # Built here first even with workers: a bad URI or route fails once and clearly.
    app, serving = build_app(settings)
    err.print(f"serving {serving} on http://{host}:{port}")
    for note in app.state.notes:
        err.print(note, soft_wrap=True, markup=False)
    if workers > 1:
        err.print(
            f"{workers} worker processes: each keeps its own /metrics (a scrape sees one of "
            "them); for one set of metrics run one worker per container and scale containers"
        )
        os.environ.update(worker_environment(settings))
        uvicorn.run("innflow.workflows.serve:app_from_environment", factory=True, host=host,
                    port=port, workers=workers, log_level="warning", access_log=False)  # fmt: skip
        return
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


@app.command()
def score(
    source: Annotated[Path, typer.Argument(help="Parquet or CSV bookings.")],
    target: Annotated[Path, typer.Argument(help="Output .parquet or .csv.")],
    model_uri: ModelUriOption = "models:/hotel-booking-cancellation@production",
    engine: Annotated[
        str, typer.Option("--engine", help="local, or spark (mlflow.pyfunc.spark_udf).")
    ] = "local",
    check_source: Annotated[
        bool,
        typer.Option(
            "--check-source/--no-check-source",
            help="Scoring from a start-up snapshot, load the registered model meanwhile and "
            "warn when it no longer loads (--no-check-source: faster, unchecked).",
        ),
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Batch scoring: the input columns plus probability, decision, version and error."""
    from innflow.workflows.score import score_file

    with StepLog() as progress:
        progress(f"scoring {source} with {model_uri} ({engine})")
        outcome = score_file(model_uri, source, target, engine, check_source)
    payload = {"rows": outcome.rows, "scored": outcome.scored, "rejected": outcome.rejected,
               "seconds": round(outcome.seconds, 3), "model_version": outcome.model_version,
               "model_seconds": round(outcome.model_seconds, 3), "predictor": outcome.predictor,
               "output": str(target), "model_origin": outcome.origin,
               "source_checked": outcome.source_checked,
               "source_error": outcome.source_error}  # fmt: skip
    if outcome.source_error is not None:
        err.print(
            f"innflow score: warning: scored with the start-up snapshot of {model_uri} "
            f"(version {outcome.model_version}), but the registered model could not be "
            f"loaded (a service would not load it either): {outcome.source_error}",
            soft_wrap=True, markup=False,
        )  # fmt: skip
    if as_json:
        emit_json(payload)
    else:
        out.print(f"{outcome.scored:,} scored, {outcome.rejected:,} rejected (reasons in the "
                  f"'error' column) -> {target} in {outcome.seconds:.2f}s")  # fmt: skip


@app.command("compile")
def compile_predictor(
    model_uri: ModelUriOption = "models:/hotel-booking-cancellation@production",
    as_json: JsonOption = False,
) -> None:
    """Build, verify and cache a LightGBM model's compiled predictor (needs a C compiler):
    `innflow serve` then starts with it and `innflow score` uses it.
    """
    from innflow.workflows.serve import compile_model

    with StepLog() as progress:
        progress(f"compiling {model_uri}")
        model, snapshot = compile_model(model_uri)
    predictor = {**model.predictor, "snapshot": str(snapshot) if snapshot else None}
    if as_json:
        emit_json(predictor)
    else:
        library = predictor.get("library") or "-"  # none on the general and pipeline paths
        out.print(f"{predictor['state']}: {predictor['detail']} ({library})")
        if snapshot is not None:
            out.print(f"start-up snapshot: {snapshot}")
    if predictor["state"] in ("refused", "failed"):
        raise typer.Exit(1)
