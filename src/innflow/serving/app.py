"""`create_app(models, settings, source)`: thin FastAPI routes over a ``ScoringService``.

The routes translate HTTP to the service and back (bounded bodies, headers, status codes);
every rule lives in the service (serving/service.py), which tests drive without HTTP. One
exception handler turns a ``RequestError`` into its 4xx with a JSON body naming the problem
(and the row and field where there is one): no handler lets an exception become a 500.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic_core import to_json

from innflow import __version__
from innflow.serving import core, parsing
from innflow.serving.limits import bounded_body
from innflow.serving.routing import Router
from innflow.serving.service import (
    Answer,
    ModelSource,
    RequestError,
    ScoringService,
    bearer_matches,
)
from innflow.serving.settings import ServiceSettings


class NumpyJSONResponse(JSONResponse):
    """JSON through orjson with numpy arrays (an answer's probabilities stay arrays until
    here: no per-row Python floats for 1,000 bookings). FastAPI's own ORJSONResponse is
    deprecated in the locked FastAPI, and its Pydantic serialization knows no numpy.
    """

    def render(self, content: Any) -> bytes:
        """Orjson with numpy support (NaN and infinities as null, which JSON cannot carry);
        a type orjson does not know (an explanation's value) goes through pydantic-core.
        """
        try:
            return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
        except TypeError:
            return to_json(content)


def _service(request: Request) -> ScoringService:
    return request.app.state.service


Service = Annotated[ScoringService, Depends(_service)]


def create_app(
    models: core.LoadedModel | Router | ScoringService,
    settings: ServiceSettings | None = None,
    source: ModelSource | None = None,
) -> FastAPI:
    """The scoring app: MLflow's /invocations, innflow's /predict, /admin/reload, /ping,
    /health, /version, /metadata, /metrics and an OpenAPI document typed by the model.
    """
    service = models if isinstance(models, ScoringService) else ScoringService(
        models, settings, source
    )  # fmt: skip

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.start()
        yield
        service.stop()

    app = FastAPI(
        title="innflow scoring service", version=__version__, lifespan=lifespan,
        default_response_class=NumpyJSONResponse,
    )  # fmt: skip
    app.state.service = service
    app.state.metrics = service.metrics  # kept for callers that read the registry
    app.state.notes = service.notes

    @app.exception_handler(RequestError)
    async def refused(request: Request, error: RequestError) -> Response:
        return JSONResponse(error.body, status_code=error.status, headers=error.headers)

    async def answer(endpoint: str, request: Request, explain: bool) -> Response:
        started = time.perf_counter()
        response: Response
        answered: Answer | None = None
        try:
            limit = service.settings.max_body_bytes
            async with bounded_body(request, limit, service.budget) as body:
                content_type = request.headers.get("content-type")
                key = request.headers.get("x-routing-key")
                request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
                if explain:  # may wait for the logged model: never on the event loop
                    scoring = await asyncio.to_thread(
                        service.read_to_explain, content_type, body, key
                    )
                else:
                    scoring = service.read(content_type, body, key)
                if service.blocks(scoring, explain):
                    answered = await asyncio.to_thread(
                        service.score, endpoint, scoring, request_id, explain
                    )
                else:
                    answered = service.score(endpoint, scoring, request_id, explain)
            response = NumpyJSONResponse(answered.body)
        except RequestError as e:
            response = JSONResponse(e.body, status_code=e.status, headers=e.headers)
        service.count(endpoint, response.status_code, time.perf_counter() - started)
        chosen = answered.variant if answered is not None else service.router.live[0]
        response.headers["X-Model-Version"] = chosen.model.version
        response.headers["X-Variant"] = chosen.name
        if answered is not None and answered.ignored:
            # accepted as MLflow's server does, but said: a client may not expect it
            response.headers["X-Ignored-Columns"] = ",".join(answered.ignored)
        return response

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        """MLflow's scoring protocol: {"predictions": [[p(stay), p(cancel)], ...]}."""
        return await answer("invocations", request, False)

    @app.post("/predict")
    async def predict(request: Request, explain: bool = False) -> Response:
        """Per booking: probability of cancellation, decision at the model's threshold,
        version and variant; with explain=true the top contributing features (at most
        ``max_explain_rows`` bookings a request).
        """
        return await answer("predict", request, explain)

    @app.post("/admin/reload")
    def admin_reload(request: Request, service: Service) -> Response:
        """Reload now (bearer token from the service's settings)."""
        if service.token is None:
            return JSONResponse({"error": "reload endpoint disabled (no admin token)"}, 403)
        if not bearer_matches(request.headers.getlist("authorization"), service.token):
            return JSONResponse(
                {"error": "wrong, missing or malformed bearer token"}, 401,
                headers={"WWW-Authenticate": "Bearer"},
            )  # fmt: skip
        outcome = service.reload(asked=True)
        return JSONResponse(outcome, 200 if outcome["outcome"] in ("loaded", "unchanged") else 409)

    @app.get("/ping")
    def ping() -> Response:
        """Liveness (MLflow-compatible)."""
        return Response("\n", media_type="application/json")

    @app.get("/health")
    def health(service: Service) -> dict[str, Any]:
        """Ready or degraded (see ``ScoringService.health``)."""
        return service.health()

    @app.get("/version")
    def version(service: Service) -> dict[str, str]:
        """The innflow version and the primary model's."""
        return {"innflow": __version__, "model_version": service.router.live[0].model.version}

    @app.get("/metadata")
    def metadata(service: Service) -> dict[str, Any]:
        """Registered name, version, alias, run id, threshold, input columns, signature."""
        return service.metadata()

    @app.get("/metrics")
    def prometheus(service: Service) -> Response:
        """Prometheus exposition."""
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        """The OpenAPI document, request bodies typed by the model serving now (a reload
        may change its input columns).
        """
        document = get_openapi(
            title=app.title, version=app.version, routes=app.routes, description=app.description
        )
        primary = service.router.live[0].model
        record = (
            primary.general.schema.json_schema(parsing.IGNORED_FIELDS)
            if primary.general is not None else None
        )  # fmt: skip
        answers = (
            (parsing.REGRESSION_INVOCATIONS_RESPONSE, parsing.REGRESSION_PREDICT_RESPONSE)
            if primary.regression else (parsing.INVOCATIONS_RESPONSE, parsing.PREDICT_RESPONSE)
        )  # fmt: skip
        for path, response in zip(("/invocations", "/predict"), answers, strict=True):
            operation = document["paths"][path]["post"]
            operation["requestBody"] = parsing.request_body(
                primary.columns, record, primary.contract
            )
            operation["responses"]["200"]["content"]["application/json"]["schema"] = response
        return document

    app.openapi = openapi  # type: ignore[method-assign]
    return app
