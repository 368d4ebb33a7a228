"""`innflow dashboard`: the page over a real store, and in a real (headless) browser, behind
sign-in (here the INNFLOW_DASHBOARD_TOKEN kind; the tracking server's users: tests/e2e).
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from innflow import config
from innflow.errors import ConfigError
from innflow.workflows.dashboard import build_app

ARTIFACTS = Path(__file__).resolve().parents[2] / "outputs" / "test-artifacts"
GATE = ["registry.gate.min_roc_auc=0.7", "registry.gate.slice_floor_roc_auc=0.5"]


TOKEN = "dashboard-test-token"
SIGNED_IN = {"Authorization": "Basic " + base64.b64encode(f"ana:{TOKEN}".encode()).decode()}


def _set(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def _client(app, **kwargs) -> TestClient:
    return TestClient(app, headers=SIGNED_IN, **kwargs)


def test_no_token_and_no_authenticating_server_is_refused(workdir) -> None:
    with pytest.raises(ConfigError, match="INNFLOW_DASHBOARD_TOKEN"):
        build_app(config.load(None, workdir.overrides()))
    with pytest.raises(ConfigError, match="INNFLOW_DASHBOARD_TOKEN"):
        build_app(config.load(None, workdir.overrides()), token="   ")


def test_empty_store_says_what_to_do(workdir) -> None:
    app = build_app(config.load(None, workdir.overrides()), refresh_seconds=0, token=TOKEN)
    assert TestClient(app).get("/").status_code == 401
    client = _client(app)
    page = client.get("/")
    assert page.status_code == 200
    assert "No registered versions yet" in page.text and "innflow pipeline" in page.text
    assert client.get("/api/data").json()["versions"] == []


@pytest.mark.slow
def test_versions_aliases_and_history_after_the_pipeline(workdir, cli) -> None:
    staged = cli("pipeline", "--json", *_set(workdir.overrides("lightgbm", *GATE)))
    assert staged.code == 0, staged.stderr
    version = json.loads(staged.stdout)["version"]
    promoted = cli("promote", version, "--to", "production", "--approved-by", "dana",
                   "--reason", "beats baseline")  # fmt: skip
    assert promoted.code == 0, promoted.stderr
    client = _client(build_app(config.load(None, workdir.overrides()), 0, token=TOKEN))
    data = client.get("/api/data").json()
    assert [v["version"] for v in data["versions"]] == [version]
    assert set(data["versions"][0]["aliases"].split(",")) == {"staging", "production"}
    assert [(m["alias"], m["to_version"]) for m in data["moves"]] == [
        ("staging", version), ("production", version),
    ]  # fmt: skip
    page = client.get("/").text
    assert "production &rarr; v1" in page and "dana" in page and "beats baseline" in page
    assert "data:image/svg+xml;base64," in page  # the metrics-by-version chart


@pytest.mark.slow
def test_unreachable_store_is_a_503_not_a_500_and_shows_no_credentials(
    workdir, monkeypatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = "tracking.uri=http://bob:Sup3rSecret@127.0.0.1:9"
    app = build_app(config.load(None, [*workdir.overrides(), uri]), token=TOKEN)
    client = _client(app, raise_server_exceptions=False)
    page = client.get("/")
    assert page.status_code == 503 and "cannot be reached" in page.text
    data = client.get("/api/data")
    assert data.status_code == 503
    assert "Sup3rSecret" not in page.text + data.text and "bob:***@127.0.0.1:9" in page.text
    assert client.get("/ping").status_code == 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="apt-get install chromium")
def test_page_renders_in_headless_chromium_without_console_errors(workdir, cli, tmp_path) -> None:
    import uvicorn

    assert cli("pipeline", *_set(workdir.overrides("lightgbm", *GATE))).code == 0
    port = _free_port()
    app = build_app(config.load(None, workdir.overrides()), token=TOKEN)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        url = f"http://ana:{TOKEN}@127.0.0.1:{port}/"  # Basic credentials, as a user types them
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        browser = subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={tmp_path / 'chromium'}", "--enable-logging=stderr", "--v=0",
             "--virtual-time-budget=3000", "--dump-dom", url],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        # the screenshot is kept as a test artifact (outputs/ is git-ignored)
        shot = ARTIFACTS / "dashboard.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        shot.unlink(missing_ok=True)
        subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1280,1800",
             "--virtual-time-budget=3000", f"--screenshot={shot}", url],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert shot.exists() and shot.stat().st_size > 10_000  # a rendered page, not a blank one
    assert browser.returncode == 0, browser.stderr[-2000:]
    dom = browser.stdout
    assert "Versions and aliases" in dom and "staging" in dom and "data:image/svg+xml" in dom
    console = [line for line in browser.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console
