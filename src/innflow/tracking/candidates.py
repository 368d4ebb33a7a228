"""Any logged model as a registry candidate, however it was logged (innflow's trainer, a
notebook, a script): which model a URI names, where it came from, what its signature
takes, and its pyfunc's output, with every MLflow failure as one line.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pandas as pd

from innflow.errors import IncompatibleModelError, RunNotFoundError
from innflow.tracking.logged_models import LoggedModelRef, load_pyfunc, logged_models_of
from innflow.tracking.registry import _client, _registry_errors
from innflow.tracking.store import _reason

if TYPE_CHECKING:
    from mlflow.entities import Run

# MLflow's tag for the file a run was started from (a notebook kernel or a script).
SOURCE_NAME = "mlflow.source.name"


def logged_model(uri: str) -> LoggedModelRef:
    """The logged model a ``models:/m-...`` or ``runs:/RUN_ID/NAME`` URI names, or a
    one-line RunNotFoundError.
    """
    if uri.startswith("models:/m-"):
        model_id = uri.removeprefix("models:/").strip("/")
        with _registry_errors(f"no logged model {uri}"):
            run_id = _client().get_logged_model(model_id).source_run_id
        found = [m for m in logged_models_of(run_id) if m.model_id == model_id] if run_id else []
    elif uri.startswith("runs:/"):
        run_id, _, name = uri.removeprefix("runs:/").strip("/").partition("/")
        found = [m for m in logged_models_of(run_id) if m.run_id == run_id and m.name == name]
    else:
        raise RunNotFoundError(
            f"{uri} is not a run id or a logged model URI (models:/m-... or runs:/RUN_ID/NAME)"
        )
    if not found:
        raise RunNotFoundError(f"no logged model {uri}")
    return found[0]


def model_origin(run: Run) -> str:
    """Where a model came from, for its version tags: ``innflow training``,
    ``notebook run`` or ``script run`` (from innflow's and MLflow's own run tags; a run
    nested in a notebook run counts as the notebook's).
    """
    from innflow.tracking.runs import get_run

    tags = run.data.tags
    if tags.get("innflow.kind") == "train":
        return "innflow training"
    while True:
        if _is_notebook(tags):
            return "notebook run"
        parent = tags.get("mlflow.parentRunId")
        if not parent:
            return "script run"
        tags = get_run(parent).data.tags


def _is_notebook(tags: dict[str, str]) -> bool:
    source = tags.get(SOURCE_NAME, "")
    return (
        tags.get("innflow.kind") == "notebook"
        or tags.get("mlflow.source.type") == "NOTEBOOK"
        or source.endswith(".ipynb")
        or "ipykernel" in source
    )


def signature_inputs(described: dict[str, Any]) -> list[tuple[str, str]] | None:
    """(name, type) of each input column in a described model's signature; None without
    a signature or for a tensor signature (no column names to match bookings to).
    """
    signature = described.get("signature") or {}
    raw = signature.get("inputs")
    if not raw:
        return None
    specs = json.loads(raw) if isinstance(raw, str) else raw
    if not all(isinstance(s, dict) and "name" in s for s in specs):
        return None
    return [(str(s["name"]), str(s.get("type", ""))) for s in specs]


def check_loads(uri: str) -> None:
    """Load the model once (a corrupt or missing artifact is refused before anything is
    registered).
    """
    load_pyfunc(uri)


def pyfunc_predict(uri: str, frame: pd.DataFrame) -> Any:
    """What the model's pyfunc returns for ``frame``; MLflow's schema errors and the
    model's own exceptions as one line naming the model.
    """
    from mlflow.exceptions import MlflowException

    model = load_pyfunc(uri)
    try:
        return model.predict(frame)
    except MlflowException as e:
        message = str(e.message)
        # MLflow's schema error prints the whole frame first; its cause is on the last line.
        reason = message.rsplit("Error:", 1)[-1].strip().splitlines()[-1] if message else ""
        raise IncompatibleModelError(
            f"model {uri} refused the booking columns: {reason or _reason(e)}"
        ) from e
    except Exception as e:  # the model's own code: a user's pyfunc may raise anything
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise IncompatibleModelError(
            f"model {uri} failed on booking rows: {type(e).__name__}: {first}"
        ) from e
