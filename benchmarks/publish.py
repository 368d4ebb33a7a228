"""Print a benchmark's table and keep it as the docs' record of the run.

Each table goes to the terminal (rich) and to ``benchmarks/results/<name>.md`` with the
date, the commit and the machine it was measured on; the docs' performance page is built
from those files (docs/hooks/generated_reference.py), so no figure there is copied by hand.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results"


def _commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(RESULTS.parent), "describe", "--always", "--dirty"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.stdout.strip() or "unknown"


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown(table: Table) -> str:
    """The table as Markdown, title and caption kept."""
    headers = [_cell(c.header) for c in table.columns]
    cells = [[_cell(v) for v in c.cells] for c in table.columns]
    lines = [f"**{table.title}**", ""] if table.title else []
    lines += ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in zip(*cells, strict=True)]
    if table.caption:
        lines += ["", str(table.caption)]
    return "\n".join(lines)


def show(
    name: str, *tables: Table, notes: tuple[str, ...] = (), console: Console | None = None
) -> Path:
    """Print ``tables`` (and ``notes``) and write them to ``results/<name>.md``."""
    console = console or Console()
    for table in tables:
        console.print(table)
    for note in notes:
        console.print(note)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    header = (
        f"`benchmarks/{name}.py`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"commit `{_commit()}`, {os.cpu_count()} cores ({platform.machine()}), "
        f"load average {load} when it finished"
    )
    body = [header, *(markdown(t) for t in tables), *notes]
    RESULTS.mkdir(exist_ok=True)
    target = RESULTS / f"{name}.md"
    target.write_text("\n\n".join(body) + "\n")
    return target
