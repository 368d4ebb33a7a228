"""`innflow serve` and `innflow compile`: the service built from its settings (the same
settings handed to `--workers` processes), and a model's compiled predictor built ahead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from innflow.errors import ConfigError
from innflow.serving import core, snapshot
from innflow.serving.loading import RegistrySource, load, store_key
from innflow.serving.settings import ServiceSettings

WORKER_ENVIRONMENT = "INNFLOW_SERVE"  # the service's settings as JSON, for `--workers`


def compile_model(model_uri: str) -> tuple[core.LoadedModel, Path | None]:
    """Build, verify and install the compiled predictor of a model, so that services and
    `innflow score` start with it (run it where they run, e.g. when building an image);
    with the start-up snapshot written beside it (its path, None when not compiled).
    """
    model = load(model_uri, compile="build")
    written = snapshot.path_for(store_key(None), model_uri)
    return model, written if written.exists() and model.predictor["state"] == "compiled" else None


def worker_environment(settings: ServiceSettings) -> dict[str, str]:
    """The settings for worker processes (the secrets stay in their own variables)."""
    given = settings.model_dump(mode="json", exclude={"admin_token", "webhook_secret"})
    return {WORKER_ENVIRONMENT: json.dumps(given)}


def build_app(settings: ServiceSettings):
    """The service for a model URI or alias routes: (app, one line saying what it serves).

    A registry alias (``models:/NAME@ALIAS``) or routes give a reloadable registry source,
    started from snapshots where there are any; any other URI is served as loaded. A
    prediction log directory that cannot be written is refused before anything is loaded.
    """
    from innflow.serving.app import create_app
    from innflow.serving.prediction_log import check_writable

    if settings.prediction_log is not None:
        try:
            check_writable(settings.prediction_log)
        except OSError as e:
            raise ConfigError(
                f"--prediction-log {settings.prediction_log}: cannot write there "
                f"({e.strerror or e})"
            ) from e
    model_uri, model_name = settings.model_uri, settings.model_name
    routes, shadows = list(settings.routes), list(settings.shadows)
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
    """Factory for `uvicorn --factory` workers: the service of the settings `innflow serve`
    put in the environment (routes, shadows, prediction log and reloading included).
    """
    raw = os.environ.get(WORKER_ENVIRONMENT)
    settings = ServiceSettings(**json.loads(raw)) if raw else ServiceSettings()
    return build_app(settings)[0]
