"""Which version and run a registry URI names now, asked without importing MLflow.

Why: `innflow score` with a start-up snapshot must confirm that the alias still names the
snapshot's version before scoring (a stale alias must never score), and through MLflow
that confirmation cost 2.4 s of a 3.9 s job: 1.4 s importing MLflow, the rest opening the
SQLite store (schema checks). Here it is one read-only query (SQLite) or one GET of
MLflow's documented REST API (a tracking server), a few milliseconds.

Only the plain cases are answered; anything else returns None and the caller asks MLflow
itself (``registry.model_version_of``), which then also reports what is wrong:
- SQLite: only when the store's schema revision is the one recorded when the snapshot was
  written through MLflow (so the tables are the ones MLflow wrote), without workspaces,
  and never the reserved alias ``latest``;
- a server: only without credentials, TLS or workspace settings in the environment (MLflow's
  own client knows how to send those);
- a separate registry URI, a version that is missing or deleted, an alias that is not set:
  None.
"""

from __future__ import annotations

import json
import os
import sqlite3
import urllib.parse
import urllib.request
from contextlib import closing

from innflow.tracking.store import sqlite_path

DELETED = "Deleted_Internal"  # MLflow's stage for a deleted version it keeps internally
# Settings only MLflow's client applies; with any of them set, MLflow is asked.
_CLIENT_SETTINGS = (
    "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_AUTH", "MLFLOW_TRACKING_INSECURE_TLS", "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH", "MLFLOW_ENABLE_WORKSPACES", "MLFLOW_WORKSPACE",
)  # fmt: skip
TIMEOUT_SECONDS = 5.0


def schema_revision(store_uri: str) -> str | None:
    """The SQLite store's schema revision (MLflow's alembic head), None when unknown."""
    path = sqlite_path(store_uri)
    if path is None:
        return None
    try:
        with _read_only(path) as db:
            return _revision(db)
    except sqlite3.Error:
        return None


def _revision(db: sqlite3.Connection) -> str | None:
    row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    return str(row[0]) if row else None


def current_version(
    store_uri: str, model_uri: str, revision: str | None = None
) -> tuple[str, str] | None:
    """(version, run id) that ``models:/name@alias`` or ``models:/name/3`` names now in
    ``store_uri``; None when this cannot tell (then ask MLflow). ``revision``: the SQLite
    schema revision the caller last saw through MLflow.
    """
    if any(os.environ.get(name) for name in _CLIENT_SETTINGS):
        return None
    registry = os.environ.get("MLFLOW_REGISTRY_URI")
    if registry and registry != store_uri:
        return None
    reference = model_uri.removeprefix("models:/")
    name, sep, alias = reference.partition("@")
    number = None
    if not sep:
        name, _, number = reference.rpartition("/")
        if not number.isdigit():
            return None  # a stage name: MLflow's deprecated lookup
    if not name or alias.lower() == "latest":
        return None
    if store_uri.startswith(("http://", "https://")):
        return _from_server(store_uri, name, alias, number)
    path = sqlite_path(store_uri)
    if path is None or revision is None:
        return None
    return _from_sqlite(path, revision, name, alias, number)


def _read_only(path: str) -> closing[sqlite3.Connection]:
    """The database opened read-only (never created), closed on leaving the block."""
    quoted = urllib.parse.quote(os.path.abspath(path))
    return closing(sqlite3.connect(f"file:{quoted}?mode=ro", uri=True, timeout=TIMEOUT_SECONDS))


def _from_sqlite(
    path: str, revision: str, name: str, alias: str, number: str | None
) -> tuple[str, str] | None:
    try:
        with _read_only(path) as db:
            if _revision(db) != revision:
                return None  # migrated since: the tables may differ
            if number is None:
                row = db.execute(
                    "SELECT version FROM registered_model_aliases"
                    " WHERE workspace = 'default' AND name = ? AND alias = ?",
                    (name, alias),
                ).fetchone()
                if row is None:
                    return None
                number = str(row[0])
            found = db.execute(
                "SELECT version, run_id FROM model_versions WHERE workspace = 'default'"
                " AND name = ? AND version = ? AND current_stage != ?",
                (name, int(number), DELETED),
            ).fetchone()
    except sqlite3.Error:
        return None
    return None if found is None else (str(found[0]), str(found[1]))


def _from_server(uri: str, name: str, alias: str, number: str | None) -> tuple[str, str] | None:
    if number is None:
        path, query = "registered-models/alias", {"name": name, "alias": alias}
    else:
        path, query = "model-versions/get", {"name": name, "version": number}
    url = f"{uri.rstrip('/')}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(query)}"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            version = json.loads(response.read())["model_version"]
        return str(version["version"]), str(version["run_id"])
    except (OSError, ValueError, KeyError, TypeError):  # URLError is an OSError
        return None
