"""Which tracking store innflow talks to, and how its failures read.

The embedded SQLite store is the default; a central server is one environment variable
away. Every error from the store is turned into one line a user can act on.
"""

from __future__ import annotations

import fcntl
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from innflow.errors import TrackingError

DEFAULT_STORE = "sqlite:///mlflow.db"


def resolve_store(configured: str | None) -> str:
    """Config's tracking URI, else MLFLOW_TRACKING_URI, else the embedded SQLite store.

    The deprecated file store is refused: it cannot hold a model registry and is not safe
    for concurrent runs.
    """
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_STORE
    if uri.startswith("file:") or "://" not in uri:
        raise TrackingError(
            f"tracking store {uri!r} is a file store, which innflow does not use; "
            f"use {DEFAULT_STORE} or an http(s):// tracking server"
        )
    return uri


def sqlite_path(uri: str) -> str | None:
    """The database file of an embedded store URI; None for a server or an in-memory store."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri.removeprefix("sqlite:///").partition("?")[0]
    return None if path in ("", ":memory:") else path


def store_identity(uri: str) -> str:
    """The store URI with a relative SQLite path made absolute: the same store whatever
    the working directory (caches are keyed by it).
    """
    path = sqlite_path(uri)
    if path is not None and not path.startswith("/"):
        mark, query = uri.partition("?")[1:]
        return f"sqlite:///{os.path.abspath(path)}{mark}{query}"
    return uri


def connect(configured: str | None) -> str:
    """Point MLflow at the resolved store and return its URI."""
    import mlflow

    uri = resolve_store(configured)
    # MLflow's defaults retry an unreachable server for minutes; a command should fail in
    # seconds with a clear message. Explicit settings in the environment still win.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    # Against a server MLflow writes "View run ... at: URL" to stdout when a run ends, which
    # would break `--json` output; innflow reports run ids itself.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    # Downloads through a server draw a tqdm bar per call (the gate's, reproduce's), tens of
    # lines of noise in logs; innflow shows its own steps.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(uri)
    if uri.startswith("sqlite:///"):
        _open_embedded_store(uri)
    return uri


def _open_embedded_store(uri: str) -> None:
    """Create or upgrade the SQLite store while holding a lock beside it.

    Several innflow processes opening a new SQLite store at once all run MLflow's schema
    migrations together; the losers fail with tracebacks and the store is left half-migrated
    (`_alembic_tmp_tags already exists`) and unusable. Later writers are safe: MLflow's
    SQLite sessions wait up to 20 s for the write lock.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient
    from sqlalchemy.exc import SQLAlchemyError

    file = sqlite_path(uri)
    if file is None:
        return
    path = Path(file)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            client = MlflowClient(uri)
            client.search_experiments(max_results=1)
            client.search_registered_models(max_results=1)
        except (MlflowException, SQLAlchemyError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise TrackingError(f"SQLite store {path} cannot be opened: {first}") from e
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def mlflow_uri() -> str:
    """The tracking URI in use."""
    import mlflow

    return mlflow.get_tracking_uri()


_UNREACHABLE = (
    "Max retries exceeded", "Connection refused", "Connection aborted", "Connection reset",
    "Read timed out", "RemoteDisconnected", "Failed to establish a new connection",
)  # fmt: skip


def authenticated_user() -> str | None:
    """Who the tracking server says these credentials are (its basic-auth app's
    ``users/current``), or None for a store that authenticates nobody (SQLite, a server
    without auth). The server is asked rather than MLFLOW_TRACKING_USERNAME trusted: a
    server without auth accepts any name.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request
    from requests.exceptions import RequestException

    uri = mlflow_uri()
    if not uri.startswith(("http://", "https://")):
        return None
    try:
        response = http_request(get_default_host_creds(uri), "/api/2.0/mlflow/users/current", "GET")
    except (MlflowException, RequestException) as e:
        raise TrackingError(f"cannot ask who is calling: {_reason(e)}") from e
    if response.status_code == 404:
        return None  # no auth app on this server
    if response.status_code != 200:
        raise TrackingError(f"cannot ask who is calling: {_reason(_http_error(response))}")
    return str(response.json()["user"]["username"])


def _http_error(response: Any) -> str:
    return f"error code {response.status_code}: {response.text[:200]}"


def _reason(error: Any) -> str:
    """An MLflow error in one line; an unreachable server said plainly."""
    message = str(getattr(error, "message", error))
    code = getattr(error, "error_code", "")
    # An artifact transfer fails as a requests HTTPError, with the status on its response.
    status = getattr(getattr(error, "response", None), "status_code", None)
    if status in (401, 403):
        message = f"error code {status}"
    if any(sign in message for sign in _UNREACHABLE):
        return f"tracking server {mlflow_uri()} cannot be reached"
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    who = f"user {user!r}" if user else "an anonymous user"
    if code == "UNAUTHENTICATED" or "error code 401" in message:
        return (
            f"tracking server {mlflow_uri()} refused the credentials of {who} "
            "(MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD)"
        )
    if code == "PERMISSION_DENIED" or "error code 403" in message:
        return f"permission denied for {who} on {mlflow_uri()}"
    return message.strip().splitlines()[0] if message.strip() else type(error).__name__


def store_failure(error: BaseException) -> TrackingError | None:
    """The one-line TrackingError (exit 2) for an error that is the tracking store failing:
    unreachable or dying, refusing the credentials (401) or the permission (403), or any
    other refusal MLflow raised; None for anything else, which is a bug and keeps its
    traceback.

    The CLI asks this about whatever reaches it, so every command maps every store failure
    the same way, including those no workflow anticipated (exit 1 would read as "the
    reproduction differs" to CI and schedulers). The error and its causes are examined.
    """
    import sys

    if "mlflow" not in sys.modules:
        return None  # nothing has talked to a store
    from mlflow.exceptions import MlflowException
    from requests.exceptions import RequestException

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, (MlflowException, RequestException)):
            return TrackingError(f"tracking store failed: {_reason(seen)}")
        seen = seen.__cause__
    return None


@contextmanager
def _known_mlflow_noise() -> Iterator[None]:
    """Silence MLflow messages that are expected here and would only alarm users."""
    env_logger = logging.getLogger("mlflow.utils.environment")
    level = env_logger.level
    with warnings.catch_warnings():
        # MLflow registers its local-file source twice and warns about its own ambiguity.
        warnings.filterwarnings("ignore", message=".*can be interpreted in multiple ways.*")
        # Integer columns stay integers on purpose: a float where a count belongs is bad input.
        warnings.filterwarnings("ignore", message=".*Inferred schema contains integer column.*")
        # uv venvs have no pip; MLflow warns that conda.yaml lists it unversioned.
        env_logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            env_logger.setLevel(level)
