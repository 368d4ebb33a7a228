"""Load a registered model for serving: the side effects around the
prediction core (registry lookup, artifact download, start-up snapshots), kept out of the
app factory.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from innflow import tracking
from innflow.errors import ConfigError
from innflow.serving import core, snapshot
from innflow.serving.routing import Router, Variant

DEFAULT_MODEL_URI = "models:/hotel-booking-cancellation@production"


def load(
    model_uri: str, tracking_uri: str | None = None, compile: str = "background"
) -> core.LoadedModel:
    """Resolve ``model_uri`` in the registry and load its Pipeline (``compile``: see
    ``core.from_logged``); once its compiled predictor is verified, its start-up snapshot
    is written (serving/snapshot.py). A model innflow did not train (no
    ``innflow_input_columns`` metadata) is loaded as MLflow's pyfunc: the general path.
    """
    tracking.connect(tracking_uri)

    def keep_snapshot(model: core.LoadedModel) -> None:
        snapshot.save(model, _store_key(tracking_uri), model_uri)

    description = tracking.describe_model(model_uri)
    if not description["metadata"].get("innflow_input_columns"):  # not trained by innflow
        pyfunc, example = tracking.load_general_for_serving(description["resolved_uri"])
        return core.from_pyfunc(pyfunc, description, example)
    pipeline, example = tracking.load_for_serving(description["resolved_uri"])
    return core.from_logged(pipeline, description, example, compile, keep_snapshot)


def _store_key(tracking_uri: str | None) -> str:
    """The store snapshots are keyed by: resolved, a relative SQLite path made absolute."""
    return tracking.store_identity(tracking.resolve_store(tracking_uri))


def start(model_uri: str, tracking_uri: str | None = None) -> core.LoadedModel:
    """The model from its start-up snapshot when there is a good one (no registry, MLflow
    or scikit-learn: the caller must confirm it, see ``RegistrySource``), else ``load``.
    """
    return snapshot.load(_store_key(tracking_uri), model_uri) or load(model_uri, tracking_uri)


def confirmed(model_uri: str, tracking_uri: str | None = None) -> core.LoadedModel | None:
    """The model's snapshot if ``model_uri`` still means the version and run it was taken
    from, else None. A registry URI is asked of the registry (the pipeline is not loaded);
    run and logged-model URIs name one model for good.
    """
    model = snapshot.load(_store_key(tracking_uri), model_uri)
    if model is None:
        return None
    if tracking.is_registry_uri(model_uri):
        # A server answers its REST API (milliseconds, no MLflow import); else MLflow.
        now = tracking.current_version(_store_key(tracking_uri), model_uri)
        if now is None:
            tracking.connect(tracking_uri)
            now = tracking.model_version_of(model_uri)
        if now != (model.version, model.description.get("run_id")):
            return None
    model.origin = "registry"  # confirmed: what the registry serves under this URI now
    return model


def compile_model(model_uri: str) -> tuple[core.LoadedModel, Path | None]:
    """Build, verify and cache the compiled predictor of a model, so that services and
    `innflow score` start with it (run it where they run, e.g. when building an image);
    with the start-up snapshot written beside it (its path, None when not compiled).
    """
    model = load(model_uri, compile="build")
    written = snapshot.path_for(_store_key(None), model_uri)
    return model, written if written.exists() and model.predictor["state"] == "compiled" else None


class RegistrySource:
    """Where a running service reloads from: alias versions (cheap to poll) and a loader."""

    def __init__(self, model_name: str, routes: list[str], shadows: list[str]) -> None:
        self.model_name, self.routes, self.shadows = model_name, routes, shadows
        self._connected = False  # a service started from snapshots has not met the store yet

    def versions(self) -> dict[str, str]:
        """The version each routed or shadow alias points at now."""
        if not self._connected:
            tracking.connect(None)
            self._connected = True
        aliases = [r.partition("=")[0] for r in self.routes] + list(self.shadows)
        found = {}
        for alias in aliases:
            version = tracking.alias_version(self.model_name, alias)
            found[alias] = str(version.version) if version is not None else "none"
        return found

    def load(self) -> Router:
        """Load every variant afresh."""
        return load_router(self.model_name, self.routes, self.shadows)

    def start(self) -> Router:
        """Every variant from its snapshot where there is one (to be confirmed by a
        reload), else loaded.
        """
        return load_router(self.model_name, self.routes, self.shadows, start)


def load_router(
    model_name: str, routes: list[str], shadows: list[str], loader: Any = load
) -> Router:
    """Variants from `ALIAS=WEIGHT` routes and shadow aliases of one registered model."""
    variants = []
    for route in routes:
        alias, _, weight = route.partition("=")
        try:
            share = float(weight)
        except ValueError as e:
            raise ConfigError(f"route {route!r} must look like production=90") from e
        variants.append(Variant(alias, loader(f"models:/{model_name}@{alias}"), share))
    variants += [
        Variant(alias, loader(f"models:/{model_name}@{alias}"), 0.0, shadow=True)
        for alias in shadows
    ]
    return Router(variants)


WORKER_ENVIRONMENT = "INNFLOW_SERVE"  # ServiceOptions as JSON, for `--workers` processes


@dataclass(frozen=True)
class ServiceOptions:
    """What `innflow serve` serves and how; handed to `--workers` processes as JSON."""

    model_uri: str = DEFAULT_MODEL_URI
    routes: tuple[str, ...] = ()
    shadows: tuple[str, ...] = ()
    model_name: str = "hotel-booking-cancellation"
    prediction_log: str | None = None
    reload_seconds: float = 30.0

    def to_environment(self) -> dict[str, str]:
        """The options as the environment of worker processes."""
        return {WORKER_ENVIRONMENT: json.dumps(asdict(self))}

    @classmethod
    def from_environment(cls) -> ServiceOptions:
        """The options ``to_environment`` wrote, else the defaults with INNFLOW_MODEL_URI."""
        raw = os.environ.get(WORKER_ENVIRONMENT)
        if raw is None:
            return cls(model_uri=os.environ.get("INNFLOW_MODEL_URI", DEFAULT_MODEL_URI))
        given = json.loads(raw)
        given["routes"], given["shadows"] = tuple(given["routes"]), tuple(given["shadows"])
        return cls(**given)


def build_app(options: ServiceOptions):
    """The service for a model URI or alias routes: (app, one line saying what it serves).

    A registry alias (``models:/NAME@ALIAS``) or routes give a reloadable registry source,
    started from snapshots where there are any; any other URI is served as loaded. The
    admin token comes from INNFLOW_ADMIN_TOKEN (empty or whitespace: the endpoint is
    disabled, said in ``app.state.notes``). A prediction log directory that cannot be
    written is refused before anything is loaded.
    """
    from innflow.serving.app import Settings, create_app
    from innflow.serving.prediction_log import check_writable

    settings = Settings(
        prediction_log=Path(options.prediction_log) if options.prediction_log else None,
        reload_seconds=options.reload_seconds,
        admin_token=os.environ.get("INNFLOW_ADMIN_TOKEN"),
    )
    if settings.prediction_log is not None:
        try:
            check_writable(settings.prediction_log)
        except OSError as e:
            raise ConfigError(
                f"--prediction-log {settings.prediction_log}: cannot write there "
                f"({e.strerror or e})"
            ) from e
    model_uri, model_name = options.model_uri, options.model_name
    routes, shadows = list(options.routes), list(options.shadows)
    if not (routes or shadows or "@" in model_uri):
        model = load(model_uri)
        path = " (general path: mlflow.pyfunc)" if model.general is not None else ""
        return create_app(model, settings), f"{model_uri} (version {model.version}){path}"
    if "@" in model_uri and not routes:
        model_name, alias = model_uri.removeprefix("models:/").split("@", 1)
        routes = [f"{alias}=100"]
    source = RegistrySource(model_name, routes, shadows)
    router = source.start()
    shown = ", ".join(
        f"{v.name} v{v.model.version}{' (shadow)' if v.shadow else ''}"
        + (" (general path: mlflow.pyfunc)" if v.model.general is not None else "")
        + (" (start-up snapshot; confirming with the registry)" if v.model.origin == "snapshot"
           else "")
        for v in router.variants
    )  # fmt: skip
    return create_app(router, settings, source), shown


def app_from_environment():
    """Factory for `uvicorn --factory` workers: the service of ``ServiceOptions`` in the
    environment (routes, shadows, prediction log and reloading included).
    """
    return build_app(ServiceOptions.from_environment())[0]
