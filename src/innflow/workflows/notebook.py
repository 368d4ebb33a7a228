"""`innflow notebook run`: execute a notebook in a fresh kernel as one tracked MLflow run.

The notebook (jupytext percent `.py` or `.ipynb`) runs with papermill in a kernel of this
very interpreter, so it sees the locked environment. The run records the parameters, the
notebook as given (`notebook/source.ipynb`), the executed notebook and its HTML, the
notebook's sha256, the code state (commit, `code/uncommitted.diff`), the environment
(`environment/uv.lock`, `environment/installed.txt`), the machine, and the sha256, size and
path of every data file the kernel read (`data/files.json`, tags ``innflow.data_*``).
Every run the notebook starts, innflow trainings included, is a child of its run (see
tracking/kernel.py); the run adopts the last training's result. The printed output of the
last cells comes back in the outcome, for the terminal.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from innflow import tracking
from innflow.config import TrackingConfig
from innflow.errors import ConfigError, NotebookFailed, RunNotFoundError
from innflow.reproducibility import lineage, provenance

KERNEL = "innflow-python"
SOURCE_ARTIFACT = "notebook/source.ipynb"
PARAMETERS_ARTIFACT = "notebook/parameters.json"
DATA_FILES_ARTIFACT = "data/files.json"
DEFAULT_EXPERIMENT = TrackingConfig().experiment
OUTPUT_LINES = 20  # of the last cells' printed output, shown after the run

CellDone = Callable[[int, int], None]  # (cells executed, cells in total)


def _no_progress(done: int, total: int) -> None:
    return None


def parse_parameters(assignments: list[str]) -> dict[str, Any]:
    """``key=value`` pairs, values read as YAML (``40`` is an int, ``[a, b]`` a list)."""
    values: dict[str, Any] = {}
    for assignment in assignments:
        name, sep, raw = assignment.partition("=")
        if not sep or not name.strip().isidentifier():
            raise ConfigError(f"parameter {assignment!r} is not of the form name=value")
        try:
            values[name.strip()] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as e:
            raise ConfigError(f"parameter {assignment!r}: value is not valid YAML") from e
    return values


def read_notebook(path: Path) -> Any:
    """The notebook as an nbformat node, from jupytext percent `.py` or `.ipynb`."""
    import jupytext

    if path.suffix not in (".py", ".ipynb"):
        raise ConfigError(f"{path}: a notebook is a jupytext .py file or an .ipynb file")
    if not path.is_file():
        raise ConfigError(f"notebook not found: {path}")
    try:
        return jupytext.read(path)
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"{path} is not a readable notebook: {first}") from e


@dataclass(frozen=True)
class NotebookOutcome:
    """What `innflow notebook run` reports."""

    run_id: str
    experiment_id: str
    tracking_uri: str
    notebook_sha256: str
    parameters: dict[str, str]
    train_run_id: str | None
    predictions_sha256: str | None
    metrics: dict[str, float]
    data_files: list[dict[str, Any]]
    output: str  # the last cells' printed text, up to OUTPUT_LINES lines

    def to_dict(self) -> dict[str, Any]:
        """JSON form for `--json`."""
        return asdict(self)


def run_notebook(
    path: Path,
    parameters: dict[str, Any],
    threads: int | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    on_cell: CellDone = _no_progress,
    extra_tags: dict[str, str] | None = None,
) -> NotebookOutcome:
    """Execute ``path`` with ``parameters`` as one MLflow run; a failing cell fails the run
    (FAILED, artifacts still logged) and raises NotebookFailed naming the cell and error.
    """
    import nbformat
    import papermill
    from nbclient.exceptions import DeadKernelError

    from innflow.steps.training import resolve_threads

    threads = resolve_threads(threads)
    notebook = read_notebook(path)
    store = tracking.connect(None)
    with tempfile.TemporaryDirectory(prefix="innflow-notebook-") as tmp:
        folder = Path(tmp) / "notebook"
        folder.mkdir()
        source = folder / "source.ipynb"
        # Whatever kernel the author used, the run uses this interpreter's (see _execute).
        notebook.metadata["kernelspec"] = {"name": KERNEL, "language": "python",
                                           "display_name": "innflow"}  # fmt: skip
        nbformat.write(notebook, source)
        declared = papermill.inspect_notebook(source)
        unknown = sorted(set(parameters) - set(declared))
        if unknown:
            known = ", ".join(declared) or "none (no cell tagged 'parameters')"
            raise ConfigError(
                f"{path} has no parameter {', '.join(unknown)}; its parameters: {known}"
            )
        effective = {name: _param_text(p["default"], literal=True) for name, p in declared.items()}
        effective.update({name: _param_text(value) for name, value in parameters.items()})
        code = provenance.code_state()
        tags = {
            "innflow.kind": "notebook",
            "innflow.experiment": experiment,
            "innflow.notebook_path": str(path),
            "innflow.notebook_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            **code.tags(),
            "mlflow.source.git.commit": code.commit,
            **provenance.environment_tags(),
            "innflow.threads": str(threads),
            **(extra_tags or {}),
        }
        (folder / "parameters.json").write_text(json.dumps(parameters, indent=2, sort_keys=True))
        label = Path(tags["innflow.notebook_path"])  # reproduce runs a logged copy of it
        _write_environment(Path(tmp), code)
        with (
            tracking.run(experiment, f"notebook {label.stem}", tags) as active,
            tempfile.TemporaryDirectory(prefix="innflow-kernel-") as kernel_dir,
        ):
            run_id = active.info.run_id
            tracking.log_params(effective)
            reads = Path(kernel_dir) / "reads.tsv"
            kernel_env = {
                **tracking.kernel_environment(run_id),
                "INNFLOW_THREADS": str(threads),
                lineage.READS_ENV: str(reads),
            }
            executed = folder / "executed.ipynb"
            failure: tuple[str, Exception] | None = None
            try:
                _execute(source, executed, parameters, kernel_env, on_cell, Path(kernel_dir))
            except papermill.PapermillExecutionError as e:
                failure = (_describe(label, e), e)
            except DeadKernelError as e:
                failure = (f"notebook {label}: the kernel died ({e})", e)
            output = ""
            if executed.exists():
                (folder / "executed.html").write_text(_html(executed))
                output = last_output(executed)
            tracking.end_open_runs(run_id, "FAILED" if failure else "FINISHED")
            train_run_id = tracking.adopt_training_result(run_id)
            files = _data_files(reads, effective, run_id)
            data_tags = _data_tags(files)
            (Path(tmp) / DATA_FILES_ARTIFACT).parent.mkdir(exist_ok=True)
            (Path(tmp) / DATA_FILES_ARTIFACT).write_text(lineage.to_json(files))
            tracking.log_results({}, data_tags, Path(tmp))
            if failure is not None:
                raise NotebookFailed(failure[0]) from failure[1]
            recorded = tracking.get_run(run_id)
    return NotebookOutcome(
        run_id=run_id,
        experiment_id=recorded.info.experiment_id,
        tracking_uri=store,
        notebook_sha256=tags["innflow.notebook_sha256"],
        parameters=effective,
        train_run_id=train_run_id,
        predictions_sha256=recorded.data.tags.get("innflow.predictions_sha256"),
        metrics=dict(recorded.data.metrics),
        data_files=[asdict(f) for f in files],
        output=output,
    )


def _write_environment(folder: Path, code: provenance.CodeState) -> None:
    """The artifacts a training run records about its environment and code, as files."""
    (folder / "environment").mkdir()
    (folder / "environment" / "installed.txt").write_text(provenance.installed_distributions())
    lock = provenance.source_root() / "uv.lock"
    if lock.exists():
        (folder / "environment" / "uv.lock").write_text(lock.read_text())
    if code.dirty:
        (folder / "code").mkdir()
        (folder / "code" / "uncommitted.diff").write_text(code.diff)


def _data_files(reads: Path, parameters: dict[str, str], run_id: str) -> list[lineage.DataFile]:
    """Every data file the run depends on: read by the kernel through Python, named by a
    parameter, or read by an innflow training in the kernel (pyarrow bypasses the watch).
    """
    cwd = Path.cwd()
    trained = [
        Path(r.data.tags["innflow.data_path"])
        for r in tracking.run_tree(run_id)[1:]
        if r.data.tags.get("innflow.kind") == "train" and "innflow.data_path" in r.data.tags
    ]
    named = lineage.files_named(parameters.values(), cwd)
    return lineage.fingerprint([*named, *lineage.files_read(reads), *trained], cwd)


def _data_tags(files: list[lineage.DataFile]) -> dict[str, str]:
    """Readable in MLflow's UI: one digest, the count, and a tag per file (first 20)."""
    if not files:
        return {"innflow.data_files": "0"}
    tags = {
        "innflow.data_sha256": lineage.combined_sha256(files),
        "innflow.data_files": str(len(files)),
    }
    if len(files) == 1:
        tags["innflow.data_path"] = files[0].path
    for number, file in enumerate(files[:20]):
        tags[f"innflow.data.{number}"] = f"{file.path} ({file.size} bytes, sha256 {file.sha256})"
    return tags


