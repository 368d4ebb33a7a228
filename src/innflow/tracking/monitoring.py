"""Monitoring's side of the store: where monitoring runs go, how a model's reference
profile is read back from its logged metadata, and month-by-month series on a run.
"""

from __future__ import annotations

import json
import time
from typing import Any

from innflow.errors import RunNotFoundError
from innflow.tracking.logged_models import describe_model
from innflow.tracking.registry import _client, _registry_errors

MONITORING_EXPERIMENT = "innflow-monitoring"
# The key under which `innflow train` stores the profile in the logged model's metadata.
PROFILE_KEY = "innflow_reference_profile"
# A model innflow did not train carries no profile: `innflow gate` logs one on the model's
# run and names it in this version tag (the logged model itself is never rewritten).
PROFILE_TAG = "innflow.reference_profile"


def reference_profile(uri: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(profile, model description) of a model URI: from its MLmodel file, or for a
    registered version of a model innflow did not train, the profile its gate logged.
    """
    described = describe_model(uri)
    profile = described["metadata"].get(PROFILE_KEY)
    if not isinstance(profile, dict) and described.get("version"):
        profile = _version_profile(described["name"], described["version"])
    if not isinstance(profile, dict):
        where = (
            f"version {described['version']} of {described['name']!r}"
            if described.get("version")
            else f"model {uri}"
        )
        raise RunNotFoundError(
            f"{where} has no reference profile: one trained by `innflow train` carries "
            "one; for another model, register it and run `innflow gate VERSION` first"
        )
    return profile, described


def _version_profile(name: str, version: str) -> dict[str, Any] | None:
    import mlflow
    from mlflow.exceptions import MlflowException

    with _registry_errors(f"no version {version} of model {name!r}"):
        found = _client().get_model_version(name, str(version))
    location = found.tags.get(PROFILE_TAG)
    if not location:
        return None
    try:
        loaded = json.loads(mlflow.artifacts.load_text(location))
    except (MlflowException, OSError, ValueError) as e:
        raise RunNotFoundError(f"cannot read the reference profile {location}: {e}") from e
    return loaded if isinstance(loaded, dict) else None


def log_version_profile(name: str, version: str, run_id: str, profile: dict[str, Any]) -> str:
    """Log a profile built for a registered version on its model's run and tag the
    version with where it is; returns that location.
    """
    artifact = f"reference/profile-{name}-v{version}.json"
    with _registry_errors(f"cannot record the reference profile of version {version}"):
        _client().log_text(run_id, json.dumps(profile, indent=1), artifact)
        location = f"runs:/{run_id}/{artifact}"
        _client().set_model_version_tag(name, str(version), PROFILE_TAG, location)
    return location


def log_series(series: dict[str, list[float]]) -> None:
    """Metrics of the active run as series, one step per month, in one batch call."""
    import mlflow
    from mlflow.entities import Metric

    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_series needs an active run")
    now = int(time.time() * 1000)
    found = [
        Metric(name, float(value), now, step)
        for name, values in series.items()
        for step, value in enumerate(values)
        if value == value  # NaN (a month without both outcomes) is left out
    ]
    for start in range(0, len(found), 1000):  # the store's batch limit
        mlflow.tracking.MlflowClient().log_batch(
            run.info.run_id, metrics=found[start : start + 1000]
        )
