"""Sign-in against the tracking server's basic-auth users, for other innflow services (the
dashboard): a user is let in when the server accepts their credentials and lets them read
the registered model the service shows.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.parse
import urllib.request

from innflow.errors import TrackingError
from innflow.redaction import uri_credentials

_TIMEOUT = 10.0


def is_server(uri: str) -> bool:
    """Whether ``uri`` is a tracking server (http/https), not a local or database store."""
    return urllib.parse.urlsplit(uri).scheme in ("http", "https")


def _status(url: str, authorization: str | None) -> int:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if authorization:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except (urllib.error.URLError, OSError) as e:
        raise TrackingError(uri_credentials(f"tracking server {url} cannot be reached: {e}")) from e


def _model_url(uri: str, model: str) -> str:
    base = urllib.parse.urlsplit(uri)
    host = base.netloc.rsplit("@", 1)[-1]  # credentials in the URI are not the user's
    query = urllib.parse.urlencode({"name": model})
    path = f"{base.path.rstrip('/')}/api/2.0/mlflow/registered-models/get"
    return urllib.parse.urlunsplit((base.scheme, host, path, query, ""))


def server_requires_sign_in(uri: str, model: str) -> bool:
    """Whether the server refuses an anonymous read of ``model`` (basic-auth app on)."""
    return _status(_model_url(uri, model), None) == 401


def can_read_model(uri: str, model: str, user: str, password: str) -> bool:
    """Whether the server knows ``user`` with ``password`` and lets them read ``model``
    (a model not registered yet counts as readable: 404 comes after the permission check).
    """
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    status = _status(_model_url(uri, model), f"Basic {token}")
    if status in (200, 404):
        return True
    if status in (401, 403):
        return False
    raise TrackingError(f"tracking server answered {status} to a sign-in check")
