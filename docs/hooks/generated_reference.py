"""mkdocs hook: the reference pages' generated parts, made at build time from the code.

Marker lines are replaced wherever a page holds them:

- ``<!-- innflow:commands -->`` (reference/commands.md): the Markdown Typer itself writes
  for the ``innflow`` app (``python -m typer innflow.cli utils docs --name innflow``),
  every command with its arguments, options, defaults and help, headings moved one level
  down so the page keeps its own title. It runs in a subprocess of the interpreter that
  runs mkdocs, so the CLI is imported exactly as the ``innflow`` command imports it.
- ``<!-- innflow:exit-codes -->`` (reference/commands.md): innflow's deliberate errors
  (``innflow.errors``), each with its exit code and docstring.
- ``<!-- innflow:data-schema -->`` (reference/data.md): the columns of the bookings
  schema (``innflow.data.SCHEMA``) with their kind, nullability and role.

- ``<!-- innflow:benchmarks -->`` (performance.md): the latest table of each benchmark
  script, as ``benchmarks/publish.py`` wrote it to ``benchmarks/results/<script>.md``
  (date, commit and machine included).

Nothing there is hand-written: a renamed option, a new command or a new column shows up in
the next build, and code that cannot be imported fails the build (PluginError).
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

COMMANDS = "<!-- innflow:commands -->"
EXIT_CODES = "<!-- innflow:exit-codes -->"
DATA_SCHEMA = "<!-- innflow:data-schema -->"
BENCHMARKS = "<!-- innflow:benchmarks -->"
RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def _typer_docs() -> str:
    command = [sys.executable, "-m", "typer", "innflow.cli", "utils", "docs", "--name", "innflow"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not result.stdout.strip():
        raise PluginError(
            f"generated_reference: `{' '.join(command[1:])}` failed ({result.returncode}): "
            f"{result.stderr.strip()[-2000:]}"
        )
    return _demote_headings(result.stdout)


def _demote_headings(markdown: str) -> str:
    """Every ATX heading one level down, outside fenced code blocks."""
    lines, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            line = "#" + line
        lines.append(line)
    return "\n".join(lines).strip() + "\n"


def _exit_codes() -> str:
    import innflow.errors as errors

    classes = [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.InnflowError) and cls.__module__ == errors.__name__
    ]
    classes.sort(key=lambda c: (c.exit_code, c is not errors.InnflowError, c.__name__))
    rows = ["| error | exit code | meaning |", "| --- | --- | --- |"]
    for cls in classes:
        doc = " ".join((inspect.getdoc(cls) or "").split()).replace("|", "\\|")
        rows.append(f"| `{cls.__name__}` | {cls.exit_code} | {doc} |")
    return "\n".join(rows) + "\n"


def _data_schema() -> str:
    from innflow import data

    rows = ["| column | kind | may be missing | role |", "| --- | --- | --- | --- |"]
    for name, (kind, nullable) in data.SCHEMA.items():
        if name == data.TARGET:
            role = "target"
        elif name in data.FORBIDDEN:
            role = "refused (the outcome itself)"
        elif name in data.KNOWN_LATER:
            role = "known later"
        else:
            role = "input"
        rows.append(f"| `{name}` | {kind} | {'yes' if nullable else 'no'} | {role} |")
    return "\n".join(rows) + "\n"


def _benchmarks() -> str:
    found = sorted(RESULTS.glob("*.md"))
    if not found:
        return "No benchmark has been recorded yet: `make bench` writes `benchmarks/results/`.\n"
    sections = [f"### `{path.stem}`\n\n{path.read_text().strip()}\n" for path in found]
    return "\n".join(sections)


GENERATED = {
    COMMANDS: _typer_docs, EXIT_CODES: _exit_codes, DATA_SCHEMA: _data_schema,
    BENCHMARKS: _benchmarks,
}  # fmt: skip


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace each marker line in a page with its generated Markdown."""
    for marker, generate in GENERATED.items():
        if marker in markdown:
            markdown = markdown.replace(marker, generate())
    return markdown
