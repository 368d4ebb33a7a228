"""`innflow reproduce RUN_ID`: re-execute a past run and prove it bit-identical, or say
exactly what differs.

Three kinds of evidence: the context (data fingerprint, code, locked environment, machine)
compared with now; a fresh re-execution whose every metric and test-prediction hash must
equal the original's; and the original's logged model, loaded through MLflow, which must
still produce the predictions recorded with it.

A notebook run is re-executed from its logged notebook and parameters (see
workflows/notebook.py) and compared on everything its run tree recorded: every metric of
the notebook run and of every run under it (matched by position in the tree, durations
aside), the sha256 of every data file it read (a changed file is named as the cause), and
the predictions of every model the tree logged, old model against new, on the model's own
input example and, when its inputs are booking columns, on a fixed sample of the bundled
bookings. A run where nothing could be compared is never called reproduced.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from innflow import config as config_module
from innflow import lineage, provenance, tracking
from innflow.errors import NotReproducible
from innflow.workflows.train import Prepared, Step, _quiet, prepare, resolve_threads, train

# Context worth reporting; differences here explain a mismatch but do not cause a failure.
CONTEXT_TAGS = {
    "innflow.data_sha256": "data sha256",
    "innflow.git_commit": "code commit",
    "innflow.git_dirty": "uncommitted changes",
    "innflow.git_diff_sha256": "uncommitted diff sha256",
    "innflow.uv_lock_sha256": "uv.lock sha256",
    "innflow.env_sha256": "installed packages sha256",
    "innflow.python": "python",
    "innflow.platform": "platform",
    "innflow.cpu": "cpu",
    "innflow.blas": "BLAS kernel",
    "innflow.threads": "threads",
}
NOT_RECORDED = "(not recorded)"
BOOKINGS = provenance.source_root() / "data" / "hotel_bookings.parquet"
BOOKINGS_ROWS = 500  # the fixed sample models on booking columns are replayed on


@dataclass(frozen=True)
class Check:
    """One compared quantity."""

    name: str
    original: str
    now: str
    decisive: bool  # a difference here makes the reproduction fail
    kind: str = ""  # "metric", "data" or "predictions": what the verdict counts
    subject: str = ""  # the run (metrics) or model (predictions) it belongs to

    @property
    def same(self) -> bool:
        """Whether original and now agree exactly."""
        return self.original == self.now

    @property
    def comparable(self) -> bool:
        """A decisive check the original recorded something for."""
        return self.decisive and self.original != NOT_RECORDED


@dataclass
class Report:
    """Everything `reproduce` compared, and the verdict."""

    run_id: str
    new_run_id: str
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what could not be compared, and why

    @property
    def comparable(self) -> bool:
        """Whether anything at all was compared."""
        return any(c.comparable for c in self.checks)

    @property
    def identical(self) -> bool:
        """True when something was compared and every decisive check agrees bit for bit."""
        return self.comparable and all(c.same for c in self.checks if c.decisive)

    def verdict(self) -> str:
        """What was compared, e.g. '14 metrics in 3 runs, 2 data files, predictions of 2
        models'; predictions are named only when some were compared.
        """
        compared = [c for c in self.checks if c.comparable]
        metrics = [c for c in compared if c.kind == "metric"]
        runs = {c.subject for c in metrics}
        parts = []
        if metrics:
            parts.append(_count(len(metrics), "metric") + (
                f" in {_count(len(runs), 'run')}" if runs != {"training"} else ""
            ))  # fmt: skip
        if data := [c for c in compared if c.kind == "data"]:
            parts.append(_count(len(data), "data file"))
        if models := {c.subject for c in compared if c.kind == "predictions"}:
            parts.append(f"predictions of {_count(len(models), 'model')}")
        others = [c for c in compared if not c.kind]
        if others:
            parts.append(_count(len(others), "other check"))
        return ", ".join(parts) or "nothing"

    def mismatch(self) -> str:
        """Why the reproduction failed, changed data files first (they are the cause)."""
        if not self.comparable:
            return (
                f"not reproduced: run {self.run_id} recorded nothing a re-execution could be "
                "compared with (no metric, data file or model with an input example)"
            )
        differing = [c for c in self.differences() if c.decisive]
        causes = [
            f"data file {c.subject} changed: sha256 {c.original[:12]}.. -> {c.now[:12]}.."
            for c in differing
            if c.kind == "data"
        ]
        others = [c.name for c in differing if c.kind != "data"]
        return "not reproduced: " + "; ".join(
            [*causes, *([f"{', '.join(others)} differ"] if others else [])]
        )

    def differences(self) -> list[Check]:
        """Checks whose values differ (decisive or not)."""
        return [c for c in self.checks if not c.same]

    def to_dict(self) -> dict:
        """JSON form for `--json`."""
        return {
            "run_id": self.run_id,
            "new_run_id": self.new_run_id,
            "identical": self.identical,
            "compared": self.verdict(),
            "notes": self.notes,
            "checks": [
                {
                    "name": c.name,
                    "original": c.original,
                    "now": c.now,
                    "same": c.same,
                    "decisive": c.decisive,
                }
                for c in self.checks
            ],
        }


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _metric_text(value: float) -> str:
    return "nan" if math.isnan(value) else repr(value)


def _context_now(data_sha: str, threads: int) -> dict[str, str]:
    return {
        **provenance.environment_tags(),
        **provenance.code_state().tags(),
        "innflow.data_sha256": data_sha,
        "innflow.threads": str(threads),
    }


def reproduce(run_id: str, threads: int | None = None, on_step: Step = _quiet) -> Report:
    """Re-execute ``run_id`` from its logged config (a notebook run: its logged notebook and
    parameters) and compare everything it recorded.
    """
    threads = resolve_threads(threads)
    store = tracking.connect(None)
    original = tracking.get_run(run_id)
    _check_reproducible(original)
    if original.data.tags.get("innflow.kind") == "notebook":
        return _reproduce_notebook(original, threads, on_step)
    logged = yaml.safe_load(tracking.read_config_text(run_id))
    logged.setdefault("tracking", {})["uri"] = store  # record the re-run next to the original
    config = config_module.from_dict(logged)
    on_step("loading and validating data")
    prepared = prepare(config)
    checks = _context_checks(original.data.tags, _context_now(prepared.data_sha256, threads))
    outcome = train(
        config, threads, on_step, extra_tags={"innflow.reproduces": run_id}, prepared=prepared
    )
    new_metrics = tracking.get_run(outcome.run_id).data.metrics
    checks += _result_checks(original, new_metrics, outcome.predictions_sha256)
    on_step("replaying the original's logged model")
    checks.append(_replay_check(original, prepared))
    return Report(run_id, outcome.run_id, checks)


def _check_reproducible(run: Any) -> None:
    """Refuse, before anything is re-executed or stored, a run innflow cannot re-execute."""
    run_id, tags = run.info.run_id, run.data.tags
    kind = tags.get("innflow.kind")
    if run.info.status != "FINISHED":
        raise NotReproducible(
            f"run {run_id} is {run.info.status}: only a FINISHED run can be reproduced"
        )
    if kind in ("train", "notebook"):
        return
    parent = tags.get("mlflow.parentRunId")
    if (
        kind is None
        and parent
        and tracking.get_run(parent).data.tags.get("innflow.kind") == ("notebook")
    ):
        raise NotReproducible(
            f"run {run_id} is part of notebook run {parent}: reproduce {parent}, which "
            "re-executes the notebook and compares every run in it"
        )
    what = f"an innflow {kind} run" if kind else "not an innflow run (no innflow.kind tag)"
    raise NotReproducible(
        f"run {run_id} cannot be reproduced: it is {what}; only training and notebook runs "
        "record the config or notebook needed to re-execute them"
    )


def _reproduce_notebook(original: Any, threads: int, on_step: Step) -> Report:
    """Execute the logged notebook again with the logged parameters, in a fresh kernel,
    and compare the two run trees.
    """
    from innflow.workflows.notebook import DATA_FILES_ARTIFACT, logged_notebook, run_notebook

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
        outcome = run_notebook(source, parameters, threads, extra_tags=same_notebook)
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
    checks += _context_checks(tags, again.data.tags)
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
        replay = _replay_check(trained, prepare(config))
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
        label = _run_label(key, run)
        again = now.get(key)
        new_metrics = again.data.metrics if again is not None else {}
        for name, value in sorted(run.data.metrics.items()):
            if _timing(name):
                continue
            new = new_metrics.get(name)
            checks.append(
                Check(
                    f"metric {name}{label}",
                    _metric_text(value),
                    "(missing)" if new is None else _metric_text(new),
                    decisive=True,
                    kind="metric",
                    subject=key or "notebook",
                )
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


def _context_checks(tags: dict[str, str], now: dict[str, str]) -> list[Check]:
    """Data, code, environment and machine then and now: reported, never decisive."""
    checks = [
        Check(label, tags.get(key, "(not recorded)"), now.get(key, ""), decisive=False)
        for key, label in CONTEXT_TAGS.items()
    ]
    return checks + [
        Check(f"lib {key.removeprefix('innflow.lib.')}", value, now.get(key, "absent"), False)
        for key, value in sorted(tags.items())
        if key.startswith("innflow.lib.")
    ]


def _result_checks(
    original: Any, new_metrics: dict[str, float], new_predictions_sha256: str | None
) -> list[Check]:
    """Every recorded metric (wall-clock durations aside) and the test-prediction hash."""
    checks = []
    for name, value in sorted(original.data.metrics.items()):
        if name.startswith("duration_"):
            continue  # wall-clock time is not a result
        again = new_metrics.get(name)
        checks.append(
            Check(
                f"metric {name}",
                _metric_text(value),
                "(missing)" if again is None else _metric_text(again),
                decisive=True,
                kind="metric",
                subject="training",
            )
        )
    recorded_sha = original.data.tags.get("innflow.predictions_sha256", "(not recorded)")
    now_sha = new_predictions_sha256 or "(not recorded)"
    checks.append(
        Check("test predictions sha256", recorded_sha, now_sha, True, "predictions", "model")
    )
    return checks


def _replay_check(trained: Any, prepared: Prepared) -> Check:
    """The training run's logged model, loaded through MLflow, on today's test set."""
    model = tracking.load_pyfunc(tracking.model_uri(trained))
    replayed = model.predict(prepared.features("test"))
    replay_sha = provenance.predictions_sha256(_positive_class(replayed))
    recorded_sha = trained.data.tags.get("innflow.predictions_sha256", "(not recorded)")
    return Check(
        "logged model predictions sha256", recorded_sha, replay_sha, True, "predictions", "model"
    )


def _positive_class(predictions: object) -> np.ndarray:
    array = np.asarray(predictions, dtype="float64")
    return array[:, 1] if array.ndim == 2 else array
