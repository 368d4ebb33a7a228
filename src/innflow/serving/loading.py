"""Load a registered model for serving: the side effects around the prediction core
(registry lookup, artifact download, start-up snapshots), kept out of the app factory and
shared by the service and `innflow score`.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from innflow import tracking
from innflow.errors import ConfigError
from innflow.serving import core, snapshot
from innflow.serving.routing import Router, Variant

DEFAULT_MODEL_URI = "models:/hotel-booking-cancellation@production"


def load(
    model_uri: str, tracking_uri: str | None = None, compile: str = "cached"
) -> core.LoadedModel:
    """Resolve ``model_uri`` in the registry and load its Pipeline (``compile``: see
    ``core.from_logged``); when it builds the compiled predictor and verifies it, the
    start-up snapshot is written (serving/snapshot.py). A model innflow did not train (no
    ``innflow_input_columns`` metadata) is loaded as MLflow's pyfunc: the general path.
    """
    tracking.connect(tracking_uri)

    def keep_snapshot(model: core.LoadedModel) -> None:
        snapshot.save(model, store_key(tracking_uri), model_uri)

    description = tracking.describe_model(model_uri)
    if not description["metadata"].get("innflow_input_columns"):  # not trained by innflow
        pyfunc, example = tracking.load_general_for_serving(description["resolved_uri"])
        return core.from_pyfunc(pyfunc, description, example)
    pipeline, example = tracking.load_for_serving(description["resolved_uri"])
    # Only `innflow compile` writes snapshots: a service's cache may be mounted read-only.
    then = keep_snapshot if compile == "build" else None
    return core.from_logged(pipeline, description, example, compile, then)


def store_key(tracking_uri: str | None) -> str:
    """The store snapshots are keyed by: resolved, a relative SQLite path made absolute."""
    return tracking.store_identity(tracking.resolve_store(tracking_uri))


def start(model_uri: str, tracking_uri: str | None = None) -> core.LoadedModel:
    """The model from its start-up snapshot when there is a good one (no registry, MLflow
    or scikit-learn: the caller must confirm it, see ``RegistrySource``), else ``load``.
    """
    return snapshot.load(store_key(tracking_uri), model_uri) or load(model_uri, tracking_uri)


def confirmed(model_uri: str, tracking_uri: str | None = None) -> core.LoadedModel | None:
    """The model's snapshot if ``model_uri`` still means the version and run it was taken
    from, else None. A registry URI is asked of the registry (the pipeline is not loaded);
    run and logged-model URIs name one model for good.
    """
    model = snapshot.load(store_key(tracking_uri), model_uri)
    if model is None:
        return None
    if tracking.is_registry_uri(model_uri):
        # A server answers its REST API (milliseconds, no MLflow import); else MLflow.
        now = tracking.current_version(store_key(tracking_uri), model_uri)
        if now is None:
            tracking.connect(tracking_uri)
            now = tracking.model_version_of(model_uri)
        if now != (model.version, model.description.get("run_id")):
            return None
    model.origin = "registry"  # confirmed: what the registry serves under this URI now
    return model


WARM_LIMIT = 2  # versions loaded ahead and kept: each holds one model's memory


class RegistrySource:
    """Where a running service reloads from: alias versions (cheap to poll) and a loader.

    A version loaded ahead (``prefetch``, on the registry's webhook for a new version) is
    taken as it is when an alias moves to it, so the move costs no load.
    """

    def __init__(self, model_name: str, routes: list[str], shadows: list[str]) -> None:
        self.model_name, self.routes, self.shadows = model_name, routes, shadows
        self._connected = False  # a service started from snapshots has not met the store yet
        self._warm: dict[str, core.LoadedModel] = {}
        self._warm_lock = threading.Lock()

    def prefetch(self, version: str) -> core.LoadedModel:
        """Load ``version`` now and keep it for an alias move."""
        model = load(f"models:/{self.model_name}/{version}")
        self.keep(model)
        return model

    def keep(self, model: core.LoadedModel) -> None:
        """Hold a loaded version (the newest ``WARM_LIMIT``): the one a reload replaced, so
        that a rollback to it swaps without loading, or one loaded ahead.
        """
        if not model.version.isdigit() or model.origin != "registry":
            return  # a snapshot must be confirmed by loading anyway
        with self._warm_lock:
            self._warm.pop(model.version, None)
            self._warm[model.version] = model
            while len(self._warm) > WARM_LIMIT:
                self._warm.pop(next(iter(self._warm)))

    def warm(self) -> list[str]:
        """The versions loaded ahead, oldest first."""
        with self._warm_lock:
            return list(self._warm)

    def _load(self, uri: str) -> core.LoadedModel:
        """``uri`` (``models:/NAME@ALIAS``) from the versions loaded ahead, else loaded."""
        if not self.warm():
            return load(uri)  # nothing held: no registry lookup beyond the load's own
        alias = uri.partition("@")[2]
        version = tracking.alias_version(self.model_name, alias)
        with self._warm_lock:
            model = self._warm.pop(str(version.version), None) if version is not None else None
        if model is None:
            return load(uri)
        named = {**model.description, "uri": uri, "alias": alias}
        return dataclasses.replace(model, description=named)

    def versions(self) -> dict[str, str]:
        """The version each routed or shadow alias points at now."""
        if not self._connected:
            tracking.connect(None)
            self._connected = True
        _, aliases = self.watched()
        found = {}
        for alias in aliases:
            version = tracking.alias_version(self.model_name, alias)
            found[alias] = str(version.version) if version is not None else "none"
        return found

    def watched(self) -> tuple[str, list[str]]:
        """The registered model and the aliases its variants follow."""
        return self.model_name, [r.partition("=")[0] for r in self.routes] + list(self.shadows)

    def load(self) -> Router:
        """Every variant afresh, or as loaded ahead."""
        return load_router(self.model_name, self.routes, self.shadows, self._load)

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
