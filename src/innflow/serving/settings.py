"""Serving settings: one validated object each, read from ``INNFLOW_*`` variables when it is
built (in the CLI or a worker's app factory) and passed in; nothing else in serving reads
the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from innflow.errors import ConfigError

DEFAULT_MODEL_URI = "models:/hotel-booking-cancellation@production"


class ServiceSettings(BaseSettings):
    """What `innflow serve` serves and its limits (``INNFLOW_MODEL_URI``,
    ``INNFLOW_ADMIN_TOKEN``, ``INNFLOW_MAX_BODY_BYTES``, ...; arguments win over variables).
    """

    model_config = SettingsConfigDict(env_prefix="INNFLOW_", frozen=True, extra="forbid")

    model_uri: str = DEFAULT_MODEL_URI
    routes: Annotated[tuple[str, ...], NoDecode] = ()  # ALIAS=WEIGHT of model_name (A/B)
    shadows: Annotated[tuple[str, ...], NoDecode] = ()  # scored and logged, never returned
    model_name: str = "hotel-booking-cancellation"
    prediction_log: Path | None = None
    reload_seconds: Annotated[float, Field(ge=0)] = (
        0.0  # poll the aliases this often (0: on request)
    )
    admin_token: str | None = None  # bearer token of POST /admin/reload (blank: disabled)
    webhook_secret: str | None = None  # MLflow webhooks' secret: POST /webhooks/mlflow
    # one body, counted as it is read (else 413); bodies held at once (else 503)
    max_body_bytes: Annotated[int, Field(gt=0)] = 5_000_000
    max_inflight_bytes: Annotated[int, Field(gt=0)] = 20_000_000
    max_rows: Annotated[int, Field(gt=0)] = 100_000
    max_explain_rows: Annotated[int, Field(gt=0)] = 1_000  # a request with explain=true

    @field_validator("routes", "shadows", mode="before")
    @classmethod
    def _listed(cls, value: object) -> object:
        """A comma-separated variable (``INNFLOW_ROUTES=production=90,staging=10``)."""
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value


class CompileSettings(BaseSettings):
    """Where compiled predictors and start-up snapshots are cached and whether they are
    used at all (``INNFLOW_COMPILE=0`` turns both off; ``INNFLOW_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/innflow``, else ``~/.cache/innflow``; ``CC`` picks the compiler).
    """

    model_config = SettingsConfigDict(env_prefix="INNFLOW_", frozen=True, extra="ignore")

    compile: bool = True
    cache_dir: Path | None = None

    @field_validator("compile", mode="before")
    @classmethod
    def _switch(cls, value: object) -> object:
        """0/false/no/off (any case, blank-padded) turn it off; anything else is on."""
        if isinstance(value, str):
            return value.strip().lower() not in ("0", "false", "no", "off")
        return value

    def cache(self) -> Path:
        """The cache directory, resolved."""
        if self.cache_dir is not None:
            return self.cache_dir
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "innflow"


def service_settings(**given: object) -> ServiceSettings:
    """``ServiceSettings`` of ``given`` and the environment; a bad value is a ConfigError
    naming the setting (one line for the CLI, never a traceback).
    """
    try:
        return ServiceSettings(**given)  # type: ignore[arg-type]
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"serving setting {where}: {first['msg']}") from e
