"""The kernel of `innflow notebook run`: every MLflow call a notebook makes lands in the
notebook run's tree, and the data files it reads are noted.

`python -m innflow.tracking.kernel -f CONNECTION_FILE` installs what is below, then starts
ipykernel exactly as `ipykernel_launcher` does. What a notebook sees:

- the notebook run is the active run from the first cell, so plain ``mlflow.log_*`` calls
  and ``autolog()`` (sklearn, LightGBM, XGBoost...) log into it;
- a top-level ``mlflow.start_run(run_name=...)`` starts a child run of the notebook run, in
  its experiment, with the user's name (runs nested below it are MLflow's usual business);
- ``mlflow.end_run()`` (and leaving a ``with mlflow.start_run()`` block) ends the user's
  runs, never the notebook run: innflow ends it after the last cell, FINISHED or FAILED;
- ``mlflow.set_experiment(...)`` and ``mlflow.set_tracking_uri(...)`` are recorded as
  requests (tags ``innflow.notebook.requested_experiment`` and
  ``innflow.notebook.requested_tracking_uri`` on the notebook run) and change nothing:
  ``set_experiment`` returns the notebook run's experiment. A notebook run is one tree in
  the store and experiment that `innflow notebook run` chose.

Why patch MLflow's fluent functions (in this kernel process only, here only): MLflow has
no public way to root every run of a process under a given run. Resuming the run through
``MLFLOW_RUN_ID`` fails on the quickstart (``set_experiment`` then ``start_run`` refuses to
resume a run of another experiment), and autolog's managed run ends the resumed run, after
which the next ``log_metric`` opens a stray top-level run.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from innflow.redaction import uri_credentials
from innflow.tracking.notebooks import NOTEBOOK_RUN_ENV

REQUESTED_EXPERIMENT_TAG = "innflow.notebook.requested_experiment"
REQUESTED_TRACKING_URI_TAG = "innflow.notebook.requested_tracking_uri"


def contain(notebook_run_id: str) -> str:
    """Make ``notebook_run_id`` the root of every run this process starts (see above);
    return its experiment's artifact location.
    """
    import mlflow
    from mlflow.tracking import fluent

    client = mlflow.MlflowClient()
    experiment = client.get_experiment(client.get_run(notebook_run_id).info.experiment_id)
    real_start, real_end = fluent.start_run, fluent.end_run
    fluent.set_experiment(experiment_id=experiment.experiment_id)

    def stack() -> list[Any]:
        return fluent._active_run_stack.get()

    def root_on_top() -> bool:
        return bool(stack()) and stack()[-1].info.run_id == notebook_run_id

    def activate_root() -> None:
        # The active-run stack is per thread: a thread's first call finds it empty.
        if not stack():
            real_start(run_id=notebook_run_id)

    @functools.wraps(real_start)
    def start_run(
        run_id: str | None = None,
        experiment_id: str | None = None,
        run_name: str | None = None,
        nested: bool = False,
        parent_run_id: str | None = None,
        tags: dict[str, Any] | None = None,
        description: str | None = None,
        log_system_metrics: bool | None = None,
    ) -> Any:
        activate_root()
        if run_id == notebook_run_id:  # resumed by id: it is already active
            return next(r for r in stack() if r.info.run_id == notebook_run_id)
        if root_on_top():
            nested = True
        return real_start(
            run_id=run_id,
            experiment_id=None if run_id else experiment.experiment_id,
            run_name=run_name,
            nested=nested,
            parent_run_id=parent_run_id,
            tags=tags,
            description=description,
            log_system_metrics=log_system_metrics,
        )

    @functools.wraps(real_end)
    def end_run(status: str = "FINISHED") -> None:
        if not root_on_top():
            real_end(status)

    @functools.wraps(fluent.set_experiment)
    def set_experiment(
        experiment_name: str | None = None, experiment_id: str | None = None, **_: Any
    ) -> Any:
        requested = experiment_name if experiment_name is not None else experiment_id
        if requested is not None and str(requested) not in (
            experiment.name,
            experiment.experiment_id,
        ):
            _record_request(client, notebook_run_id, REQUESTED_EXPERIMENT_TAG, str(requested))
        return experiment

    def set_tracking_uri(uri: str | Path) -> None:
        if str(uri) != mlflow.get_tracking_uri():
            masked = uri_credentials(str(uri))  # readable by everyone who reads the run
            _record_request(client, notebook_run_id, REQUESTED_TRACKING_URI_TAG, masked)

    replaced = {"start_run": start_run, "end_run": end_run, "set_experiment": set_experiment}
    for module in (fluent, mlflow):
        for name, function in replaced.items():
            setattr(module, name, function)
    for module in (mlflow, mlflow.tracking):
        setattr(module, "set_tracking_uri", set_tracking_uri)  # noqa: B010
    activate_root()
    return str(experiment.artifact_location)


def _local_path(uri: str) -> str | None:
    """The local folder of an artifact URI (None for a remote store)."""
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme in ("", "file") else None


def _record_request(client: Any, run_id: str, key: str, value: str) -> None:
    """Add ``value`` to the comma-separated tag ``key`` (each request once, in order)."""
    current = client.get_run(run_id).data.tags.get(key, "")
    values = [v for v in current.split(", ") if v]
    if value not in values:
        client.set_tag(run_id, key, ", ".join([*values, value]))


def main() -> None:
    """Install the data-read watch and the run containment, then run ipykernel."""
    from innflow.reproducibility.lineage import READS_ENV, watch_reads

    if sys.path and (sys.path[0] == "" or Path(sys.path[0]) == Path.cwd()):
        del sys.path[0]  # as ipykernel_launcher: IPython puts the cwd back itself
    artifacts = None
    if os.environ.get(NOTEBOOK_RUN_ENV):
        artifacts = _local_path(contain(os.environ[NOTEBOOK_RUN_ENV]))
    if os.environ.get(READS_ENV):  # models logged or loaded in the notebook are not data
        watch_reads(Path(os.environ[READS_ENV]), skipped=(artifacts,) if artifacts else ())
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
