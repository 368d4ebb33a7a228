"""The logged model: how the Pipeline is written (format, signature, trusted types,
requirements) and read back for pyfunc clients and for serving.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from innflow.errors import RunNotFoundError, TrackingError
from innflow.tracking.registry import _client, _registry_errors
from innflow.tracking.runs import run_tree, schema_sample
from innflow.tracking.store import _known_mlflow_noise, _reason

if TYPE_CHECKING:
    from mlflow.entities import Run

MODEL_NAME = "model"
# Types the skops-serialized pipeline may contain; anything else is refused at log time.
TRUSTED_PREFIXES = (
    "sklearn.", "numpy.", "scipy.", "lightgbm.", "xgboost.", "innflow.",
    "builtins.", "collections.", "functools.partial",
)  # fmt: skip


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
    environment: dict[str, str] | None = None,
) -> str:
    """Log the whole Pipeline (raw columns in, a probability or a number out); return the
    model URI.

    Format: skops (MLflow's safe default) with an explicit, checked trusted-types list,
    because LightGBM/XGBoost and innflow's own transformer are not on skops' default list.
    A classifier's pyfunc calls ``predict_proba`` so MLflow clients get probabilities, not
    labels; a regressor's calls ``predict``.
    Requirements are given explicitly: inference would spawn a subprocess and take seconds.
    The innflow package rides along as ``code_paths`` so the model loads without innflow
    installed, with the exact feature code it was trained with. ``environment`` (file name
    -> text: the uv lock) is added at the model's root, where MLflow's uv environment
    manager looks for it: MLflow copies uv files only for pyfunc models, not sklearn's.
    """
    import mlflow
    from mlflow.models import infer_signature

    from innflow.modeling.models import is_regressor

    input_example = inputs.head(5)
    sample = schema_sample(inputs, nullable=nullable)
    with _known_mlflow_noise():
        method = "predict" if is_regressor(pipeline) else "predict_proba"
        signature = infer_signature(sample, getattr(pipeline, method)(sample))
        info = mlflow.sklearn.log_model(
            pipeline,
            name=MODEL_NAME,
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements,
            pyfunc_predict_fn=method,
            serialization_format="skops",
            skops_trusted_types=trusted_types(pipeline),
            code_paths=[str(code_dir)],
            metadata=metadata,
        )
    if environment:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="innflow-model-env-") as tmp:
            for name, text in environment.items():
                (Path(tmp) / name).write_text(text)
            mlflow.MlflowClient().log_model_artifacts(info.model_id, tmp)
    return info.model_uri


@dataclass(frozen=True)
class LoggedModelRef:
    """One model logged in a run tree: what a user picks from when registering."""

    model_id: str
    name: str
    run_id: str
    run_name: str
    uri: str  # models:/m-...: names this model for good
    flavors: tuple[str, ...]
    created: int  # ms since the epoch

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "model_id": self.model_id, "name": self.name, "run_id": self.run_id,
            "run_name": self.run_name, "uri": self.uri, "flavors": list(self.flavors),
        }  # fmt: skip


def logged_models_of(run_id: str) -> list[LoggedModelRef]:
    """Every MLflow model logged in ``run_id`` or a run nested under it, oldest first.

    Raises RunNotFoundError for an unknown run.
    """
    import mlflow

    found = []
    with _registry_errors(f"cannot list the models of run {run_id}"):
        for run in run_tree(run_id):
            models = mlflow.search_logged_models(
                experiment_ids=[run.info.experiment_id],
                filter_string=f"source_run_id = '{run.info.run_id}'",
                output_format="list",
            )
            for model in models:
                flavors = _flavors(model)
                found.append(
                    LoggedModelRef(
                        model.model_id,
                        model.name,
                        run.info.run_id,
                        run.info.run_name or "",
                        f"models:/{model.model_id}",
                        flavors,
                        int(model.creation_timestamp or 0),
                    )
                )
    return sorted(found, key=lambda m: (m.created, m.model_id))


def _flavors(model: Any) -> tuple[str, ...]:
    """The flavors an MLflow LoggedModel was saved with (from its MLmodel file)."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    try:
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{model.artifact_location.rstrip('/')}/MLmodel"
        )
    except (MlflowException, OSError):  # no MLmodel (a model still being logged): no flavors
        return ()
    return tuple(sorted(Model.load(path).flavors))


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


