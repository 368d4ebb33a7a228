"""`create_app(collect, check)`: the dashboard's web app. ``collect`` returns the page's
data; it is called at most once per ``refresh_seconds`` (the store is not hit per request),
and a store that cannot be read gives a 503 page saying so, never a 500. Every route but
``/ping`` wants HTTP Basic credentials that ``check`` accepts; every response carries the
security headers (innflow.dashboard.access).
"""

from __future__ import annotations

import hashlib
import html
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse

from innflow.dashboard.access import REALM, Check, basic_credentials, security_headers
from innflow.dashboard.page import STYLES, render
from innflow.errors import InnflowError
from innflow.redaction import uri_credentials

Collect = Callable[[], dict[str, Any]]
OPEN_PATHS = frozenset({"/ping"})  # health checks: says "ok" and nothing else
SIGNED_IN_FOR = 60.0  # seconds a checked user:password is trusted before asking again


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


class _SignedIn:
    """Credentials ``check`` accepted lately (by digest), so that a page view does not cost
    the tracking server a sign-in per request. Refusals are never remembered.
    """

    def __init__(self, check: Check, seconds: float) -> None:
        self.check, self.seconds = check, seconds
        self.lock = threading.Lock()
        self.until: dict[bytes, float] = {}

    def __call__(self, user: str, password: str) -> bool:
        key = hashlib.sha256(f"{user}\0{password}".encode("utf-8", "surrogatepass")).digest()
        now = time.monotonic()
        with self.lock:
            if self.until.get(key, 0.0) > now:
                return True
        if not self.check(user, password):
            return False
        with self.lock:
            self.until = {k: t for k, t in self.until.items() if t > now}
            self.until[key] = now + self.seconds
        return True


def unavailable(error: Exception) -> str:
    """The 503 text: the error, with any URI password masked."""
    return uri_credentials(f"tracking store unavailable: {error}")


def create_app(collect: Collect, check: Check, refresh_seconds: float = 15.0) -> FastAPI:
    """The dashboard: ``/`` (HTML), ``/api/data`` (the same data as JSON), ``/ping``."""
    app = FastAPI(title="innflow dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    cache = _Cache(collect, refresh_seconds)
    signed_in = _SignedIn(check, SIGNED_IN_FOR)
    headers = security_headers(STYLES)

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]):
        response = await _admitted(request) or await call_next(request)
        response.headers.update(headers)
        return response

    async def _admitted(request: Request) -> Response | None:
        """None when the request may go on; else the 401 (or 503) to send instead."""
        if request.url.path in OPEN_PATHS:
            return None
        given = basic_credentials(request.headers.get("authorization"))
        try:
            if given is not None and await run_in_threadpool(signed_in, *given):
                return None
        except InnflowError as e:
            return PlainTextResponse(unavailable(e), status_code=503)
        return PlainTextResponse(
            "sign in to the innflow dashboard", 401, {"WWW-Authenticate": REALM}
        )

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
