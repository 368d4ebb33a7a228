"""Registry commands: register, gate, promote, rollback, history, models, pipeline."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

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
    emit_json,
    err,
    out,
    short,
)  # fmt: skip

if TYPE_CHECKING:
    from innflow.workflows.registry import GateOutcome

NameOption = Annotated[
    str,
    typer.Option(
        "--approved-by",
        help="Who approves this move (against an authenticated server: the user of the "
        "tracking credentials, and may be left out).",
    ),
]


def _version(number: object) -> str:
    """``v3``, or ``(none)`` for an alias that had no version before."""
    return "(none)" if number in (None, "", "none") else f"v{number}"


def _cell(value: str) -> str:
    """Metrics to 4 decimals and run ids to 8 characters: an 80-column terminal shows the
    whole table (``--json`` has everything whole).
    """
    try:
        number = float(value)
    except ValueError:
        return value[:8] if len(value) == 32 and value.isalnum() else short(value)
    return f"{number:.4f}" if "." in value else value


def _gate_report(outcome, title: str) -> None:
    table = Table(title=title)
    for column in ("check", "value", "bound", ""):
        table.add_column(column)
    for c in outcome.decision.checks:
        value = f"{c['value']:.4f}" if isinstance(c.get("value"), float) else ""
        bound = f"{c['bound']:.4f}" if isinstance(c.get("bound"), float) else ""
        table.add_row(c["check"], value, bound, "[green]ok[/]" if c["passed"] else "[red]FAIL[/]")
    out.print(table)


def _staged_or_refused(version: str, gate: GateOutcome, staged: bool) -> None:
    """How `pipeline` and `register --stage` end: on staging (exit 0) or refused (exit 3)."""
    from innflow.errors import GateFailed

    if not staged:
        raise GateFailed(
            f"version {version} refused by the gate: " + "; ".join(gate.decision.reasons)
        )
    err.print(f"[green]version {version} is on staging[/]")


ModelNameOption = Annotated[
    str | None,
    typer.Option(
        "--name", help="Registered model (default: the cancellation model, registry.model_name)."
    ),
]


@app.command()
def register(
    ref: Annotated[
        str,
        typer.Argument(
            help="A run id (innflow training, notebook or script run), a logged model URI "
            "(models:/m-... or runs:/RUN_ID/NAME), or the run.json of `train --outputs`.",
            metavar="RUN_ID|MODEL_URI|RUN_FILE",
        ),
    ],
    name: ModelNameOption = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Which model of a run that logged several.")
    ] = None,
    stage: Annotated[
        bool,
        typer.Option(
            "--stage",
            help="Then gate the version and move staging to it if it passes (exit 3 "
            "if refused), as `innflow pipeline` does.",
        ),
    ] = False,
    outputs: OutputsOption = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a logged model (idempotent: the same model is never registered twice).

    A model that takes booking columns goes into the cancellation model; any other model
    needs its own --name.
    """
    from innflow import config as config_module
    from innflow.workflows.outputs import prepare as prepare_outputs
    from innflow.workflows.outputs import run_of, write_release_outputs
    from innflow.workflows.pipeline import stage as stage_version
    from innflow.workflows.registry import register_model

    if outputs is not None:
        prepare_outputs(outputs)
    resolved = config_module.load(config, overrides or [])
    done = register_model(run_of(ref), resolved, name, model)
    payload = done.to_dict()
    if stage:
        outcome, staged = stage_version(
            done.version, resolved, name=done.name, who="innflow register"
        )
        payload |= {"gate": outcome.to_dict(), "staged": staged}
    if outputs is not None:
        write_release_outputs(payload, outputs)
    if as_json:
        emit_json(payload)
    else:
        verb = "registered as" if done.created else "already registered as"
        out.print(
            f"{done.model_uri} ({done.flavor}, {done.origin} {done.run_id}) {verb} "
            f"{done.name} version {done.version}",
            soft_wrap=True,
            highlight=False,
        )
        if stage:
            _gate_report(outcome, f"gate: version {done.version}")
    for note in done.notes:
        err.print(f"[yellow]note:[/] {note}", highlight=False)
    if stage:
        _staged_or_refused(done.version, outcome, payload["staged"])


@app.command()
def gate(
    version: Annotated[str, typer.Argument(help="Model version to judge.")],
    name: ModelNameOption = None,
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
    outcome = run_gate(version, resolved, name=name)
    if as_json:
        emit_json(outcome.to_dict())
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
    name: ModelNameOption = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move an alias to a version that passed the gate, with a recorded approval."""
    from innflow import config as config_module
    from innflow.workflows.registry import move_alias

    resolved = config_module.load(config, overrides or [])
    move = move_alias(resolved, version, to, approved_by, reason, force=force, name=name)
    if as_json:
        emit_json(move)
    else:
        out.print(
            f"{to}: {_version(move['from_version'])} -> {_version(move['to_version'])} "
            f"(by {move['who']})"
        )


@app.command()
def rollback(
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")] = "",
    approved_by: NameOption = "",
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Put production back on the previous production version."""
    from innflow import config as config_module
    from innflow.workflows.registry import rollback as run_rollback

    resolved = config_module.load(config, overrides or [])
    move = run_rollback(resolved, approved_by, reason)
    if as_json:
        emit_json(move)
    else:
        out.print(
            f"production: {_version(move['from_version'])} -> {_version(move['to_version'])} "
            "(rollback)"
        )


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
        emit_json({"model": resolved.registry.model_name, "moves": moves})
        return
    table = Table(title=f"alias history of {resolved.registry.model_name}")
    for column in ("at (UTC)", "alias", "from", "to", "kind", "who", "why", "gate", "forced"):
        table.add_column(column)
    for m in moves:
        at = m.get("at", "")[:16].replace("T", " ")
        table.add_row(at, m["alias"], m["from_version"], m["to_version"], m.get("kind", ""),
                      m.get("who", ""), m.get("why", ""), m.get("gate", ""),
                      m.get("forced", ""))  # fmt: skip
    out.print(table)


@app.command()
def models(
    name: ModelNameOption = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
) -> None:
    """The registered versions with their aliases, gate status and key metrics."""
    from innflow import config as config_module
    from innflow.workflows.registry import listing

    resolved = config_module.load(config, overrides or [])
    rows = listing(resolved, name)
    shown = name or resolved.registry.model_name
    if as_json:
        emit_json({"model": shown, "versions": rows})
        return
    table = Table(title=shown)
    for column in rows[0] if rows else ("version",):
        table.add_column(column.replace("_", " "))
    for row in rows:
        table.add_row(*[_cell(v).replace(",", ", ") for v in row.values()])
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
    from innflow.workflows.pipeline import pipeline as run_pipeline

    resolved = config_module.load(config, overrides or [])
    with StepLog() as progress:
        outcome = run_pipeline(resolved, threads, on_step=progress)
    if as_json:
        emit_json(outcome.to_dict())
    else:
        _gate_report(outcome.gate, f"gate: version {outcome.version}")
        out.print(f"run_id   {outcome.run_id}{' (reused)' if outcome.reused_run else ''}")
        out.print(f"version  {resolved.registry.model_name} v{outcome.version}")
    _staged_or_refused(outcome.version, outcome.gate, outcome.staged)
