"""`create_app(model_source, settings)`: the FastAPI application around the prediction core.

Every failure a client can cause is a 4xx with a JSON body naming the problem (and the row
and field where there is one); the handlers never let an exception become a 500.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from innflow import __version__
from innflow.serving import core, parsing
from innflow.serving.metrics import ServiceMetrics
from innflow.serving.prediction_log import PredictionLog


@dataclass(frozen=True)
class Settings:
    """Service limits."""

    max_body_bytes: int = 5_000_000
    max_rows: int = 100_000
    prediction_log: Path | None = None


def create_app(model: core.LoadedModel, settings: Settings | None = None) -> FastAPI:
    """An app serving ``model`` (already loaded: loading is the caller's side effect)."""
    settings = settings or Settings()
    metrics = ServiceMetrics()
    d = model.description
    metrics.model.labels(
        d.get("name") or "", model.version, d.get("alias") or "", d.get("run_id") or ""
    ).set(1)
    metrics.reloads.labels("loaded").inc()
    log = (
        PredictionLog(settings.prediction_log, metrics.log_dropped.inc)
        if settings.prediction_log is not None
        else None
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if log is not None:
            log.start()
        yield
        if log is not None:
            log.stop()

    app = FastAPI(title="innflow scoring service", version=__version__, lifespan=lifespan)
    app.state.model, app.state.metrics = model, metrics

    async def read_frame(request: Request):
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_body_bytes:
            raise parsing.RequestError(413, f"body over {settings.max_body_bytes} bytes")
        body = await request.body()
        if len(body) > settings.max_body_bytes:
            raise parsing.RequestError(413, f"body over {settings.max_body_bytes} bytes")
        frame = parsing.parse(request.headers.get("content-type"), body)
        if len(frame) > settings.max_rows:
            raise parsing.RequestError(
                413, f"{len(frame)} rows; at most {settings.max_rows} a request"
            )
        errors = core.check(frame, model.columns)
        if errors:
            raise parsing.RequestError(400, "invalid input", [e.to_dict() for e in errors])
        return frame

    def finish(endpoint: str, started: float, response: Response) -> Response:
        metrics.requests.labels(endpoint, str(response.status_code)).inc()
        metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
        response.headers["X-Model-Version"] = model.version
        return response

    def record(
        frame: pd.DataFrame, proba: np.ndarray, decisions: np.ndarray, request: Request
    ) -> None:
        if log is None:
            return
        rows = frame[model.columns].copy()
        rows["probability"] = proba[:, 1]
        rows["likely_cancel"] = decisions
        rows["model_version"] = model.version
        rows["variant"] = "main"
        rows["request_id"] = request.headers.get("x-request-id") or uuid.uuid4().hex
        rows["scored_at"] = pd.Timestamp.now(tz="UTC")
        log.append(rows)

    def count(decisions: np.ndarray) -> None:
        metrics.rows.inc(len(decisions))
        cancel = int(decisions.sum())
        metrics.decisions.labels("likely_cancel").inc(cancel)
        metrics.decisions.labels("likely_stay").inc(len(decisions) - cancel)

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        """MLflow's scoring protocol: {"predictions": [[p(stay), p(cancel)], ...]}."""
        started = time.perf_counter()
        try:
            frame = await read_frame(request)
            proba, decisions = core.score(model, frame)
        except parsing.RequestError as e:
            return finish("invocations", started, JSONResponse(e.body, status_code=e.status))
        count(decisions)
        record(frame, proba, decisions, request)
        return finish("invocations", started, JSONResponse({"predictions": proba.tolist()}))

    @app.post("/predict")
    async def predict(request: Request, explain: bool = False) -> Response:
        """Per booking: probability of cancellation, decision at the model's threshold, version."""
        started = time.perf_counter()
        try:
            frame = await read_frame(request)
            proba, decisions = core.score(model, frame)
            why = core.reasons(model, frame) if explain else None
        except parsing.RequestError as e:
            return finish("predict", started, JSONResponse(e.body, status_code=e.status))
        count(decisions)
        record(frame, proba, decisions, request)
        results: list[dict[str, Any]] = [
            {"probability": float(p), "likely_cancel": bool(c), "model_version": model.version}
            for p, c in zip(proba[:, 1], decisions, strict=True)
        ]
        if why is not None:
            for result, top in zip(results, why, strict=True):
                result["reasons"] = top
        body = {"threshold": model.threshold, "predictions": results}
        return finish("predict", started, JSONResponse(body))

    @app.get("/ping")
    def ping() -> Response:
        """Liveness (MLflow-compatible)."""
        return Response("\n", media_type="application/json")

    @app.get("/health")
    def health() -> dict[str, Any]:
        """Ready once a model is loaded."""
        return {"status": "ready", "model_version": model.version}

    @app.get("/version")
    def version() -> dict[str, str]:
        """Innflow's version and the model's."""
        return {"innflow": __version__, "model_version": model.version}

    @app.get("/metadata")
    def metadata() -> dict[str, Any]:
        """Registered name, version, alias, run id, threshold, input columns, signature."""
        keys = ("name", "version", "alias", "run_id", "uri", "signature")
        return {
            **{k: d.get(k) for k in keys},
            "threshold": model.threshold,
            "columns": model.columns,
        }

    @app.get("/metrics")
    def prometheus() -> Response:
        """Prometheus exposition."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
