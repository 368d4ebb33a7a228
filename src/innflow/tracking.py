"""The one place that talks to MLflow: which store, what a training run records, how runs
and models are read back. Each function encodes a decision (tags, formats, refusals);
callers never import mlflow themselves.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from innflow.errors import RunNotFoundError, TrackingError

if TYPE_CHECKING:
    from mlflow.entities import Run

DEFAULT_STORE = "sqlite:///mlflow.db"
MODEL_NAME = "model"
CONFIG_ARTIFACT = "config/resolved.yaml"
# Types the skops-serialized pipeline may contain; anything else is refused at log time.
TRUSTED_PREFIXES = (
    "sklearn.", "numpy.", "scipy.", "lightgbm.", "xgboost.", "innflow.",
    "builtins.", "collections.", "functools.partial",
)  # fmt: skip


def resolve_store(configured: str | None) -> str:
    """Config's tracking URI, else MLFLOW_TRACKING_URI, else the embedded SQLite store.

    The deprecated file store is refused: it cannot hold a model registry and is not safe
    for concurrent runs.
    """
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_STORE
    if uri.startswith("file:") or "://" not in uri:
        raise TrackingError(
            f"tracking store {uri!r} is a file store, which innflow does not use; "
            f"use {DEFAULT_STORE} or an http(s):// tracking server"
        )
    return uri


def connect(configured: str | None) -> str:
    """Point MLflow at the resolved store and return its URI."""
    import mlflow

    uri = resolve_store(configured)
    # MLflow's defaults retry an unreachable server for minutes; a command should fail in
    # seconds with a clear message. Explicit settings in the environment still win.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    mlflow.set_tracking_uri(uri)
    return uri


@contextmanager
def run(
    experiment: str, run_name: str | None, tags: dict[str, str], parent_run_id: str | None = None
) -> Iterator[Run]:
    """An MLflow run that always ends: FINISHED, or KILLED on Ctrl-C, FAILED on any error
    (with the error in ``innflow.error``). Never left RUNNING.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        mlflow.set_experiment(experiment)
        active = mlflow.start_run(
            run_name=run_name,
            tags=tags,
            nested=parent_run_id is not None,
            parent_run_id=parent_run_id,
        )
    except MlflowException as e:
        raise TrackingError(f"tracking store refused the run: {_reason(e)}") from e
    try:
        yield active
    except BaseException as e:
        status = "KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED"
        try:
            mlflow.set_tag("innflow.error", f"{type(e).__name__}: {e}"[:5000])
        finally:
            mlflow.end_run(status=status)
        raise
    mlflow.end_run(status="FINISHED")


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


@contextmanager
def _known_mlflow_noise() -> Iterator[None]:
    """Silence MLflow messages that are expected here and would only alarm users."""
    env_logger = logging.getLogger("mlflow.utils.environment")
    level = env_logger.level
    with warnings.catch_warnings():
        # MLflow registers its local-file source twice and warns about its own ambiguity.
        warnings.filterwarnings("ignore", message=".*can be interpreted in multiple ways.*")
        # Integer columns stay integers on purpose: a float where a count belongs is bad input.
        warnings.filterwarnings("ignore", message=".*Inferred schema contains integer column.*")
        # uv venvs have no pip; MLflow warns that conda.yaml lists it unversioned.
        env_logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            env_logger.setLevel(level)


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


def trusted_types(pipeline: Any) -> list[str]:
    """The non-default types skops must trust to load this pipeline, checked against our
    allow-list so a model carrying an unexpected type is refused rather than trusted.
    """
    import skops.io

    found = skops.io.get_untrusted_types(data=skops.io.dumps(pipeline))
    unexpected = [t for t in found if not t.startswith(TRUSTED_PREFIXES)]
    if unexpected:
        raise TrackingError(f"model holds types innflow does not trust: {', '.join(unexpected)}")
    return sorted(found)


