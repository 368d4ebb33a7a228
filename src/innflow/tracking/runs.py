"""What a run records and how runs are read back: config, params, datasets, results,
child runs, queries. Runs always end (FINISHED, FAILED or KILLED), never stay RUNNING.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from innflow.errors import RunNotFoundError, TrackingError
from innflow.tracking.orphans import end_orphans, process_tags
from innflow.tracking.store import _known_mlflow_noise, _reason

if TYPE_CHECKING:
    from mlflow.entities import Run

CONFIG_ARTIFACT = "config/resolved.yaml"


@contextmanager
def run(
    experiment: str, run_name: str | None, tags: dict[str, str], parent_run_id: str | None = None
) -> Iterator[Run]:
    """An MLflow run that always ends: FINISHED, or KILLED on Ctrl-C, FAILED on any error
    (with the error in ``innflow.error``). Never left RUNNING.

    The run names its host and process (tracking.orphans); earlier runs of this host in
    the experiment whose process is gone, left RUNNING because the store could not be
    reached when they failed, are marked KILLED first. Opening the run is also where the
    store checks the user may write here: callers open it before any expensive work.
    """
    import mlflow
    from mlflow.exceptions import MlflowException
    from requests.exceptions import RequestException

    store_errors = (MlflowException, RequestException)
    try:
        if parent_run_id is not None:
            resume_notebook_run(parent_run_id)
        # The experiment id is passed on explicitly: when two processes create the same
        # experiment at once, MLflow's set_experiment returns it to the loser of the race
        # without making it active, and that process's run would land in "Default".
        found = mlflow.set_experiment(experiment)
        active = mlflow.start_run(
            experiment_id=found.experiment_id,
            run_name=run_name,
            tags={**tags, **process_tags()},
            nested=parent_run_id is not None,
            parent_run_id=parent_run_id,
        )
    except store_errors as e:
        raise TrackingError(f"tracking store refused the run: {_reason(e)}") from e
    run_id = active.info.run_id
    try:
        end_orphans([found.experiment_id], ended_by=f"found by run {run_id}")
        yield active
    except BaseException as e:
        status = "KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED"
        try:
            try:
                mlflow.set_tag("innflow.error", f"{type(e).__name__}: {e}"[:5000])
            finally:
                mlflow.end_run(status=status)  # forgets the run locally even if this fails
        except store_errors as unrecorded:
            # The store itself failed (a tracking server that died): say so in one line;
            # the run stays RUNNING on the server because nothing can reach it.
            raise TrackingError(
                f"run {run_id} failed and could not be marked {status}: {_reason(unrecorded)}"
            ) from e
        if isinstance(e, store_errors):
            raise TrackingError(f"run {run_id} failed: {_reason(e)}") from e
        raise
    try:
        mlflow.end_run(status="FINISHED")
    except store_errors as e:
        raise TrackingError(f"run {run_id} could not be marked FINISHED: {_reason(e)}") from e


def log_setup(
    config_yaml: str, params: dict[str, Any], tags: dict[str, str], artifacts: dict[str, str]
) -> None:
    """Record what is known before fitting: config, params, provenance, environment files."""
    import mlflow

    mlflow.log_params({k: _param_value(v) for k, v in params.items()})
    mlflow.set_tags(tags)
    mlflow.log_text(config_yaml, CONFIG_ARTIFACT)
    for artifact_path, text in artifacts.items():
        mlflow.log_text(text, artifact_path)


def _param_value(value: Any) -> str:
    text = "null" if value is None else str(value)
    return text if len(text) <= 6000 else text[:5997] + "..."


def schema_sample(
    frame: pd.DataFrame, rows: int = 100, nullable: tuple[str, ...] = ()
) -> pd.DataFrame:
    """The first rows, a row with a null for every column that has nulls, and one row with
    every ``nullable`` column null (a column may be null in the schema though not here).

    MLflow infers a schema by visiting every value of every object column (12 s on the
    training frames); on validated data the dtypes decide, so a small sample that still
    shows which columns may be null gives the same schema.
    """
    observed = [
        int(frame[c].isna().to_numpy().argmax()) for c in frame.columns if frame[c].isna().any()
    ]
    sample = frame.iloc[sorted(set(range(min(rows, len(frame)))) | set(observed))]
    if nullable:
        blank = sample.head(1).copy()
        blank[list(nullable)] = None
        sample = pd.concat([sample, blank])
    return sample


def log_datasets(parts: dict[str, pd.DataFrame], source: str, target: str) -> dict[str, str]:
    """Log train/validation/test as MLflow dataset inputs; return their digests."""
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.models import infer_signature

    datasets: list[Any] = []
    contexts: list[str | None] = []
    with _known_mlflow_noise():
        for name, frame in parts.items():
            dataset = from_pandas(frame, source=source, targets=target, name=name)
            # `schema` is a cached property: fill it from the sample instead of all rows.
            dataset.__dict__["schema"] = infer_signature(schema_sample(frame)).inputs
            datasets.append(dataset)
            contexts.append("training" if name == "train" else name)
    mlflow.log_inputs(datasets=datasets, contexts=contexts, tags_list=[None] * len(datasets))
    return {ds.name: ds.digest for ds in datasets}


def log_results(
    metrics: dict[str, float],
    tags: dict[str, str],
    artifact_dir: Path | None = None,
    tables: dict[str, pd.DataFrame] | None = None,
) -> None:
    """Metrics in one batch call, result tags, every file under ``artifact_dir``, and
    tables as MLflow table artifacts (viewable and comparable in the UI).
    """
    import mlflow

    mlflow.log_metrics(metrics)
    mlflow.set_tags(tags)
    if artifact_dir is not None:
        mlflow.log_artifacts(str(artifact_dir))
    for artifact_file, frame in (tables or {}).items():
        mlflow.log_table(data=frame, artifact_file=artifact_file)


def log_child_run(
    parent: Run,
    run_name: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
) -> str:
    """A finished child run under ``parent`` in three store calls (create, one batch,
    terminate): what a tuning trial costs in tracking.
    """
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    child = client.create_run(
        parent.info.experiment_id,
        run_name=run_name,
        tags={"mlflow.parentRunId": parent.info.run_id, **tags},
    )
    now = int(time.time() * 1000)
    client.log_batch(
        child.info.run_id,
        metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
        params=[Param(k, _param_value(v)) for k, v in params.items()],
    )
    client.set_terminated(child.info.run_id, "FINISHED")
    return child.info.run_id


def log_params(params: dict[str, Any]) -> None:
    """Params on the active run, in one batch."""
    import mlflow

    mlflow.log_params({k: _param_value(v) for k, v in params.items()})


def top_runs(experiment: str, metric: str, limit: int, ascending: bool = False) -> list[Run]:
    """The best finished training runs of an experiment by ``metric``, in one query."""
    import mlflow

    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        raise RunNotFoundError(f"no experiment named {experiment!r} in {mlflow.get_tracking_uri()}")
    order = "ASC" if ascending else "DESC"
    return list(
        mlflow.search_runs(
            [found.experiment_id],
            filter_string=f"tags.`innflow.kind` = 'train' and attributes.status = 'FINISHED' "
            f"and metrics.`{metric}` > -1e308",
            order_by=[f"metrics.`{metric}` {order}"],
            max_results=limit,
            output_format="list",
        )
    )


def find_finished_run(experiment: str, tags: dict[str, str]) -> Run | None:
    """The newest finished training run whose tags equal all of ``tags``, if any."""
    import mlflow

    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        return None
    conditions = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    runs = mlflow.search_runs(
        [found.experiment_id],
        filter_string=f"attributes.status = 'FINISHED' and {conditions}",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return runs[0] if runs else None


def download_artifact(run_id: str, path: str, destination: Path) -> Path | None:
    """A run's artifact as a local file, or None when the run has no such artifact."""
    import mlflow
    from mlflow.exceptions import MlflowException

    destination.mkdir(parents=True, exist_ok=True)
    try:
        return Path(
            mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=path, dst_path=str(destination)
            )
        )
    except (MlflowException, OSError):
        return None


