"""Monitoring's side of the store: where monitoring runs go, how a model's reference
profile is read back from its logged metadata, and month-by-month series on a run.
"""

from __future__ import annotations

import time
from typing import Any

from innflow.errors import RunNotFoundError
from innflow.tracking.logged_models import describe_model

MONITORING_EXPERIMENT = "innflow-monitoring"
# The key under which `innflow train` stores the profile in the logged model's metadata.
PROFILE_KEY = "innflow_reference_profile"


def reference_profile(uri: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(profile, model description) of a model URI, reading only its MLmodel file."""
    described = describe_model(uri)
    profile = described["metadata"].get(PROFILE_KEY)
    if not isinstance(profile, dict):
        raise RunNotFoundError(
            f"model {uri} has no reference profile (logged before monitoring existed?): "
            "retrain it with `innflow train`"
        )
    return profile, described


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