def log_model(
    pipeline: Any,
    inputs: pd.DataFrame,
    pip_requirements: list[str],
    metadata: dict[str, Any],
    code_dir: Path,
    nullable: tuple[str, ...] = (),
) -> str:
    """Log the whole Pipeline (raw columns in, probability out); return the model URI.

    Format: skops (MLflow's safe default) with an explicit, checked trusted-types list,
    because LightGBM/XGBoost and innflow's own transformer are not on skops' default list.
    The pyfunc calls ``predict_proba`` so MLflow clients get probabilities, not labels.
    Requirements are given explicitly: inference would spawn a subprocess and take seconds.
    The innflow package rides along as ``code_paths`` so the model loads without innflow
    installed, with the exact feature code it was trained with.
    """
    import mlflow
    from mlflow.models import infer_signature

    input_example = inputs.head(5)
    sample = schema_sample(inputs, nullable=nullable)
    with _known_mlflow_noise():
        signature = infer_signature(sample, pipeline.predict_proba(sample))
        info = mlflow.sklearn.log_model(
            pipeline,
            name=MODEL_NAME,
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements,
            pyfunc_predict_fn="predict_proba",
            serialization_format="skops",
            skops_trusted_types=trusted_types(pipeline),
            code_paths=[str(code_dir)],
            metadata=metadata,
        )
    return info.model_uri


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
        raise RunNotFoundError(f"no run with id {run_id!r} in {mlflow.get_tracking_uri()}") from e


def read_config_text(run_id: str) -> str:
    """The resolved config a run was trained with."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.artifacts.load_text(f"runs:/{run_id}/{CONFIG_ARTIFACT}")
    except (MlflowException, OSError) as e:
        raise RunNotFoundError(f"run {run_id} has no {CONFIG_ARTIFACT}: not an innflow run") from e


def model_uri(run: Run) -> str:
    """URI of the model a training run logged."""
    uri = run.data.tags.get("innflow.model_uri")
    if not uri:
        raise RunNotFoundError(f"run {run.info.run_id} logged no innflow model")
    return uri


def load_pyfunc(uri: str) -> Any:
    """Load a logged model as MLflow's generic pyfunc (what MLflow clients get)."""
    import mlflow

    return _load(mlflow.pyfunc.load_model, uri)


def load_for_serving(uri: str) -> tuple[Any, pd.DataFrame | None]:
    """The logged Pipeline and its input example, from one download of the model."""
    import mlflow
    from mlflow.models import Model

    def both(model_uri: str) -> tuple[Any, pd.DataFrame | None]:
        local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri)
        example = Model.load(local).load_input_example(local)
        return mlflow.sklearn.load_model(local), example if isinstance(
            example, pd.DataFrame
        ) else None

    return _load(both, uri)


def _load(loader: Any, uri: str) -> Any:
    try:
        return loader(uri)
    except Exception as e:  # MLflow raises several unrelated types for a missing model
        raise RunNotFoundError(f"could not load model {uri}: {_reason(e)}") from e


# --- Model registry -------------------------------------------------------------------
AUDIT_EXPERIMENT = "innflow-registry-audit"


def _client() -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient()