def get_run(run_id: str) -> Run:
    """Fetch a run, or a one-line RunNotFoundError."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.get_run(run_id)
    except MlflowException as e:
        missing = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
        if getattr(e, "error_code", "") not in missing:
            raise TrackingError(f"cannot read run {run_id}: {_reason(e)}") from e
        raise RunNotFoundError(f"no run with id {run_id!r} in {mlflow.get_tracking_uri()}") from e


def read_config_text(run_id: str) -> str:
    """The resolved config a run was trained with."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.artifacts.load_text(f"runs:/{run_id}/{CONFIG_ARTIFACT}")
    except (MlflowException, OSError) as e:
        raise RunNotFoundError(f"run {run_id} has no {CONFIG_ARTIFACT}: not an innflow run") from e


def runs_of_kind(kind: str, limit: int = 200) -> list[dict[str, Any]]:
    """The newest finished innflow runs of one kind (``innflow.kind`` tag) across all
    experiments, as plain data: what dashboards and reports read.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        runs = mlflow.search_runs(
            search_all_experiments=True,
            filter_string=f"tags.`innflow.kind` = '{kind}' and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"],
            max_results=limit,
            output_format="list",
        )
    except MlflowException as e:
        raise TrackingError(f"cannot search {kind} runs: {_reason(e)}") from e
    return [
        {
            "run_id": r.info.run_id,
            "experiment_id": r.info.experiment_id,
            "start_time": r.info.start_time,
            "parent_run_id": r.data.tags.get("mlflow.parentRunId"),
            "params": dict(r.data.params),
            "metrics": dict(r.data.metrics),
            "tags": {k: v for k, v in r.data.tags.items() if not k.startswith("mlflow.")},
        }
        for r in runs
    ]


def run_tree(run_id: str) -> list[Run]:
    """The run and every run nested under it, at any depth (parents before children).

    Children are looked up in every experiment: a training inside a notebook may log to
    another experiment than the notebook run.
    """
    import mlflow

    tree, frontier = [get_run(run_id)], [run_id]
    while frontier:
        parent = frontier.pop(0)
        children = mlflow.search_runs(
            search_all_experiments=True,
            filter_string=f"tags.`mlflow.parentRunId` = '{parent}'",
            order_by=["attributes.start_time ASC"],
            output_format="list",
        )
        tree += children
        frontier += [c.info.run_id for c in children]
    return tree


def resume_notebook_run(parent_run_id: str) -> None:
    """Make the notebook run active before nesting under it.

    While ``MLFLOW_RUN_ID`` is still set, `mlflow.start_run` resumes that run whatever
    ``parent_run_id`` says; resuming it first (as a cell's first ``mlflow.log_*`` would)
    lets the next run nest under it.
    """
    import mlflow

    if os.environ.get("MLFLOW_RUN_ID") == parent_run_id and mlflow.active_run() is None:
        mlflow.start_run()