def load_general_for_serving(uri: str) -> tuple[Any, Any]:
    """A model innflow did not train, as MLflow's pyfunc (loaded once, what MLflow's own
    server calls), and its input example, from one download of the model.
    """
    import mlflow
    from mlflow.models import Model

    def both(model_uri: str) -> tuple[Any, Any]:
        local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri)
        with _known_mlflow_noise():
            pyfunc = mlflow.pyfunc.load_model(local)
            try:
                example = Model.load(local).load_input_example(local)
            except Exception:  # an unreadable example: the smoke test then says it has none
                example = None
        return pyfunc, example

    return _load(both, uri)


def _load(loader: Any, uri: str) -> Any:
    try:
        return loader(uri)
    except Exception as e:  # MLflow raises several unrelated types for a missing model
        raise RunNotFoundError(f"could not load model {uri}: {_reason(e)}") from e


def is_registry_uri(uri: str) -> bool:
    """``models:/name@alias`` or ``models:/name/3``: what it means is the registry's to say
    (unlike a run or logged-model URI, ``models:/m-...``, which names one model for good).
    """
    return uri.startswith("models:/") and not uri.startswith("models:/m-")


def describe_model(uri: str) -> dict[str, Any]:
    """Name, version, alias and run of a model URI (``models:/name@alias``,
    ``models:/name/3``, ``runs:/...`` or ``models:/m-...``), plus its innflow metadata.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.models import get_model_info

    described: dict[str, Any] = {"uri": uri, "name": None, "version": None, "alias": None}
    with _registry_errors(f"cannot resolve model {uri}"):
        if is_registry_uri(uri):
            reference = uri.removeprefix("models:/")
            if "@" in reference:
                name, alias = reference.split("@", 1)
                try:
                    version = _client().get_model_version_by_alias(name, alias)
                except MlflowException as e:
                    raise RunNotFoundError(_no_such_alias(uri, name, alias)) from e
                described.update(name=name, alias=alias)
            elif "/" in reference:
                name, number = reference.rsplit("/", 1)
                try:
                    version = _client().get_model_version(name, number)
                except MlflowException as e:
                    raise RunNotFoundError(_no_such_version(uri, name, number)) from e
                described["name"] = name
            else:
                raise RunNotFoundError(
                    f"{uri} names no version: use models:/{reference}@ALIAS or "
                    f"models:/{reference}/VERSION"
                )
            described.update(version=str(version.version), run_id=version.run_id)
            uri = f"models:/{described['name']}/{described['version']}"
        info = get_model_info(uri)
    described["resolved_uri"] = uri
    described["signature"] = info.signature.to_dict() if info.signature else None
    described["metadata"] = info.metadata or {}
    described.setdefault("run_id", info.run_id)
    return described


def _no_such_alias(uri: str, name: str, alias: str) -> str:
    """Why ``uri`` resolves to nothing, with the aliases that do exist and how to set one."""
    aliases = _aliases(name)
    if aliases is None:
        return _no_such_model(uri, name)
    have = ", ".join(f"@{a} -> version {v}" for a, v in sorted(aliases.items())) or "none"
    return (
        f"{uri}: model {name!r} has no alias {alias!r} (its aliases: {have}). Serve one "
        f"of those with --model-uri models:/{name}@ALIAS, or set it: innflow promote VERSION "
        f"--to {alias} --approved-by NAME --reason WHY (`make run` leaves a model on staging)"
    )


def _no_such_version(uri: str, name: str, number: str) -> str:
    """Why ``models:/name/N`` resolves to nothing, with the versions that exist."""
    if _aliases(name) is None:
        return _no_such_model(uri, name)
    numbers = sorted(int(v.version) for v in _client().search_model_versions(f"name = '{name}'"))
    have = ", ".join(map(str, numbers)) or "none"
    return f"{uri}: model {name!r} has no version {number} (its versions: {have})"


def _no_such_model(uri: str, name: str) -> str:
    names = sorted(m.name for m in _client().search_registered_models())
    return f"{uri}: no registered model {name!r} (registered: {', '.join(names) or 'none'})"


def _aliases(name: str) -> dict[str, str] | None:
    """A registered model's aliases (alias -> version), None when there is no such model."""
    from mlflow.exceptions import MlflowException

    try:
        return dict(_client().get_registered_model(name).aliases)
    except MlflowException:
        return None
