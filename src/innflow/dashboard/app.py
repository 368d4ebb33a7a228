"""`create_app(collect)`: the dashboard's web app. ``collect`` returns the page's data; it is
called at most once per ``refresh_seconds`` (the store is not hit per request), and a store
that cannot be read gives a 503 page saying so, never a 500.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse

from innflow.dashboard.page import render
from innflow.errors import InnflowError

Collect = Callable[[], dict[str, Any]]


class _Cache:
    """The last collected data, refreshed when older than ``seconds``."""

    def __init__(self, collect: Collect, seconds: float) -> None:
        self.collect, self.seconds = collect, seconds
        self.lock = threading.Lock()
        self.data: dict[str, Any] | None = None
        self.at = 0.0

    def get(self) -> dict[str, Any]:
        with self.lock:
            if self.data is None or time.monotonic() - self.at > self.seconds:
                self.data, self.at = self.collect(), time.monotonic()
            return self.data


def create_app(collect: Collect, refresh_seconds: float = 15.0) -> FastAPI:
    """The dashboard: ``/`` (HTML), ``/api/data`` (the same data as JSON), ``/ping``."""
    app = FastAPI(title="innflow dashboard", docs_url=None, redoc_url=None)
    cache = _Cache(collect, refresh_seconds)

    def unavailable(error: Exception) -> str:
        return f"tracking store unavailable: {error}"

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        try:
            return HTMLResponse(render(cache.get()))
        except InnflowError as e:
            body = f"<!doctype html><title>innflow</title><p>{html.escape(unavailable(e))}</p>"
            return HTMLResponse(body, status_code=503)

    @app.get("/api/data")
    def data() -> JSONResponse:
        try:
            return JSONResponse(cache.get())
        except InnflowError as e:
            return JSONResponse({"error": unavailable(e)}, status_code=503)

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/favicon.ico")
    def favicon() -> HTMLResponse:  # browsers ask; a 404 would show as a console error
        return HTMLResponse(status_code=204)

    return app
