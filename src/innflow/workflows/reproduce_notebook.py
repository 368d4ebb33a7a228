"""`innflow reproduce` of a notebook run: execute the logged notebook again with the logged
parameters in a fresh kernel and compare the two run trees.

Compared (decisive): every metric of the notebook run and of every run under it, matched
by position in the tree (unnamed runs get random names; durations aside); the sha256 of
every data file either execution read (a changed file is named as the cause); and the
predictions of every model the tree logged, the original model against the new one, on
the original's input example and, when its inputs are booking columns, on a fixed sample
of the bundled bookings. Models that cannot be compared are listed in the report's notes.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from innflow import config as config_module
from innflow import tracking
from innflow.reproducibility import lineage, provenance
from innflow.reproducibility.reproduction import (
    NOT_RECORDED,
    Check,
    Report,
    context_checks,
    metric_checks,
)
from innflow.steps.training import Prepared, Step, prepare

BOOKINGS = provenance.source_root() / "data" / "hotel_bookings.parquet"
BOOKINGS_ROWS = 500  # the fixed sample models on booking columns are replayed on


def reproduce_notebook(original: Any, threads: int, on_step: Step) -> Report:
    """Execute the logged notebook again with the logged parameters, in a fresh kernel,
    and compare the two run trees.
    """
    from innflow.workflows.notebook import (
        DATA_FILES_ARTIFACT,
        DEFAULT_EXPERIMENT,
        logged_notebook,
        run_notebook,
    )

    run_id, tags = original.info.run_id, original.data.tags
    recorded_path = Path(tags.get("innflow.notebook_path", ""))
    same_notebook = {
        "innflow.reproduces": run_id,
        "innflow.notebook_path": str(recorded_path),
        "innflow.notebook_sha256": tags.get("innflow.notebook_sha256", ""),
    }
    with tempfile.TemporaryDirectory(prefix="innflow-reproduce-") as tmp:
        source, parameters = logged_notebook(run_id, Path(tmp))
        recorded_files = tracking.download_artifact(run_id, DATA_FILES_ARTIFACT, Path(tmp))
        files_then = lineage.from_json(recorded_files.read_text()) if recorded_files else None
        on_step(f"re-executing the logged notebook with {parameters or 'its defaults'}")
        experiment = tags.get("innflow.experiment", DEFAULT_EXPERIMENT)
        outcome = run_notebook(source, parameters, threads, experiment, extra_tags=same_notebook)
    again = tracking.get_run(outcome.run_id)
    file_now = (
        hashlib.sha256(recorded_path.read_bytes()).hexdigest()
        if recorded_path.is_file()
        else "(missing)"
    )
    checks = [
        Check(
            "notebook file sha256 (logged copy re-executed)",
            tags.get("innflow.notebook_sha256", NOT_RECORDED),
            file_now,
            decisive=False,
        )
    ]
    checks += context_checks(tags, again.data.tags)
    files_now = [lineage.DataFile(**f) for f in outcome.data_files]
    checks += _data_checks(files_then, files_now)
    on_step("comparing the metrics of every run in the notebook's tree")
    tree_then, tree_now = _tree_keys(run_id), _tree_keys(outcome.run_id)
    checks += _tree_metric_checks(tree_then, tree_now)
    if "innflow.predictions_sha256" in tags:
        checks.append(
            Check(
                "test predictions sha256",
                tags["innflow.predictions_sha256"],
                outcome.predictions_sha256 or NOT_RECORDED,
                decisive=True,
                kind="predictions",
                subject="innflow training",
            )
        )
    notes: list[str] = []
    on_step("replaying every model the notebook logged, old and new")
    checks += _model_checks(run_id, outcome.run_id, tree_then, tree_now, notes)
    if "innflow.train_run_id" in tags:
        on_step("replaying the original's logged model")
        trained = tracking.get_run(tags["innflow.train_run_id"])
        config = config_module.from_dict(
            yaml.safe_load(tracking.read_config_text(trained.info.run_id))
        )
        replay = replay_check(trained, prepare(config))
        checks.append(
            Check(replay.name, replay.original, replay.now, True, "predictions", "innflow training")
        )
    return Report(run_id, outcome.run_id, checks, notes)


def _data_checks(then: list[lineage.DataFile] | None, now: list[lineage.DataFile]) -> list[Check]:
    """Each data file read then or now, by path: its sha256 then and now (decisive)."""
    if then is None:
        return []  # a notebook run recorded before innflow fingerprinted notebook data
    before = {f.path: f.sha256 for f in then}
    after = {f.path: f.sha256 for f in now}
    return [
        Check(
            f"data file {path}",
            before.get(path, "(not read)"),
            after.get(path, "(not read)"),
            decisive=True,
            kind="data",
            subject=path,
        )
        for path in [*before, *(p for p in after if p not in before)]
    ]


def _tree_keys(run_id: str) -> dict[str, Any]:
    """The runs of a tree keyed by their position: '' for the root, then '1', '1.2', ...
    (n-th child by start time). Positions, not names: unnamed runs get random names.
    """
    tree = tracking.run_tree(run_id)
    keys = {run_id: ""}
    children: dict[str, int] = {}
    keyed = {"": tree[0]}
    for run in tree[1:]:
        parent = run.data.tags.get("mlflow.parentRunId", run_id)
        children[parent] = children.get(parent, 0) + 1
        key = f"{keys[parent]}.{children[parent]}".lstrip(".")
        keys[run.info.run_id] = key
        keyed[key] = run
    return keyed


def _run_label(key: str, run: Any) -> str:
    return "" if not key else f" in run '{run.info.run_name or key}' ({key})"


def _timing(name: str) -> bool:
    """Wall-clock quantities, not results."""
    lowered = name.lower()
    return (
        "duration" in lowered
        or lowered.startswith("system/")
        or lowered.endswith(("_seconds", "_time"))
    )


def _tree_metric_checks(then: dict[str, Any], now: dict[str, Any]) -> list[Check]:
    """Every metric of every run in the original tree against the run at the same place."""
    checks = []
    for key, run in then.items():
        again = now.get(key)
        checks += metric_checks(
            run.data.metrics,
            again.data.metrics if again is not None else {},
            subject=key or "notebook",
            label=_run_label(key, run),
            skip=_timing,
        )
    return checks


def _bookings_sample() -> Any:
    """The first BOOKINGS_ROWS rows of the bundled bookings (None when not bundled)."""
    import pyarrow.parquet as pq

    if not BOOKINGS.is_file():
        return None
    return pq.ParquetFile(BOOKINGS).read_row_group(0).slice(0, BOOKINGS_ROWS).to_pandas()


def _model_checks(
    run_id: str, new_run_id: str, then: dict[str, Any], now: dict[str, Any], notes: list[str]
) -> list[Check]:
    """Old and new model of each logged model (matched by run position, name and order),
    predicting on the old one's input example and on the bookings sample.
    """
    position = {run.info.run_id: key for key, run in then.items()}
    position.update({run.info.run_id: key for key, run in now.items()})

    def keyed(models: list[Any]) -> dict[tuple[str, str, int], Any]:
        found: dict[tuple[str, str, int], Any] = {}
        for model in models:
            where = position.get(model.run_id, "?")
            order = sum(1 for k in found if k[:2] == (where, model.name))
            found[(where, model.name, order)] = model
        return found

    before, after = (
        keyed(tracking.logged_models_of(run_id)),
        keyed(tracking.logged_models_of(new_run_id)),
    )
    bookings = None
    checks = []
    for key, model in before.items():
        label = f"model {model.name}" + _run_label(key[0], then[key[0]])
        subject = "/".join(map(str, key))
        if key not in after:
            checks.append(
                Check(f"{label} logged", "yes", "(missing)", True, "predictions", subject)
            )
            continue
        old, new = tracking.replayable(model.uri), tracking.replayable(after[key].uri)
        inputs = {}
        if old.example is not None:
            inputs["its input example"] = old.example
        if old.takes_columns(_booking_columns()):
            bookings = _bookings_sample() if bookings is None else bookings
            if bookings is not None:
                inputs[f"{BOOKINGS_ROWS} bundled bookings"] = old.columns_of(bookings)
        compared = 0
        for what, frame in inputs.items():
            try:
                expected = provenance.output_sha256(old.predict(frame))
            except Exception as e:  # any model error: this input is unusable, and noted as such
                notes.append(f"{label} cannot predict on {what}: {type(e).__name__}")
                continue
            checks.append(
                Check(f"{label} predictions sha256 on {what}", expected,
                      _predicted_sha(new, frame), True, "predictions", subject)
            )  # fmt: skip
            compared += 1
        if not compared and not inputs:
            notes.append(
                f"{label}: no input example and not on booking columns, predictions not compared"
            )
    return checks


def _predicted_sha(model: tracking.Replayable, inputs: Any) -> str:
    try:
        return provenance.output_sha256(model.predict(inputs))
    except Exception as e:  # the new model failing is itself the difference
        return f"(predict failed: {type(e).__name__})"


def _booking_columns() -> tuple[str, ...]:
    from innflow.data import INPUT_COLUMNS

    return INPUT_COLUMNS


def replay_check(trained: Any, prepared: Prepared) -> Check:
    """The training run's logged model, loaded through MLflow, on today's test set."""
    model = tracking.load_pyfunc(tracking.model_uri(trained))
    replayed = model.predict(prepared.features("test"))
    replay_sha = provenance.predictions_sha256(_positive_class(replayed))
    recorded_sha = trained.data.tags.get("innflow.predictions_sha256", NOT_RECORDED)
    return Check(
        "logged model predictions sha256", recorded_sha, replay_sha, True, "predictions", "model"
    )


def _positive_class(predictions: object) -> np.ndarray:
    array = np.asarray(predictions, dtype="float64")
    return array[:, 1] if array.ndim == 2 else array
