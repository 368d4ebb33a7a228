"""The Typer app, the consoles, shared options and output helpers of the `innflow` CLI.

Expected failures (InnflowError) become one line on stderr and their exit code; progress
goes to stderr so `--json` output on stdout stays machine-readable.
"""

from __future__ import annotations

import atexit
import gc
import json
import logging
import signal
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from innflow.cli import termination
from innflow.errors import InnflowError

app = typer.Typer(
    help="innflow: reproducible, tracked hotel-booking cancellation models on MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect and validate data files.", no_args_is_help=True)
app.add_typer(data_app, name="data")
contract_app = typer.Typer(help="Draft a data set's contract.", no_args_is_help=True)
app.add_typer(contract_app, name="contract")

out = Console()
err = Console(stderr=True)

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")]
SetOption = Annotated[
    list[str] | None, typer.Option("--set", help="Override a config key: a.b=value (repeatable).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
OutputsOption = Annotated[
    Path | None,
    typer.Option(
        "--outputs",
        help="Also write the result as files a pipeline tool reads (DVC: metrics.json, "
        "plots/, run.json) into this folder.",
    ),
]
ThreadsOption = Annotated[
    int | None,
    typer.Option("--threads", help="Threads for fitting (default: INNFLOW_THREADS or all cores)."),
]


def emit_json(payload: dict[str, Any]) -> None:
    """One JSON object on stdout (progress and errors go to stderr)."""
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


class StepLog:
    """Step messages with elapsed time on stderr, plus a spinner on a terminal."""

    def __init__(self) -> None:
        import time

        self._clock = time.perf_counter
        self._start = self._clock()
        self._status = err.status("starting")

    def __enter__(self) -> StepLog:
        self._status.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._status.__exit__(*exc)

    def __call__(self, message: str) -> None:
        """Log one step with the elapsed time."""
        err.log(f"[{self._clock() - self._start:5.1f}s] {message}", highlight=False)
        self._status.update(message)


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Show the version and exit.")] = False,
) -> None:
    if version:
        from innflow import __version__

        out.print(f"innflow {__version__}")
        raise typer.Exit()


def metrics_table(metrics: dict[str, float], title: str) -> Table:
    """Validation and test metrics side by side."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("validation", justify="right")
    table.add_column("test", justify="right")
    for name in ("roc_auc", "pr_auc", "log_loss", "brier", "accuracy", "f1", "precision", "recall"):
        table.add_row(name, f"{metrics[f'val_{name}']:.4f}", f"{metrics[f'test_{name}']:.4f}")
    return table


def cell(value: object) -> str:
    """A table cell: floats to 4 places, hashes shortened, missing as '-'."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return short(str(value))


def short(value: str) -> str:
    """Hashes shortened for the terminal table (`--json` has them whole)."""
    return value[:16] + "..." if len(value) == 64 and value.isalnum() else value


def main() -> None:
    """Console-script entry point: map innflow's errors, and any failure of the tracking
    store (tracking.store_failure), to one line and an exit code; SIGTERM ends open runs
    as KILLED and exits 143 (128 + SIGTERM). Servers started from here (uvicorn) install
    their own graceful-shutdown handlers over this one.
    """
    termination.install()
    # Registered first, so it runs last at exit, after every other handler (MLflow's
    # flushes): the interpreter's final collections then skip what the command loaded
    # instead of walking it (0.11-0.16 s of `innflow score`'s exit -> 0.03 s). Files and
    # runs are closed by their own handlers and finalizers, as before.
    atexit.register(gc.freeze)
    try:
        app()
    except SystemExit:
        if termination.settle():  # Click made the interrupt "Aborted!", exit 1
            sys.exit(128 + signal.SIGTERM)
        raise
    except InnflowError as e:
        termination.settle()
        _fail(e)
    except Exception as e:
        termination.settle()
        from innflow.tracking import store_failure

        failure = store_failure(e)
        if failure is None:
            raise  # a bug: keep its traceback
        _fail(failure)


def _fail(error: InnflowError) -> None:
    """One line on stderr and the error's exit code.

    The line is the command's last word: threads still finishing (MLflow's parallel artifact
    downloads, when a listing failed under them) log nothing after it.
    """
    from innflow.redaction import uri_credentials

    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")

    # Errors quote store and model URIs; a password in one never reaches the terminal.
    err.print(f"[red]error:[/] {uri_credentials(str(error))}", highlight=False, soft_wrap=True)
    sys.exit(error.exit_code)
