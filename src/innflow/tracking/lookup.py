"""Which version and run a tracking server's registry URI names now, without MLflow.

`innflow score` with a start-up snapshot must confirm that the alias still names the
snapshot's version before scoring (a stale alias must never score). Against a tracking
server that is one GET of MLflow's documented REST API, no MLflow import; an embedded
store is always asked through MLflow's client (its tables are MLflow's private business).

Only the plain cases are answered; anything else returns None and the caller asks MLflow
itself (``registry.model_version_of``), which then also reports what is wrong: a server
with credentials, TLS or workspace settings in the environment (MLflow's own client knows
how to send those), a separate registry URI, a version that is missing or deleted, an
alias that is not set, the reserved alias ``latest``.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request

# Settings only MLflow's client applies; with any of them set, MLflow is asked.
_CLIENT_SETTINGS = (
    "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_AUTH", "MLFLOW_TRACKING_INSECURE_TLS", "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH", "MLFLOW_ENABLE_WORKSPACES", "MLFLOW_WORKSPACE",
)  # fmt: skip
TIMEOUT_SECONDS = 5.0


def current_version(store_uri: str, model_uri: str) -> tuple[str, str] | None:
    """(version, run id) that ``models:/name@alias`` or ``models:/name/3`` names now on
    the tracking server ``store_uri``; None when this cannot tell (then ask MLflow).
    """
    if not store_uri.startswith(("http://", "https://")):
        return None
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
    return _from_server(store_uri, name, alias, number)


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
