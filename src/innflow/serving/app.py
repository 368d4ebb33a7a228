"""`create_app(model_source, settings)`: the FastAPI application around the prediction core.

Every failure a client can cause is a 4xx with a JSON body naming the problem (and the row
and field where there is one); the handlers never let an exception become a 500.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import json
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic_core import to_json

from innflow import __version__
from innflow.serving import core, decoding, parsing
from innflow.serving.degradation import Degradation
from innflow.serving.general import ModelFailed
from innflow.serving.limits import BodyBudget, bounded_body
from innflow.serving.metrics import ServiceMetrics
from innflow.serving.prediction_log import PredictionLog
from innflow.serving.routing import Router, Variant


class FastJSONResponse(JSONResponse):
    """JSON through orjson, numpy arrays included: a 1,000-booking answer in 0.1 ms
    (pydantic-core 0.24 ms from lists, the stdlib several times that), floats in their
    shortest round-trip form (what MLflow sends), the same bytes as pydantic-core's.
    """

    def render(self, content: Any) -> bytes:
        """Serialize (NaN and infinities as null, which JSON cannot carry); a type orjson
        does not know (an explanation's value) goes through pydantic-core's serializer.
        """
        try:
            return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
        except TypeError:
            return to_json(content)


@dataclass(frozen=True)
class Settings:
    """Service limits."""

    max_body_bytes: int = 5_000_000  # one request's body, counted as it is read: else 413
    max_inflight_bytes: int = 20_000_000  # bodies held at once across requests: else 503
    max_rows: int = 100_000
    prediction_log: Path | None = None
    reload_seconds: float = 0.0  # poll the registry aliases this often (0: only on request)
    admin_token: str | None = None  # bearer token for POST /admin/reload (None/blank: disabled)


ARROW_EXPANSION = 20  # an Arrow body may decode to this many times the body limit (compression)
CONFIRM_RETRY_SECONDS = 5.0  # a snapshot start asks the registry again this often until it answers
EXPLAIN_WAIT_SECONDS = 30.0  # an explain request waits this long for the logged model


def settle_memory() -> None:
    """Collect what earlier models left, then exempt every loaded object from the cyclic
    garbage collector (reference counting still frees them). A full collection of a loaded
    service (~380k objects of MLflow, scikit-learn and pandas) takes ~180 ms, and under
    batch traffic one landed in a request every few seconds: p99 of 1,000-booking
    requests was 160 ms against a p50 of 11 ms.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class ModelSource(Protocol):
    """Where the service reloads from (see workflows.serve.RegistrySource)."""

    def versions(self) -> dict[str, str]:
        """The version each variant should serve now."""
        ...

    def load(self) -> Router:
        """Load those versions."""
        ...


def tell(line: str) -> None:
    """One line on the service's stderr: what an operator must see (a refused reload)
    whatever logging is configured.
    """
    print(line, file=sys.stderr, flush=True)


def admin_token(configured: str | None) -> bytes | None:
    """The admin token as bytes, or None (endpoint disabled) when unset, empty or blank:
    a whitespace token is a mistake, never a secret.
    """
    token = (configured or "").strip()
    return token.encode() if token else None


def bearer_matches(headers: list[str], token: bytes) -> bool:
    """One ``Authorization: Bearer <token>`` header carrying exactly ``token``, compared
    in constant time as bytes (header text is Latin-1, so any byte a client sends
    compares; nothing malformed raises).
    """
    if len(headers) != 1:
        return False
    scheme, _, given = headers[0].strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    try:
        presented = given.strip().encode("latin-1")
    except UnicodeEncodeError:  # not from the wire (Starlette decodes Latin-1)
        return False
    return hmac.compare_digest(presented, token)


def create_app(
    model_source: core.LoadedModel | Router,
    settings: Settings | None = None,
    source: ModelSource | None = None,
) -> FastAPI:
    """An app serving one loaded model, or several behind a router (A/B, shadow).

    Loading is the caller's side effect; the app only scores. With a ``source`` it can
    reload: the new models are loaded beside the old, smoke-tested on their own input
    examples, and swapped in one assignment; a model that fails keeps the old one serving.
    Models started from their snapshots (``origin == "snapshot"``) answer at once and are
    confirmed by a reload right after start, retried until the registry answers.
    """
    settings = settings or Settings()
    metrics = ServiceMetrics()
    degradation = Degradation(metrics, tell)
    budget = BodyBudget(settings.max_inflight_bytes)
    metrics.body_bytes.set_function(lambda: budget.held)
    token = admin_token(settings.admin_token)
    notes = []  # what an operator must know at start: `innflow serve` prints them
    if token is None and settings.admin_token is not None:
        notes.append("POST /admin/reload is disabled: the admin token is empty or whitespace")
    status: dict[str, Any] = {"last_reload": None}
    confirmed = threading.Event()  # every variant is the registry's logged model

    def unconfirmed() -> list[str]:
        return [v.name for v in app.state.router.variants if v.model.origin == "snapshot"]

    def install(router: Router) -> None:
        metrics.model.clear()
        for variant in router.variants:
            d = variant.model.description
            metrics.model.labels(
                d.get("name") or "", variant.model.version, d.get("alias") or "",
                d.get("run_id") or "", variant.name,
            ).set(1)  # fmt: skip
        app.state.router = router  # one reference assignment: requests see old or new

    def reload(asked: bool = False) -> dict[str, Any]:
        """Check the source; load, smoke-test and swap when a version moved (``asked``:
        by an operator, POST /admin/reload, whose failure is said however often).
        """
        outcome: dict[str, Any] = {"at": time.time()}
        confirming = unconfirmed()  # a failure then leaves a snapshot unconfirmed
        try:
            if source is None:
                raise RuntimeError("this service was started without a model source")
            wanted = source.versions()
            outcome["wanted"] = wanted
            now = {v.name: v.model.version for v in app.state.router.variants}
            if wanted == now and not unconfirmed():
                outcome.update(outcome="unchanged", versions=now)
            else:
                candidate = source.load()
                problems = [
                    f"{v.name}: {p}" for v in candidate.variants if (p := core.smoke_test(v.model))
                ]
                if problems:
                    outcome.update(outcome="refused", error="; ".join(problems)[:500])
                else:
                    install(candidate)
                    settle_memory()
                    outcome.update(outcome="loaded", versions=wanted)
        except Exception as e:  # registry down, model missing: keep serving what we have
            outcome.update(outcome="failed", error=f"{type(e).__name__}: {e}"[:500])
        metrics.reloads.labels(outcome["outcome"]).inc()
        status["last_reload"] = outcome
        serving = ", ".join(f"{v.name} v{v.model.version}" for v in app.state.router.variants)
        if outcome["outcome"] in ("refused", "failed"):
            moved = ", ".join(f"{k} v{v}" for k, v in outcome.get("wanted", {}).items())
            if confirming:
                degradation.report(
                    "confirmation", f"serving the start-up snapshot of {', '.join(confirming)} "
                    f"({serving}), unconfirmed: the registry's model could not be loaded "
                    f"(reload {outcome['outcome']}, retried every {CONFIRM_RETRY_SECONDS:.0f} s): "
                    f"{outcome['error']}", asked,
                )  # fmt: skip
            else:
                degradation.report(
                    "reload", f"reload {outcome['outcome']}, still serving {serving}"
                    f"{f' (not {moved})' if moved else ''}: {outcome['error']}", asked,
                )  # fmt: skip
        else:
            for kind in ("confirmation", "reload"):
                degradation.clear(kind, f"serving {serving} as the registry has them")
        return outcome

    log = None
    if settings.prediction_log is not None:
        log = PredictionLog(
            settings.prediction_log,
            metrics.log_dropped.inc,
            lambda reason: degradation.report("prediction_log", reason),
            lambda: degradation.clear("prediction_log", f"writing to {settings.prediction_log}"),
        )

    stop_polling = threading.Event()
    # JSON bodies' rows: decoded by msgspec into the contract's types (serving/decoding.py)
    rows: dict[str, Any] = {"reader": decoding.for_bookings(), "state": "msgspec"}

    def poll() -> None:
        while unconfirmed() and not stop_polling.is_set():
            reload()  # loads the logged models, or the versions aliases moved to meanwhile
            if unconfirmed():  # the registry did not answer: keep serving, ask again
                stop_polling.wait(CONFIRM_RETRY_SECONDS)
        confirmed.set()
        if settings.reload_seconds <= 0:
            return
        while not stop_polling.wait(settings.reload_seconds):
            reload()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        poller = threading.Thread(target=poll, name="innflow-reload", daemon=True)
        settle_memory()
        if source is not None and (settings.reload_seconds > 0 or unconfirmed()):
            poller.start()
        if log is not None:
            log.start()
        yield
        stop_polling.set()
        if log is not None:
            log.stop()

    app = FastAPI(title="innflow scoring service", version=__version__, lifespan=lifespan)
    app.state.metrics = metrics
    app.state.notes = notes
    install(model_source if isinstance(model_source, Router) else Router.single(model_source))
    metrics.reloads.labels("loaded").inc()

    def read_request(
        request: Request, body: bytes
    ) -> tuple[dict[str, np.ndarray], Variant, parsing.Batch]:
        batch = parsing.parse(
            request.headers.get("content-type"), body,
            settings.max_rows, ARROW_EXPANSION * settings.max_body_bytes, rows["reader"],
        )  # fmt: skip
        if batch.rows > settings.max_rows:
            raise parsing.RequestError(
                413, f"{batch.rows} rows; at most {settings.max_rows} a request"
            )
        router = app.state.router
        variant = router.live[0]
        if len(router.live) > 1:
            key = request.headers.get("x-routing-key")
            if key is None:  # sticky by the booking itself
                key = json.dumps(batch.first_row(), sort_keys=True, default=str)
            variant = router.choose(key)
        # Each variant checks its own columns; a field another variant takes is not a typo.
        errors, arrays = core.check_model(variant.model, batch, router.known_columns)
        if errors:
            raise parsing.RequestError(400, "invalid input", [e.to_dict() for e in errors])
        return arrays, variant, batch

    def finish(
        endpoint: str,
        started: float,
        response: Response,
        variant: Variant | None,
        batch: parsing.Batch | None = None,
    ) -> Response:
        metrics.requests.labels(endpoint, str(response.status_code)).inc()
        metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
        chosen = variant or app.state.router.live[0]
        response.headers["X-Model-Version"] = chosen.model.version
        response.headers["X-Variant"] = chosen.name
        if batch is not None and variant is not None:
            unused = core.ignored(batch, variant.model.columns)
            if unused:  # accepted as MLflow's server does, but said: a client may not expect it
                response.headers["X-Ignored-Columns"] = ",".join(unused)
        return response

    def record(
        variant: Variant,
        arrays: dict[str, np.ndarray],
        predicted: core.Prediction,
        request_id: str,
    ) -> None:
        count = len(next(iter(predicted.columns.values())))
        metrics.rows.labels(variant.name).inc(count)
        decisions = predicted.columns.get("likely_cancel")
        if decisions is not None:
            cancel = int(decisions.sum())
            metrics.decisions.labels(variant.name, "likely_cancel").inc(cancel)
            metrics.decisions.labels(variant.name, "likely_stay").inc(count - cancel)
        if log is None:
            return
        rows = core.model_frame(variant.model, arrays)
        for name, values in predicted.columns.items():
            rows[name] = values
        rows["model_version"] = variant.model.version
        rows["variant"] = variant.name
        rows["request_id"] = request_id
        rows["scored_at"] = pd.Timestamp.now(tz="UTC")
        log.append(rows)

    def shadow(batch: parsing.Batch, request_id: str) -> None:
        router = app.state.router
        for variant in router.shadows:
            try:
                errors, arrays = core.check_model(variant.model, batch, router.known_columns)
                if errors:  # what the shadow cannot take is not scored, and counted
                    metrics.requests.labels("shadow", "invalid").inc()
                    continue
                record(variant, arrays, core.predict(variant.model, arrays), request_id)
            except Exception:  # a shadow must never affect the answer
                metrics.requests.labels("shadow", "error").inc()

    async def answer(endpoint: str, request: Request, explain: bool = False) -> Response:
        started = time.perf_counter()
        try:
            async with bounded_body(request, settings.max_body_bytes, budget) as body:
                return await answer_body(endpoint, request, body, started, explain)
        except parsing.RequestError as e:
            refused = JSONResponse(e.body, status_code=e.status, headers=e.headers)
            return finish(endpoint, started, refused, None)

    async def answer_body(
        endpoint: str, request: Request, body: bytes, started: float, explain: bool
    ) -> Response:
        try:
            arrays, variant, batch = read_request(request, body)
            if explain and variant.model.general is not None:
                raise parsing.RequestError(
                    400, "explanations are given for innflow's own models; "
                    f"{variant.name} (version {variant.model.version}) is a general pyfunc model",
                )  # fmt: skip
            if explain and variant.model.pipeline is None:  # started from its snapshot
                await asyncio.to_thread(confirmed.wait, EXPLAIN_WAIT_SECONDS)
                arrays, variant, batch = read_request(request, body)  # the body is kept
                if variant.model.pipeline is None:
                    raise parsing.RequestError(
                        503, "explanations need the logged model, which is still loading; "
                        "retry in a few seconds",
                    )  # fmt: skip
            try:
                if variant.model.general is None:
                    predicted = core.predict(variant.model, arrays)
                else:  # a model of unknown speed: off the event loop, /ping and /health answer
                    predicted = await asyncio.to_thread(core.predict, variant.model, arrays)
            except ModelFailed as e:
                raise parsing.RequestError(
                    422, f"the model of {variant.name} (version {variant.model.version}) "
                    f"could not score this input: {e}",
                    [{"row": None, "field": "(model)", "problem": str(e)}],
                ) from e  # fmt: skip
            why = core.reasons(variant.model, arrays) if explain else None
        except parsing.RequestError as e:
            return finish(endpoint, started, JSONResponse(e.body, status_code=e.status), None)
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        record(variant, arrays, predicted, request_id)
        shadow(batch, request_id)
        if endpoint == "invocations":
            answered: dict[str, Any] = {"predictions": predicted.raw}
        else:
            answered = {"predictions": per_row(variant, predicted, why)}
            if "likely_cancel" in predicted.columns:
                answered = {"threshold": variant.model.threshold, **answered}
        return finish(endpoint, started, FastJSONResponse(answered), variant, batch)

    def per_row(
        variant: Variant, predicted: core.Prediction, why: list[list[dict]] | None
    ) -> list[dict[str, Any]]:
        """/predict's rows: the model's per-row outputs, version and variant."""
        names = list(predicted.columns)
        values = [predicted.columns[n].tolist() for n in names]
        results = [
            {**dict(zip(names, row, strict=True)),
             "model_version": variant.model.version, "variant": variant.name}
            for row in zip(*values, strict=True)
        ]  # fmt: skip
        if why is not None:
            for result, top in zip(results, why, strict=True):
                result["reasons"] = top
        return results

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        """MLflow's scoring protocol: {"predictions": [[p(stay), p(cancel)], ...]}."""
        return await answer("invocations", request)

    @app.post("/predict")
    async def predict(request: Request, explain: bool = False) -> Response:
        """Per booking: probability of cancellation, decision at the model's threshold,
        version and variant; with explain=true the top contributing features.
        """
        return await answer("predict", request, explain)

    @app.post("/admin/reload")
    def admin_reload(request: Request) -> Response:
        """Reload now (bearer token from the service's settings)."""
        if token is None:
            return JSONResponse({"error": "reload endpoint disabled (no admin token)"}, 403)
        if not bearer_matches(request.headers.getlist("authorization"), token):
            return JSONResponse(
                {"error": "wrong, missing or malformed bearer token"}, 401,
                headers={"WWW-Authenticate": "Bearer"},
            )  # fmt: skip
        outcome = reload(asked=True)
        return JSONResponse(outcome, 200 if outcome["outcome"] in ("loaded", "unchanged") else 409)

    @app.get("/ping")
    def ping() -> Response:
        """Liveness (MLflow-compatible)."""
        return Response("\n", media_type="application/json")

    def predictors() -> dict[str, dict[str, Any]]:
        """Each variant's predictor (compiled or exact, and why), also as a metric."""
        found = {v.name: {"version": v.model.version, **v.model.predictor}
                 for v in app.state.router.variants}  # fmt: skip
        metrics.predictor.clear()
        for name, predictor in found.items():
            metrics.predictor.labels(name, predictor["version"], predictor["state"]).set(1)
        return found

    @app.get("/health")
    def health() -> dict[str, Any]:
        """Ready once a model is loaded, ``degraded`` (still answering) while a problem in
        ``degraded`` holds: a start-up snapshot the registry cannot confirm, a failed
        reload, a prediction log that cannot write. The last reload's outcome and each
        variant's predictor (a refused or failed compile is reported here, the service
        still ready).
        ``confirmed`` is false while a variant started from its snapshot has not been
        confirmed by the registry yet (``origins`` says which). ``json_rows``: how JSON
        bodies' rows are read (``msgspec``, the Python path for what it declines).
        """
        router = app.state.router
        problems = degradation.reasons()
        return {
            "status": "degraded" if problems else "ready",
            "degraded": problems,
            "model_version": router.live[0].model.version,
            "variants": {v.name: v.model.version for v in router.variants},
            "confirmed": not unconfirmed(),
            "origins": {v.name: v.model.origin for v in router.variants},
            "predictors": predictors(),
            "json_rows": rows["state"],
            "last_reload": status["last_reload"],
        }

    @app.get("/version")
    def version() -> dict[str, str]:
        """The innflow version and the primary model's."""
        return {"innflow": __version__, "model_version": app.state.router.live[0].model.version}

    @app.get("/metadata")
    def metadata() -> dict[str, Any]:
        """Registered name, version, alias, run id, threshold, input columns, signature."""
        router = app.state.router
        primary = router.live[0].model
        keys = ("name", "version", "alias", "run_id", "uri", "signature")
        described = primary.description
        return {
            **{k: described.get(k) for k in keys},
            "threshold": primary.threshold,
            "columns": primary.columns,
            "variants": [
                {"name": v.name, "version": v.model.version, "weight": v.weight, "shadow": v.shadow}
                for v in router.variants
            ],
            "predictors": predictors(),
        }

    @app.get("/metrics")
    def prometheus() -> Response:
        """Prometheus exposition."""
        predictors()
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        """The OpenAPI document, request bodies typed by the model serving now (a reload
        may change its input columns).
        """
        document = get_openapi(
            title=app.title, version=app.version, routes=app.routes, description=app.description
        )
        primary = app.state.router.live[0].model
        record = (
            primary.general.schema.json_schema(parsing.IGNORED_FIELDS)
            if primary.general is not None else None
        )  # fmt: skip
        for path, response in (
            ("/invocations", parsing.INVOCATIONS_RESPONSE),
            ("/predict", parsing.PREDICT_RESPONSE),
        ):
            operation = document["paths"][path]["post"]
            operation["requestBody"] = parsing.request_body(primary.columns, record)
            operation["responses"]["200"]["content"]["application/json"]["schema"] = response
        return document

    app.openapi = openapi  # type: ignore[method-assign]
    return app