def last_output(executed: Path, lines: int = OUTPUT_LINES) -> str:
    """The text the last cells printed (stdout and plain-text results), last ``lines``
    lines: what the user would have seen at the bottom of the notebook.
    """
    import nbformat

    texts: list[str] = []
    for cell in nbformat.read(executed, as_version=4).cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stdout":
                texts.append(output.get("text", ""))
            elif output.get("output_type") == "execute_result":
                texts.append(output.get("data", {}).get("text/plain", "") + "\n")
    shown = _ANSI.sub("", "".join(texts)).rstrip("\n").splitlines()
    return "\n".join(shown[-lines:])


def _param_text(value: Any, literal: bool = False) -> str:
    """A parameter as a run param: strings bare, anything else as JSON. Defaults come as
    source text (``'lightgbm'``, ``None``) and are read as Python literals when they are.
    """
    if literal:
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return str(value)  # an expression, e.g. Path("data") / "x.parquet"
    return value if isinstance(value, str) else json.dumps(value)


def logged_notebook(run_id: str, destination: Path) -> tuple[Path, dict[str, Any]]:
    """The notebook a notebook run executed, and the parameters it was given."""
    source = tracking.download_artifact(run_id, SOURCE_ARTIFACT, destination)
    params = tracking.download_artifact(run_id, PARAMETERS_ARTIFACT, destination)
    if source is None or params is None:
        raise RunNotFoundError(f"run {run_id} has no {SOURCE_ARTIFACT}: not a notebook run")
    return source, json.loads(params.read_text())


