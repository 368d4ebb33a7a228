"""How a notebook run and the runs its kernel opens fit together.

`innflow notebook run` opens one run and starts the kernel with `innflow.tracking.kernel`,
which makes that run the root of every run the notebook starts (see that module). The run
id reaches the kernel in ``INNFLOW_NOTEBOOK_RUN_ID``, which also makes every `innflow`
training in the kernel a child of the notebook run. Afterwards the notebook run adopts the
result of its last training (metrics, prediction hash, model) so that `reproduce` can
compare notebook runs exactly like training runs, and runs the notebook left open end.
"""

from __future__ import annotations

import os

NOTEBOOK_RUN_ENV = "INNFLOW_NOTEBOOK_RUN_ID"

# Result tags of a training run that the notebook run carries as its own.
# (Not the data tags: the notebook run fingerprints every file its kernel read itself.)
ADOPTED_TAGS = (
    "innflow.predictions_sha256", "innflow.config_sha256", "innflow.model_kind",
    "innflow.threshold",
)  # fmt: skip


def notebook_run_id() -> str | None:
    """The run of the notebook this process executes in, if any."""
    return os.environ.get(NOTEBOOK_RUN_ENV) or None


def kernel_environment(run_id: str) -> dict[str, str]:
    """Variables a notebook's kernel needs to log into (and under) run ``run_id``."""
    import mlflow

    return {"MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(), NOTEBOOK_RUN_ENV: run_id}


def end_open_runs(notebook_run_id: str, status: str) -> int:
    """End with ``status`` the runs under the notebook run that its kernel left RUNNING
    (a ``start_run()`` never ended); return how many.
    """
    from mlflow import MlflowClient

    from innflow.tracking.runs import run_tree

    client = MlflowClient()
    left = [r for r in run_tree(notebook_run_id)[1:] if r.info.status == "RUNNING"]
    for child in left:
        client.set_terminated(child.info.run_id, status)
    return len(left)


def adopt_training_result(notebook_run_id: str) -> str | None:
    """Copy the last finished training child's metrics and result tags onto the notebook
    run; return that child's id (None when the notebook trained nothing).
    """
    import mlflow
    from mlflow.entities import Metric, RunTag

    children = mlflow.search_runs(
        filter_string=f"tags.`mlflow.parentRunId` = '{notebook_run_id}' "
        "and tags.`innflow.kind` = 'train' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
        search_all_experiments=True,  # the training may use another experiment
    )
    if not children:
        return None
    child = children[0]
    stamp = child.info.end_time or 0
    mlflow.MlflowClient().log_batch(
        notebook_run_id,
        metrics=[Metric(k, v, stamp, 0) for k, v in child.data.metrics.items()],
        tags=[RunTag(k, child.data.tags[k]) for k in ADOPTED_TAGS if k in child.data.tags]
        + [RunTag("innflow.train_run_id", child.info.run_id)],
    )
    return child.info.run_id
