"""Models innflow did not train (a notebook's, a script's) as registry candidates: which
logged model a run or URI means, what its version records, its probabilities on the
gate's window, and the reference profile monitoring needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from innflow import tracking
from innflow.errors import ConfigError, IncompatibleModelError, RunNotFoundError
from innflow.modeling import model_inputs
from innflow.monitoring import profile as profiles

if TYPE_CHECKING:
    from innflow.steps.training import Prepared

# The metrics the registry listing shows for innflow's versions, kept under the same tags.
KEY_METRICS = ("test_roc_auc", "test_pr_auc", "test_brier", "test_ece", "test_cost_saving",
               "test_rmse", "test_mae", "test_r2", "test_rmse_vs_baseline")  # fmt: skip
MAX_METRIC_TAGS = 30


def _finished(run: Any) -> Any:
    status = run.info.status
    if status in ("FAILED", "KILLED"):
        raise RunNotFoundError(
            f"run {run.info.run_id} ended {status}: its model may be incomplete; "
            "register a model from a finished run"
        )
    return run


def choose(ref: str, pick: str | None = None) -> tracking.LoggedModelRef | str:
    """The logged model ``ref`` (a run id or a ``models:/m-...``/``runs:/`` URI) means:
    the one model of the run tree, or the one named ``pick``. An innflow training run's
    own model comes back as that run's id, to be registered as innflow always has.
    """
    if ref.startswith(("models:/", "runs:/")):
        if tracking.is_registry_uri(ref):
            raise ConfigError(
                f"{ref} is a registered version already: pass the run id or the logged "
                "model's URI (models:/m-...)"
            )
        chosen = tracking.logged_model(ref)
        run = _finished(tracking.get_run(chosen.run_id))
    else:
        run = _finished(tracking.get_run(ref))
        if run.data.tags.get("innflow.model_uri") and pick in (None, tracking.MODEL_NAME):
            return ref
        found = tracking.logged_models_of(ref)
        title = f'run {ref} "{run.info.run_name or ""}"'
        if pick is not None:
            named = [m for m in found if m.name == pick]
            if not named:
                names = ", ".join(sorted({m.name for m in found})) or "none"
                raise RunNotFoundError(f"{title} logged no model named {pick!r} (it has: {names})")
            found = named
        if not found:
            raise RunNotFoundError(
                f"{title} logged no model: log one inside the run with "
                "mlflow.<flavor>.log_model(model, name=..., input_example=...), then register "
                "the run (or the model's URI)"
            )
        if len(found) > 1:
            listed = "\n".join(
                f'  {m.name}  logged in run {m.run_id} "{m.run_name}"  {m.uri}' for m in found
            )
            raise ConfigError(
                f"{title} logged {len(found)} models; register one by its URI "
                f"(`innflow register models:/m-...`) or by name (`--model NAME`):\n{listed}"
            )
        chosen = found[0]
        run = run if chosen.run_id == ref else tracking.get_run(chosen.run_id)
    if run.data.tags.get("innflow.model_uri") == chosen.uri:
        return chosen.run_id
    return chosen


def flavor(chosen: tracking.LoggedModelRef) -> str:
    """The model's own flavor (sklearn, lightgbm...), or python_function for a pyfunc."""
    return next((f for f in chosen.flavors if f != "python_function"), "python_function")


def version_tags(
    chosen: tracking.LoggedModelRef, run: Any, task: str, inputs: list[tuple[str, str]] | None
) -> dict[str, str]:
    """Where the model came from, what it is and what its run measured."""
    metrics = run.data.metrics
    tags = {
        "innflow.origin": tracking.model_origin(run),
        "innflow.flavor": flavor(chosen),
        "innflow.model_kind": flavor(chosen),
        "innflow.model_id": chosen.model_id,
        "innflow.logged_name": chosen.name,
        "innflow.task": task,
        "innflow.signature": f"{len(inputs)} input columns" if inputs else "none",
        "innflow.gate": "pending",
    }
    for key in sorted(metrics)[:MAX_METRIC_TAGS]:
        tags[f"innflow.metric.{key}"] = f"{metrics[key]:.6f}"
    tags.update({f"innflow.{k}": f"{metrics[k]:.6f}" for k in KEY_METRICS if k in metrics})
    return tags


def not_cancellation(uri: str, task: str, inputs: list[tuple[str, str]] | None) -> str:
    """Why a model does not belong to the cancellation task, with the way out."""
    if task == "unknown":
        return (
            f"model {uri} has no signature, so innflow cannot tell it takes booking columns: "
            "log it with an input example (MLflow infers the signature)"
        )
    shown = ", ".join(name for name, _ in (inputs or [])[:5])
    return f"model {uri} takes no booking columns ({shown}, ...): it is not a cancellation model"


def scores(uri: str, described: dict[str, Any], bookings: pd.DataFrame) -> np.ndarray:
    """p(cancel) of a model innflow did not train, through its pyfunc, on ``bookings``
    shaped and typed as its signature asks. Anything in the way is one line with the fix.
    """
    inputs = tracking.signature_inputs(described)
    task = model_inputs.task_of(inputs)
    if inputs is None or task != "cancellation":
        raise IncompatibleModelError(
            not_cancellation(uri, task, inputs) + ", so it cannot be scored on bookings"
        )
    frame = model_inputs.model_frame(bookings, inputs, uri)
    return model_inputs.probabilities(tracking.pyfunc_predict(uri, frame), uri)


def reference(
    prepared: Prepared, described: dict[str, Any], test_scores: np.ndarray
) -> dict[str, Any]:
    """The reference profile `innflow train` would have logged: the booking columns the
    model takes over the window before the test window, and its test-window scores.
    """
    inputs = tracking.signature_inputs(described) or []
    columns = model_inputs.raw_columns(inputs)
    training = pd.concat([prepared.split.train, prepared.split.validation])[columns]
    return profiles.build(
        training,
        test_scores,
        prepared.labels("test"),
        calibration_bins=prepared.config.evaluation.calibration_bins,
    ).to_dict()
