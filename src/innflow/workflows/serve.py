"""Load a registered model for serving: the side effects around the
prediction core (registry lookup, artifact download), kept out of the app factory.
"""

from __future__ import annotations

import os
from pathlib import Path

from innflow import tracking
from innflow.errors import ConfigError
from innflow.serving import core
from innflow.serving.routing import Router, Variant

DEFAULT_MODEL_URI = "models:/hotel-booking-cancellation@production"


def load(
    model_uri: str, tracking_uri: str | None = None, compile: str = "background"
) -> core.LoadedModel:
    """Resolve ``model_uri`` in the registry and load its Pipeline (``compile``: see
    ``core.from_logged``).
    """
    tracking.connect(tracking_uri)
    description = tracking.describe_model(model_uri)
    pipeline, example = tracking.load_for_serving(description["resolved_uri"])
    return core.from_logged(pipeline, description, example, compile)


def compile_model(model_uri: str) -> core.LoadedModel:
    """Build, verify and cache the compiled predictor of a model, so that services and
    `innflow score` start with it (run it where they run, e.g. when building an image).
    """
    return load(model_uri, compile="build")


class RegistrySource:
    """Where a running service reloads from: alias versions (cheap to poll) and a loader."""

    def __init__(self, model_name: str, routes: list[str], shadows: list[str]) -> None:
        self.model_name, self.routes, self.shadows = model_name, routes, shadows

    def versions(self) -> dict[str, str]:
        """The version each routed or shadow alias points at now."""
        aliases = [r.partition("=")[0] for r in self.routes] + list(self.shadows)
        found = {}
        for alias in aliases:
            version = tracking.alias_version(self.model_name, alias)
            found[alias] = str(version.version) if version is not None else "none"
        return found

    def load(self) -> Router:
        """Load every variant afresh."""
        return load_router(self.model_name, self.routes, self.shadows)


def load_router(model_name: str, routes: list[str], shadows: list[str]) -> Router:
    """Variants from `ALIAS=WEIGHT` routes and shadow aliases of one registered model."""
    variants = []
    for route in routes:
        alias, _, weight = route.partition("=")
        try:
            share = float(weight)
        except ValueError as e:
            raise ConfigError(f"route {route!r} must look like production=90") from e
        variants.append(Variant(alias, load(f"models:/{model_name}@{alias}"), share))
    variants += [
        Variant(alias, load(f"models:/{model_name}@{alias}"), 0.0, shadow=True) for alias in shadows
    ]
    return Router(variants)


def build_app(
    model_uri: str,
    routes: list[str],
    shadows: list[str],
    model_name: str,
    prediction_log: Path | None,
    reload_seconds: float,
):
    """The service for a model URI or alias routes: (app, one line saying what it serves).

    A registry alias (``models:/NAME@ALIAS``) or routes give a reloadable registry source;
    any other URI is served as loaded. The admin token comes from INNFLOW_ADMIN_TOKEN.
    """
    from innflow.serving.app import Settings, create_app

    settings = Settings(
        prediction_log=prediction_log,
        reload_seconds=reload_seconds,
        admin_token=os.environ.get("INNFLOW_ADMIN_TOKEN") or None,
    )
    if not (routes or shadows or "@" in model_uri):
        model = load(model_uri)
        return create_app(model, settings), f"{model_uri} (version {model.version})"
    if "@" in model_uri and not routes:
        model_name, alias = model_uri.removeprefix("models:/").split("@", 1)
        routes = [f"{alias}=100"]
    source = RegistrySource(model_name, routes, shadows)
    router = source.load()
    shown = ", ".join(
        f"{v.name} v{v.model.version}{' (shadow)' if v.shadow else ''}" for v in router.variants
    )
    return create_app(router, settings, source), shown


def app_from_environment():
    """Factory for `uvicorn --factory` workers: the model URI comes from INNFLOW_MODEL_URI."""
    from innflow.serving.app import create_app

    return create_app(load(os.environ.get("INNFLOW_MODEL_URI", DEFAULT_MODEL_URI)))
