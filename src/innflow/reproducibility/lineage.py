"""Which data files a notebook read, found without the notebook's help, and their
fingerprints.

The kernel installs an audit hook on ``open`` (`watch_reads`) that appends every file it
reads or writes under the project directory to a log the parent names; the parent then
keeps the files read and not written by the notebook itself (a model pickled and read
back is not input data), adds the files that parameter values name (pyarrow and other
native readers bypass Python's ``open``), and hashes them after the last cell.
"""

from __future__ import annotations

import hashlib
import json
import os
import site
import sys
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from innflow.data import file_sha256

READS_ENV = "INNFLOW_NOTEBOOK_READS"
# Never data: tooling, caches, version control and MLflow's own artifact stores.
SKIPPED_PARTS = frozenset(
    {".git", "__pycache__", ".ipynb_checkpoints", ".venv", "mlruns", "mlartifacts",
     ".pytest_cache", ".mypy_cache", ".ruff_cache", "node_modules"}
)  # fmt: skip
SKIPPED_SUFFIXES = frozenset({".py", ".pyc", ".pyi", ".so", ".pth", ".db", ".db-journal"})


@dataclass(frozen=True)
class DataFile:
    """One file a notebook read: path as recorded (relative to the project when under it)."""

    path: str
    sha256: str
    size: int


def _skipped_roots() -> tuple[str, ...]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages()}
    roots.add(site.getusersitepackages())
    folders = {os.path.realpath(r) + os.sep for r in roots}
    # innflow's own temp dirs (the notebook copy, kernel sockets, downloads)
    folders.add(os.path.join(os.path.realpath(tempfile.gettempdir()), "innflow-"))
    return tuple(sorted(folders))


def is_candidate(path: str, project: str, skipped_roots: tuple[str, ...]) -> bool:
    """Whether an opened path may be a data file: under the project, outside the
    interpreter, temp dirs of innflow, tooling folders, and not Python code or a store.
    """
    if not path.startswith(project + os.sep) or path.startswith(skipped_roots):
        return False
    parts = Path(path).relative_to(project).parts
    return not SKIPPED_PARTS.intersection(parts) and Path(path).suffix not in SKIPPED_SUFFIXES


def watch_reads(log: Path, skipped: tuple[str, ...] = ()) -> None:
    """Append ``read<TAB>path`` / ``write<TAB>path`` to ``log`` for each candidate file the
    process opens (once per path and kind), ignoring the folders ``skipped`` (the MLflow
    artifact store). Runs in the kernel before any cell.
    """
    project = os.path.realpath(os.getcwd())
    roots = _skipped_roots() + tuple(os.path.realpath(s) + os.sep for s in skipped)
    seen: set[str] = set()
    state = threading.local()
    writing = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC

    def hook(event: str, args: tuple) -> None:
        if event != "open" or getattr(state, "busy", False):
            return
        path, mode, flags = args
        if not isinstance(path, str | bytes | os.PathLike):
            return  # a file descriptor
        written = any(c in mode for c in "wax+") if mode else bool((flags or 0) & writing)
        state.busy = True  # opening the log below raises this event again
        try:
            full = os.path.realpath(os.fsdecode(path))
            kind = "write" if written else "read"
            if f"{kind}\t{full}" in seen or not is_candidate(full, project, roots):
                return
            seen.add(f"{kind}\t{full}")
            with open(log, "a", encoding="utf-8") as out:
                out.write(f"{kind}\t{full}\n")
        finally:
            state.busy = False

    sys.addaudithook(hook)


def files_read(log: Path) -> list[Path]:
    """Files the kernel read and did not write, in the order first read."""
    if not log.exists():
        return []
    entries = [line.split("\t", 1) for line in log.read_text(encoding="utf-8").splitlines()]
    written = {path for kind, path in entries if kind == "write"}
    return [Path(path) for kind, path in entries if kind == "read" and path not in written]


def files_named(values: Iterable[str], base: Path) -> list[Path]:
    """Parameter values that name an existing file (relative to ``base`` or absolute)."""
    found = []
    for value in values:
        if not value or len(value) > 4096 or "\n" in value:
            continue
        candidate = Path(value) if Path(value).is_absolute() else base / value
        try:
            if candidate.is_file():
                found.append(candidate)
        except OSError:
            continue
    return found


def _shown(path: Path, base: Path) -> str:
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(base.resolve()))
    except ValueError:
        return str(resolved)


def fingerprint(paths: Iterable[Path], base: Path) -> list[DataFile]:
    """sha256 and size of each distinct existing file, in order, paths shown from ``base``."""
    files: dict[str, DataFile] = {}
    for path in paths:
        shown = _shown(path, base)
        if shown not in files and path.is_file():
            files[shown] = DataFile(shown, file_sha256(path), path.stat().st_size)
    return list(files.values())


def combined_sha256(files: list[DataFile]) -> str:
    """One digest for all files: a file's own sha256 when there is one (as a training run
    records), else the sha256 of the sorted ``sha256  path`` lines.
    """
    if len(files) == 1:
        return files[0].sha256
    lines = sorted(f"{f.sha256}  {f.path}\n" for f in files)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def to_json(files: list[DataFile]) -> str:
    """The ``data/files.json`` artifact."""
    return json.dumps([asdict(f) for f in files], indent=2)


def from_json(text: str) -> list[DataFile]:
    """Read back ``data/files.json``."""
    return [DataFile(**entry) for entry in json.loads(text)]