def _execute(
    source: Path,
    executed: Path,
    parameters: dict[str, Any],
    env: dict[str, str],
    on_cell: CellDone,
    sockets: Path,
) -> None:
    """Run the notebook with papermill in a fresh kernel of this interpreter."""
    import nbformat
    import papermill

    cells = sum(c.cell_type == "code" for c in nbformat.read(source, as_version=4).cells)
    total = cells + (1 if parameters else 0)  # papermill injects a cell for the parameters
    done = 0

    def cell_executed(**_: Any) -> None:
        nonlocal done
        done += 1
        on_cell(done, total)

    with _environment(env):
        on_cell(0, total)
        papermill.execute_notebook(
            str(source), str(executed), parameters=parameters, kernel_name=KERNEL,
            kernel_manager_class=_kernel_manager(sockets), progress_bar=False,
            on_cell_executed=cell_executed,
        )  # fmt: skip


def _kernel_manager(sockets: Path) -> type:
    """A kernel manager that always starts ``sys.executable``'s ipykernel, through
    `innflow.tracking.kernel` (run containment and the data-read watch).

    By name, a `python3` kernelspec in the user's or the system's Jupyter directories could
    win and bring another interpreter. Sockets are local (IPC) in a private directory rather
    than TCP ports on localhost.
    """
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import KernelManager

    class ThisInterpreter(KernelManager):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(transport="ipc", ip=str(sockets / "kernel"), **kwargs)

        @property
        def kernel_spec(self) -> KernelSpec:
            argv = [sys.executable, "-m", "innflow.tracking.kernel", "-f", "{connection_file}"]
            return KernelSpec(argv=argv, display_name="innflow", language="python")

    return ThisInterpreter


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the kernel (it inherits ours), then restore them.

    Jupyter's path migration warning is silenced: it concerns Jupyter's own config dirs,
    which a one-off kernel with an explicit kernelspec does not use.
    """
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*platformdirs.*")
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _html(executed: Path) -> str:
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(executed, as_version=4))
    return body


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _describe(path: Path, error: Any) -> str:
    """The failing cell (a few lines around the line that raised) and the error, no traceback."""
    lines = str(error.source).splitlines() or [""]
    trace = _ANSI.sub("", "\n".join(error.traceback or []))
    found = re.findall(r"Cell In\[\d+\], line (\d+)", trace)
    failing = int(found[0]) if found else len(lines)
    first = max(1, failing - 3)
    shown = [
        f"  {'>' if number == failing else ' '} {number:>3} | {lines[number - 1]}"
        for number in range(first, min(failing, len(lines)) + 1)
    ]
    return "\n".join(
        [f"notebook {path} failed in cell In [{error.exec_count}]:", *shown,
         f"{error.ename}: {error.evalue}"]
    )  # fmt: skip
