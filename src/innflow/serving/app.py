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
from innflow.serving import core, open_inference, parsing
from innflow.serving.limits import bounded_body
from innflow.serving.open_inference import HEADER_LENGTH
from innflow.serving.routing import Router
from innflow.serving.service import (
    Answer,
    ModelSource,
    RequestError,
    ScoringService,
    bearer_matches,
)
from innflow.serving.settings import ServiceSettings

WEBHOOK_BYTES = 1_000_000  # an MLflow event is a few hundred bytes


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
    """The scoring app: MLflow's /invocations, innflow's /predict, the Open Inference
    Protocol's /v2 routes, /admin/reload, /ping, /health, /version, /metadata, /metrics and
    an OpenAPI document typed by the model.
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

    async def infer(request: Request, name: str, version: str | None) -> Response:
        """An Open Inference Protocol request through the same checks, routing, log,
        shadows and metrics as /invocations.
        """
        started = time.perf_counter()
        response: Response
        answered: Answer | None = None
        try:
            service.require_model(name)
            async with bounded_body(request, service.settings.max_body_bytes,
                                    service.budget) as body:  # fmt: skip
                if not body:
                    raise RequestError(400, "empty body")
                models = [v.model for v in service.router.variants]
                read = open_inference.read(body, request.headers.get(HEADER_LENGTH), models)
                scoring = service.route(read.batch, request.headers.get("x-routing-key"), version)
                request_id = read.id or request.headers.get("x-request-id") or uuid.uuid4().hex
                if service.blocks(scoring, False):
                    answered = await asyncio.to_thread(service.score, "infer", scoring, request_id)
                else:
                    answered = service.score("infer", scoring, request_id)
            assert answered.predicted is not None
            shaped, tail = open_inference.answer(
                read, name, answered.variant.model.version, answered.predicted
            )
            if tail:
                header = orjson.dumps(shaped)
                response = Response(
                    header + tail, media_type="application/octet-stream",
                    headers={"Inference-Header-Content-Length": str(len(header))},
                )  # fmt: skip
            else:
                response = NumpyJSONResponse(shaped)
        except RequestError as e:
            response = JSONResponse(e.body, status_code=e.status, headers=e.headers)
        service.count("infer", response.status_code, time.perf_counter() - started)
        if answered is not None:
            response.headers["X-Model-Version"] = answered.variant.model.version
            response.headers["X-Variant"] = answered.variant.name
        return response

    @app.get("/v2")
    def v2_server() -> dict[str, Any]:
        """Open Inference Protocol: server metadata."""
        return {"name": "innflow", "version": __version__, "extensions": ["binary_tensor_data"]}

    @app.get("/v2/health/live")
    def v2_live() -> dict[str, bool]:
        """Open Inference Protocol: liveness."""
        return {"live": True}

    @app.get("/v2/health/ready")
    def v2_ready() -> dict[str, bool]:
        """Open Inference Protocol: readiness (a model is loaded from the start)."""
        return {"ready": True}

    @app.get("/v2/models/{name}")
    def v2_model(name: str, service: Service) -> dict[str, Any]:
        """Open Inference Protocol: the model's inputs (one tensor per column) and outputs."""
        return service.v2_model(name)

    @app.get("/v2/models/{name}/versions/{version}")
    def v2_model_version(name: str, version: str, service: Service) -> dict[str, Any]:
        """Open Inference Protocol: one served version's metadata."""
        return service.v2_model(name, version)

    @app.get("/v2/models/{name}/ready")
    def v2_model_ready(name: str, service: Service) -> dict[str, Any]:
        """Open Inference Protocol: model readiness."""
        service.v2_model(name)
        return {"name": name, "ready": True}

    @app.get("/v2/models/{name}/versions/{version}/ready")
    def v2_version_ready(name: str, version: str, service: Service) -> dict[str, Any]:
        """Open Inference Protocol: readiness of one served version."""
        service.v2_model(name, version)
        return {"name": name, "ready": True}

    @app.post("/v2/models/{name}/infer")
    async def v2_infer(name: str, request: Request) -> Response:
        """Open Inference Protocol: columnar tensors in, the router's variant answers."""
        return await infer(request, name, None)

    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def v2_infer_version(name: str, version: str, request: Request) -> Response:
        """Open Inference Protocol: the served variant of ``version`` answers."""
        return await infer(request, name, version)

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

    @app.post("/webhooks/mlflow")
    async def mlflow_webhook(request: Request, service: Service) -> Response:
        """MLflow's registry webhook: a signed alias move reloads the service at once."""
        async with bounded_body(request, WEBHOOK_BYTES, service.budget) as body:
            status, outcome = service.webhook(request.headers, body)
        return JSONResponse(outcome, status)

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
