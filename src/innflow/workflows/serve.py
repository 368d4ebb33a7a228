"""`innflow serve`: what a service serves and how (options handed to worker processes),
and the app built from them.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from innflow.errors import ConfigError
from innflow.serving import core, jsonrows, snapshot
from innflow.serving.loading import DEFAULT_MODEL_URI, RegistrySource, load, store_key


def compile_model(model_uri: str) -> tuple[core.LoadedModel, Path | None]:
    """Build, verify and cache the compiled predictor of a model, so that services and
    `innflow score` start with it (run it where they run, e.g. when building an image);
    with the start-up snapshot written beside it (its path, None when not compiled).
    """
    model = load(model_uri, compile="build")
    written = snapshot.path_for(store_key(None), model_uri)
    return model, written if written.exists() and model.predictor["state"] == "compiled" else None


def compile_json_rows() -> str:
    """Build and cache the service's compiled JSON row reader (serving/jsonrows.py): how
    services will read JSON rows (``compiled``, or ``python (why)``).
    """
    return jsonrows.load()[1]


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
