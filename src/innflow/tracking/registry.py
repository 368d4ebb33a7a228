"""The Model Registry: versions, aliases (never the deprecated stages), version tags, and
the audit trail of alias moves that MLflow itself does not keep (mlflow#2169).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from innflow.errors import RunNotFoundError, TrackingError
from innflow.tracking.orphans import owner_gone, process_tags
from innflow.tracking.store import _reason

AUDIT_EXPERIMENT = "innflow-registry-audit"
# A pending move record older than this is settled even when its process cannot be checked
# (another host): an alias move takes about a second.
PENDING_SECONDS = 600


def _client() -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient()


@contextmanager
def _registry_errors(what: str) -> Iterator[None]:
    """Registry failures as one clear line; nothing half-done is left behind by callers."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as e:
        code = getattr(e, "error_code", "")
        if code == "RESOURCE_DOES_NOT_EXIST":
            raise RunNotFoundError(f"{what}: {e.message}") from e
        raise TrackingError(f"{what}: {_reason(e)}") from e


def register_version(
    name: str,
    run_id: str,
    source: str,
    tags: dict[str, str],
    description: str,
    model_id: str | None = None,
    model_description: str = "Hotel booking cancellation model (innflow)",
) -> tuple[Any, bool]:
    """The model version for a model: the existing one if it was registered before
    (registering twice never makes a second version), else a new one.

    An innflow training run logs one model, so its run id identifies it; any other model
    is matched by ``model_id`` (or source), as a run may log several.
    """
    from mlflow.exceptions import MlflowException

    client = _client()
    what = f"model {model_id}" if model_id else f"run {run_id}"
    with _registry_errors(f"cannot register {what} as {name!r}"):
        try:
            client.create_registered_model(name, description=model_description)
        except MlflowException as e:
            if getattr(e, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
                raise
        for version in client.search_model_versions(f"name = '{name}'"):
            if model_id is not None:
                same = (
                    getattr(version, "model_id", None) == model_id
                    or version.tags.get("innflow.model_id") == model_id
                    or version.source == source
                )
            else:
                same = version.run_id == run_id or version.tags.get("innflow.run_id") == run_id
            if same:
                return version, False
        # A tracking server accepts a logged model's URI (models:/m-...) as the source only
        # with its model_id beside it (the embedded store does not check).
        if model_id is None and source.startswith("models:/m-"):
            model_id = source.removeprefix("models:/")
        version = client.create_model_version(
            name, source, run_id=run_id, tags={**tags, "innflow.run_id": run_id},
            description=description, model_id=model_id,
        )  # fmt: skip
    return version, True


def model_version(name: str, version: str) -> Any:
    """One version, or a one-line error naming what does not exist."""
    with _registry_errors(f"no version {version} of model {name!r}"):
        return _client().get_model_version(name, str(version))


def alias_version(name: str, alias: str) -> Any | None:
    """The version an alias points at, or None when the alias (or model) is not set."""
    from mlflow.exceptions import MlflowException

    try:
        return _client().get_model_version_by_alias(name, alias)
    except MlflowException as e:
        if getattr(e, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise TrackingError(f"cannot read alias {alias!r} of {name!r}: {_reason(e)}") from e


def model_version_of(uri: str) -> tuple[str, str] | None:
    """(version, run id) a registry URI (``models:/name@alias`` or ``models:/name/3``)
    resolves to now; None for an alias that is not set.
    """
    name, sep, alias = uri.removeprefix("models:/").partition("@")
    if sep:
        found = alias_version(name, alias)
    else:
        name, number = name.rsplit("/", 1)
        found = model_version(name, number)
    return None if found is None else (str(found.version), str(found.run_id))


def set_alias(name: str, alias: str, version: str) -> None:
    """Point ``alias`` at ``version`` (aliases, never the deprecated stages)."""
    with _registry_errors(f"cannot set alias {alias!r} of {name!r}"):
        _client().set_registered_model_alias(name, alias, str(version))


def delete_alias(name: str, alias: str) -> None:
    """Remove an alias (used only to undo a move that could not be recorded)."""
    with _registry_errors(f"cannot remove alias {alias!r} of {name!r}"):
        _client().delete_registered_model_alias(name, alias)


def set_version_tags(name: str, version: str, tags: dict[str, str]) -> None:
    """Tag a model version (gate results, approvals)."""
    client = _client()
    with _registry_errors(f"cannot tag version {version} of {name!r}"):
        for key, value in tags.items():
            client.set_model_version_tag(name, str(version), key, value)


def versions(name: str) -> list[tuple[Any, list[str]]]:
    """All versions of a registered model, newest first, each with its aliases.

    Aliases come from the registered model: MLflow's version search leaves them empty.
    """
    with _registry_errors(f"cannot list the versions of {name!r}"):
        model = _client().get_registered_model(name)
        found = _client().search_model_versions(f"name = '{name}'")
    by_version: dict[str, list[str]] = {}
    for alias, version in sorted((model.aliases or {}).items()):
        by_version.setdefault(str(version), []).append(alias)
    ordered = sorted(found, key=lambda v: int(v.version), reverse=True)
    return [(v, by_version.get(str(v.version), [])) for v in ordered]


def log_run_text(run_id: str, text: str, artifact_file: str) -> None:
    """Attach a text artifact to a finished run (a gate report on the candidate's run)."""
    with _registry_errors(f"cannot write {artifact_file} to run {run_id}"):
        _client().log_text(run_id, text, artifact_file)


def record_move(name: str, move: dict[str, str]) -> str:
    """Write the record of an alias move before the move (a write-ahead entry): a run in a
    dedicated experiment of the same tracking store, so everyone on the server sees
    the same history (MLflow keeps none: mlflow#2169). Returns its id.

    The record stays RUNNING until `confirm_move`: a store that dies between the two writes
    leaves at worst a pending record, never an alias move without one (see settle_moves).
    """
    import mlflow

    client = _client()
    with _registry_errors("cannot record the alias move"):
        found = mlflow.get_experiment_by_name(AUDIT_EXPERIMENT)
        experiment = found.experiment_id if found else client.create_experiment(AUDIT_EXPERIMENT)
        title = f"{move['alias']}: v{move['from_version']} -> v{move['to_version']}"
        tags = {"innflow.model_name": name, **{f"innflow.move.{k}": v for k, v in move.items()}}
        # The record's MLflow user is who moved the alias (MLflow would write "unknown").
        tags["mlflow.user"] = move.get("user") or move["who"]
        entry = client.create_run(experiment, run_name=title, tags={**tags, **process_tags()})
    return str(entry.info.run_id)


def confirm_move(record_id: str) -> None:
    """The alias moved: its record is final (FINISHED)."""
    with _registry_errors("the alias moved but its record could not be confirmed"):
        _client().set_terminated(record_id, "FINISHED")


def abandon_move(record_id: str, reason: str) -> None:
    """The alias did not move: its record is closed as KILLED with the reason."""
    client = _client()
    with _registry_errors("cannot close the record of a move that failed"):
        client.set_tag(record_id, "innflow.error", reason[:5000])
        client.set_terminated(record_id, "KILLED")


def settle_moves(name: str) -> list[str]:
    """Close the pending records of moves whose process is gone (this host) or that are
    older than PENDING_SECONDS: FINISHED when the alias stands where the record says (the
    move happened before the store failed), else KILLED. Returns the records settled.
    """
    import mlflow

    with _registry_errors(f"cannot settle the alias records of {name!r}"):
        found = mlflow.get_experiment_by_name(AUDIT_EXPERIMENT)
        if found is None:
            return []
        pending = mlflow.search_runs(
            [found.experiment_id], output_format="list",
            filter_string=f"tags.`innflow.model_name` = '{name}' and attributes.status = 'RUNNING'",
        )  # fmt: skip
        if not pending:
            return []
        client = _client()
        aliases = dict(client.get_registered_model(name).aliases or {})
        now, settled = time.time() * 1000, []
        for record in pending:
            tags = record.data.tags
            if not owner_gone(tags) and now - record.info.start_time < PENDING_SECONDS * 1000:
                continue  # a move in progress
            alias, target = tags.get("innflow.move.alias"), tags.get("innflow.move.to_version")
            if str(aliases.get(alias)) == target:
                client.set_terminated(record.info.run_id, "FINISHED")
            else:
                why = "settled: the store failed before the alias moved"
                client.set_tag(record.info.run_id, "innflow.error", why)
                client.set_terminated(record.info.run_id, "KILLED")
            settled.append(record.info.run_id)
    return settled


def moves(name: str) -> list[dict[str, str]]:
    """Every confirmed alias move of a model, oldest first (pending records, of a move
    the store failed during, count once settle_moves has confirmed them).
    """
    import mlflow

    with _registry_errors(f"cannot read the alias history of {name!r}"):
        found = mlflow.get_experiment_by_name(AUDIT_EXPERIMENT)
        if found is None:
            return []
        runs = mlflow.search_runs(
            [found.experiment_id], order_by=["attributes.start_time ASC"], output_format="list",
            filter_string=f"tags.`innflow.model_name` = '{name}' "
            "and attributes.status = 'FINISHED'",
        )  # fmt: skip
    prefix = "innflow.move."
    found_moves = [
        {k.removeprefix(prefix): v for k, v in r.data.tags.items() if k.startswith(prefix)}
        for r in runs
    ]
    return sorted(found_moves, key=lambda m: m.get("at", ""))
