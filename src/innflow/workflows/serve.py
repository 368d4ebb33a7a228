"""Load a registered model for serving or batch scoring: the side effects around the
prediction core (registry lookup, artifact download), kept out of the app factory.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from innflow import data, models, tracking
from innflow.errors import ConfigError, DataValidationError
from innflow.serving import core
from innflow.serving.routing import Router, Variant

DEFAULT_MODEL_URI = "models:/hotel-booking-cancellation@production"


def load(model_uri: str, tracking_uri: str | None = None) -> core.LoadedModel:
    """Resolve ``model_uri`` in the registry and load its Pipeline."""
    tracking.connect(tracking_uri)
    description = tracking.describe_model(model_uri)
    pipeline, example = tracking.load_for_serving(description["resolved_uri"])
    return core.from_logged(pipeline, description, example)


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


@dataclass(frozen=True)
class ScoreOutcome:
    """What `innflow score` did."""

    rows: int
    scored: int
    rejected: int
    seconds: float
    model_version: str


def score_file(model_uri: str, source: Path, target: Path) -> ScoreOutcome:
    """Score a parquet/CSV file; invalid rows are kept, unscored, with the reason."""
    started = time.perf_counter()
    model = load(model_uri)
    if models.pipeline_kind(model.pipeline) in ("lightgbm", "xgboost"):
        # The service scores a few rows per request single-threaded; a file is one big batch.
        model.pipeline.set_params(model__n_jobs=os.cpu_count() or 1)
    frame = data.read_table(source)
    missing = [c for c in model.columns if c not in frame.columns]
    if missing:
        raise DataValidationError(f"{source}: missing column(s) {', '.join(missing)}")
    inputs = frame[model.columns]
    reasons = np.full(len(frame), "", dtype=object)
    for column, problem, mask in data.row_problems(inputs, tuple(model.columns)):
        reasons[mask & (reasons == "")] = f"{column}: value {problem.removeprefix('are ')}"
    good = reasons == ""
    probability = np.full(len(frame), np.nan)
    if good.any():
        probability[good] = model.pipeline.predict_proba(inputs[good])[:, 1]
    out = frame.copy()
    out["probability"] = probability
    decision = pd.array(probability >= model.threshold, dtype="boolean")
    decision[~good] = pd.NA
    out["likely_cancel"] = decision
    out["model_version"] = model.version
    out["error"] = reasons
    if target.suffix.lower() in (".parquet", ".pq"):
        out.to_parquet(target, index=False)
    else:
        out.to_csv(target, index=False)
    seconds = time.perf_counter() - started
    return ScoreOutcome(len(frame), int(good.sum()), int((~good).sum()), seconds, model.version)
