"""The dashboard's door, without a store: Basic credentials parsed safely, 401 with a
challenge, security headers on every response, the page within its Content-Security-Policy.
"""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from fastapi.testclient import TestClient

from innflow.dashboard.access import basic_credentials, token_check
from innflow.dashboard.app import create_app
from innflow.dashboard.page import render
from innflow.errors import TrackingError

DATA = {
    "model": "m", "tracking_uri": "http://bob:***@mlflow:5000", "generated_at": "now",
    "versions": [{"version": "1", "aliases": "staging", "gate": "passed", "model_kind": "lr",
                  "test_roc_auc": "0.8", "test_brier": "0.1", "approved_by": "dana",
                  "run_id": "abc" * 8}],
    "moves": [], "monitoring": [], "simulations": [],
}  # fmt: skip


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.mark.parametrize(
    "header",
    [None, "", "Basic", "Basic !!!not-base64", "Bearer abc", "Basic " + "w7/+" * 3,
     "Basic " + base64.b64encode(b"no-colon").decode(), "Basic \xff\xfe",
     "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()],
)  # fmt: skip
def test_malformed_authorization_is_no_credentials(header: str | None) -> None:
    assert basic_credentials(header) is None


def test_basic_credentials_keep_colons_in_the_password() -> None:
    assert basic_credentials(_basic("ana", "a:b:c")["Authorization"]) == ("ana", "a:b:c")


def test_token_check_compares_the_password_only() -> None:
    check = token_check("s3cret-token")
    assert check("anyone", "s3cret-token") and not check("anyone", "s3cret-tokem")
    assert not check("anyone", "") and not check("anyone", "s3cret-token\u00e9")


@pytest.fixture
def client() -> TestClient:
    app = create_app(lambda: DATA, token_check("tok"), refresh_seconds=0)
    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("path", ["/", "/api/data", "/favicon.ico", "/nope"])
def test_unauthenticated_is_401_with_a_challenge(client: TestClient, path: str) -> None:
    for headers in ({}, _basic("ana", "wrong"), {"Authorization": b"Basic \xff\xfe"}):
        response = client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith('Basic realm="innflow dashboard"')
        assert "staging" not in response.text


def test_signed_in_gets_the_page_and_the_data(client: TestClient) -> None:
    assert client.get("/", headers=_basic("ana", "tok")).status_code == 200
    assert client.get("/api/data", headers=_basic("ana", "tok")).json()["model"] == "m"


def test_ping_is_open_for_health_checks_and_says_nothing(client: TestClient) -> None:
    assert client.get("/ping").json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/", "/api/data", "/ping", "/nope"])
def test_security_headers_on_every_response(client: TestClient, path: str) -> None:
    for headers in ({}, _basic("ana", "tok")):
        response = client.get(path, headers=headers)
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"


def test_the_page_needs_no_unsafe_inline(client: TestClient) -> None:
    """Every <style> is allowed by its hash, no inline script or style attribute is left in
    the HTML (charts are SVG images: their own styles do not run in the page).
    """
    response = client.get("/", headers=_basic("ana", "tok"))
    page, csp = response.text, response.headers["Content-Security-Policy"]
    styles = re.findall(r"<style>(.*?)</style>", page, flags=re.S)
    assert styles
    for style in styles:
        digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert "<script" not in page and " style=" not in page and "<svg" not in page
    assert "data:image/svg+xml;base64," in page


def test_store_errors_never_show_uri_credentials() -> None:
    def broken() -> dict:
        raise TrackingError("tracking server http://bob:Sup3rSecret@mlflow:5000 cannot be reached")

    client = TestClient(create_app(broken, token_check("tok"), refresh_seconds=0))
    for path in ("/", "/api/data"):
        response = client.get(path, headers=_basic("ana", "tok"))
        assert response.status_code == 503
        assert "Sup3rSecret" not in response.text and "bob:***@mlflow" in response.text


def test_a_check_that_cannot_reach_the_tracking_server_is_a_503() -> None:
    def unreachable(user: str, password: str) -> bool:
        raise TrackingError("tracking server http://bob:Sup3rSecret@mlflow:5000 cannot be reached")

    client = TestClient(create_app(lambda: DATA, unreachable, refresh_seconds=0))
    response = client.get("/", headers=_basic("ana", "tok"))
    assert response.status_code == 503 and "Sup3rSecret" not in response.text


def test_render_alone_embeds_charts_as_images() -> None:
    assert "data:image/svg+xml;base64," in render(DATA)