@contextmanager
def _registry_errors(what: str) -> Iterator[None]:
    """Registry failures as one clear line; nothing half-done is left behind by callers."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as e:
        code = getattr(e, "error_code", "")
        if code == "RESOURCE_DOES_NOT_EXIST":
            raise RunNotFoundError(f"{what}: {e.message}") from e
        raise TrackingError(f"{what}: {_reason(e)}") from e


def _reason(error: Any) -> str:
    """An MLflow error in one line; an unreachable server said plainly."""
    message = str(getattr(error, "message", error))
    if "Max retries exceeded" in message or "Connection refused" in message:
        return f"tracking server {mlflow_uri()} cannot be reached"
    return message.strip().splitlines()[0] if message.strip() else type(error).__name__


def mlflow_uri() -> str:
    """The tracking URI in use."""
    import mlflow

    return mlflow.get_tracking_uri()


def register_version(
    name: str, run_id: str, source: str, tags: dict[str, str], description: str
) -> tuple[Any, bool]:
    """The model version for ``run_id``: the existing one if the run was registered
    before (registering twice never makes a second version), else a new one.
    """
    from mlflow.exceptions import MlflowException

    client = _client()
    with _registry_errors(f"cannot register run {run_id} as {name!r}"):
        try:
            client.create_registered_model(
                name, description="Hotel booking cancellation model (innflow)"
            )
        except MlflowException as e:
            if getattr(e, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
                raise
        for version in client.search_model_versions(f"name = '{name}'"):
            if version.run_id == run_id or version.tags.get("innflow.run_id") == run_id:
                return version, False
        version = client.create_model_version(
            name, source, run_id=run_id, tags={**tags, "innflow.run_id": run_id},
            description=description,
        )  # fmt: skip
    return version, True


def model_version(name: str, version: str) -> Any:
    """One version, or a one-line error naming what does not exist."""
    with _registry_errors(f"no version {version} of model {name!r}"):
        return _client().get_model_version(name, str(version))


def alias_version(name: str, alias: str) -> Any | None:
    """The version an alias points at, or None when the alias (or model) is not set."""
    from mlflow.exceptions import MlflowException

    try:
        return _client().get_model_version_by_alias(name, alias)
    except MlflowException as e:
        if getattr(e, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise TrackingError(f"cannot read alias {alias!r} of {name!r}: {e.message}") from e


def set_alias(name: str, alias: str, version: str) -> None:
    """Point ``alias`` at ``version`` (aliases, never the deprecated stages)."""
    with _registry_errors(f"cannot set alias {alias!r} of {name!r}"):
        _client().set_registered_model_alias(name, alias, str(version))


def delete_alias(name: str, alias: str) -> None:
    """Remove an alias (used only to undo a move that could not be recorded)."""
    with _registry_errors(f"cannot remove alias {alias!r} of {name!r}"):
        _client().delete_registered_model_alias(name, alias)


def set_version_tags(name: str, version: str, tags: dict[str, str]) -> None:
    """Tag a model version (gate results, approvals)."""
    client = _client()
    with _registry_errors(f"cannot tag version {version} of {name!r}"):
        for key, value in tags.items():
            client.set_model_version_tag(name, str(version), key, value)


def versions(name: str) -> list[Any]:
    """All versions of a registered model, newest first."""
    with _registry_errors(f"cannot list the versions of {name!r}"):
        _client().get_registered_model(name)
        found = _client().search_model_versions(f"name = '{name}'")
    return sorted(found, key=lambda v: int(v.version), reverse=True)


def log_run_text(run_id: str, text: str, artifact_file: str) -> None:
    """Attach a text artifact to a finished run (a gate report on the candidate's run)."""
    with _registry_errors(f"cannot write {artifact_file} to run {run_id}"):
        _client().log_text(run_id, text, artifact_file)


def record_move(name: str, move: dict[str, str]) -> None:
    """Append an alias move to the audit trail: a finished run in a dedicated experiment
    of the same tracking store, so everyone on the server sees the same history
    (MLflow keeps none: mlflow#2169).
    """
    import mlflow

    client = _client()
    with _registry_errors("cannot record the alias move"):
        found = mlflow.get_experiment_by_name(AUDIT_EXPERIMENT)
        experiment = found.experiment_id if found else client.create_experiment(AUDIT_EXPERIMENT)
        title = f"{move['alias']}: v{move['from_version']} -> v{move['to_version']}"
        tags = {"innflow.model_name": name, **{f"innflow.move.{k}": v for k, v in move.items()}}
        entry = client.create_run(experiment, run_name=title, tags=tags)
        client.set_terminated(entry.info.run_id, "FINISHED")


def moves(name: str) -> list[dict[str, str]]:
    """Every recorded alias move of a model, oldest first."""
    import mlflow

    found = mlflow.get_experiment_by_name(AUDIT_EXPERIMENT)
    if found is None:
        return []
    runs = mlflow.search_runs(
        [found.experiment_id], filter_string=f"tags.`innflow.model_name` = '{name}'",
        order_by=["attributes.start_time ASC"], output_format="list",
    )  # fmt: skip
    prefix = "innflow.move."
    found_moves = [
        {k.removeprefix(prefix): v for k, v in r.data.tags.items() if k.startswith(prefix)}
        for r in runs
    ]
    return sorted(found_moves, key=lambda m: m.get("at", ""))


# --- Serving --------------------------------------------------------------------------
def describe_model(uri: str) -> dict[str, Any]:
    """Name, version, alias and run of a model URI (``models:/name@alias``,
    ``models:/name/3``, ``runs:/...`` or ``models:/m-...``), plus its innflow metadata.
    """
    from mlflow.models import get_model_info

    described: dict[str, Any] = {"uri": uri, "name": None, "version": None, "alias": None}
    with _registry_errors(f"cannot resolve model {uri}"):
        if uri.startswith("models:/") and not uri.startswith("models:/m-"):
            reference = uri.removeprefix("models:/")
            if "@" in reference:
                name, alias = reference.split("@", 1)
                version = _client().get_model_version_by_alias(name, alias)
                described.update(name=name, alias=alias)
            else:
                name, number = reference.rsplit("/", 1)
                version = _client().get_model_version(name, number)
                described["name"] = name
            described.update(version=str(version.version), run_id=version.run_id)
            uri = f"models:/{described['name']}/{described['version']}"
        info = get_model_info(uri)
    described["resolved_uri"] = uri
    described["signature"] = info.signature.to_dict() if info.signature else None
    described["metadata"] = info.metadata or {}
    described.setdefault("run_id", info.run_id)
    return described
