"""`ScoringService`: the scoring service without HTTP. Routing, checking, scoring, the
prediction log, metrics, health and reloading live here, so that tests drive it directly
and the FastAPI routes (serving/app.py) only translate requests and responses.

Every failure a client can cause is a ``RequestError`` (a 4xx naming the problem, and the
row and field where there is one); a reload runs under one lock, from the poller thread or
an operator's request, and swaps the router in one assignment.
"""

from __future__ import annotations

import gc
import hmac
import json
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from innflow.serving import core, decoding, open_inference, parsing, webhooks
from innflow.serving.degradation import Degradation
from innflow.serving.general import ModelFailed
from innflow.serving.limits import BodyBudget
from innflow.serving.metrics import ServiceMetrics
from innflow.serving.prediction_log import PredictionLog
from innflow.serving.routing import Router, Variant
from innflow.serving.settings import ServiceSettings

ARROW_EXPANSION = 20  # an Arrow body may decode to this many times the body limit (compression)
CONFIRM_RETRY_SECONDS = 5.0  # a snapshot start asks the registry again this often until it answers
EXPLAIN_WAIT_SECONDS = 30.0  # an explain request waits this long for the logged model

RequestError = parsing.RequestError


def settle_memory() -> None:
    """Collect what earlier models left, then exempt every loaded object from the cyclic
    garbage collector (reference counting still frees them): a full collection of a loaded
    service walks ~380k objects of MLflow, scikit-learn and pandas, and under batch
    traffic it landed inside requests.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class ModelSource(Protocol):
    """Where the service reloads from (see serving.loading.RegistrySource)."""

    def versions(self) -> dict[str, str]:
        """The version each variant should serve now."""
        ...

    def load(self) -> Router:
        """Load those versions."""
        ...

    def watched(self) -> tuple[str, list[str]]:
        """The registered model and aliases whose moves call for a reload."""
        ...

    def prefetch(self, version: str) -> Any:
        """Load a new version ahead, for the alias move that may follow."""
        ...

    def keep(self, model: Any) -> None:
        """Hold a model the service stopped serving, for a move back to it."""
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


@dataclass(frozen=True)
class Scoring:
    """A request read and checked: the variant that answers and its model's arrays."""

    arrays: dict[str, np.ndarray]
    variant: Variant
    batch: parsing.Batch


@dataclass(frozen=True)
class Answer:
    """What a scoring endpoint sends: the body, and who answered (for the headers)."""

    body: dict[str, Any]
    variant: Variant
    ignored: list[str]
    predicted: core.Prediction | None = None


class ScoringService:
    """One loaded model, or several behind a router (A/B, shadow), with what serves them.

    Loading is the caller's side effect; the service only scores. With a ``source`` it can
    reload: the new models are loaded beside the old, smoke-tested on their own input
    examples and swapped in one assignment; a model that fails keeps the old one serving.
    Models started from their snapshots (``origin == "snapshot"``) answer at once and are
    confirmed by a reload right after ``start``, retried until the registry answers.
    """

    def __init__(
        self,
        models: core.LoadedModel | Router,
        settings: ServiceSettings | None = None,
        source: ModelSource | None = None,
        say: Callable[[str], None] = tell,
    ) -> None:
        self.settings = settings = settings or ServiceSettings()
        self.source = source
        self.say = say
        self._prefetching = threading.Lock()
        self.metrics = ServiceMetrics()
        self.degradation = Degradation(self.metrics, say)
        self.budget = BodyBudget(settings.max_inflight_bytes)
        self.metrics.body_bytes.set_function(lambda: self.budget.held)
        self.token = admin_token(settings.admin_token)
        self.notes: list[str] = []  # what an operator must know at start (`innflow serve`)
        if self.token is None and settings.admin_token is not None:
            self.notes.append(
                "POST /admin/reload is disabled: the admin token is empty or whitespace"
            )
        self.receiver = (
            webhooks.Receiver(settings.webhook_secret)
            if settings.webhook_secret and settings.webhook_secret.strip()
            else None
        )
        self.last_reload: dict[str, Any] | None = None
        self.confirmed = threading.Event()  # every variant is the registry's logged model
        self.reader = decoding.for_bookings()
        self._reloading = threading.Lock()
        self._stopping = threading.Event()
        self._poller: threading.Thread | None = None
        self.log: PredictionLog | None = None
        if settings.prediction_log is not None:
            where = settings.prediction_log
            self.log = PredictionLog(
                where,
                self.metrics.log_dropped.inc,
                lambda reason: self.degradation.report("prediction_log", reason),
                lambda: self.degradation.clear("prediction_log", f"writing to {where}"),
            )
        self.router: Router
        self.install(models if isinstance(models, Router) else Router.single(models))
        self.metrics.reloads.labels("loaded").inc()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Settle memory, start the prediction log and, with a source, the poller."""
        settle_memory()
        wants_poll = self.settings.reload_seconds > 0 or self.unconfirmed()
        if self.source is not None and wants_poll:
            self._poller = threading.Thread(target=self._poll, name="innflow-reload", daemon=True)
            self._poller.start()
        if self.log is not None:
            self.log.start()

    def stop(self) -> None:
        """Stop polling and flush the prediction log."""
        self._stopping.set()
        if self.log is not None:
            self.log.stop()

    def _poll(self) -> None:
        while self.unconfirmed() and not self._stopping.is_set():
            self.reload()  # the logged models, or the versions aliases moved to meanwhile
            if self.unconfirmed():  # the registry did not answer: keep serving, ask again
                self._stopping.wait(CONFIRM_RETRY_SECONDS)
        self.confirmed.set()
        if self.settings.reload_seconds <= 0:
            return
        while not self._stopping.wait(self.settings.reload_seconds):
            self.reload()

    # -- models ---------------------------------------------------------------------------

    def unconfirmed(self) -> list[str]:
        """Variants still serving their start-up snapshot, unconfirmed by the registry."""
        return [v.name for v in self.router.variants if v.model.origin == "snapshot"]

    def install(self, router: Router) -> None:
        """Serve ``router`` from the next request on; its gauges are set here, once."""
        self.metrics.model.clear()
        self.metrics.predictor.clear()
        for variant in router.variants:
            d = variant.model.description
            self.metrics.model.labels(
                d.get("name") or "", variant.model.version, d.get("alias") or "",
                d.get("run_id") or "", variant.name,
            ).set(1)  # fmt: skip
            state = variant.model.predictor["state"]
            self.metrics.predictor.labels(variant.name, variant.model.version, state).set(1)
        self.router = router  # one reference assignment: requests see old or new

    def reload(self, asked: bool = False) -> dict[str, Any]:
        """Check the source; load, smoke-test and swap when a version moved (``asked``: by
        an operator, POST /admin/reload, whose failure is said however often). One reload
        at a time: the poller and an operator never load the same versions twice at once.
        """
        with self._reloading:
            return self._reload(asked)

    def _reload(self, asked: bool) -> dict[str, Any]:
        outcome: dict[str, Any] = {"at": time.time()}
        confirming = self.unconfirmed()  # a failure then leaves a snapshot unconfirmed
        try:
            if self.source is None:
                raise RuntimeError("this service was started without a model source")
            wanted = self.source.versions()
            outcome["wanted"] = wanted
            now = {v.name: v.model.version for v in self.router.variants}
            if wanted == now and not confirming:
                outcome.update(outcome="unchanged", versions=now)
            else:
                candidate = self.source.load()
                problems = [
                    f"{v.name}: {p}" for v in candidate.variants if (p := core.smoke_test(v.model))
                ]
                if problems:
                    outcome.update(outcome="refused", error="; ".join(problems)[:500])
                else:
                    replaced = self.router.variants
                    self.install(candidate)
                    for variant in replaced:  # kept warm: a rollback to it costs no load
                        if variant.model.version not in wanted.values():
                            self.source.keep(variant.model)
                    settle_memory()
                    seconds = round(time.time() - outcome["at"], 3)
                    outcome.update(outcome="loaded", versions=wanted, seconds=seconds)
                    serving = ", ".join(f"{k} v{v}" for k, v in wanted.items())
                    self.say(f"reloaded: serving {serving} (loaded in {seconds:.2f} s)")
        except Exception as e:  # registry down, model missing: keep serving what we have
            outcome.update(outcome="failed", error=f"{type(e).__name__}: {e}"[:500])
        self.metrics.reloads.labels(outcome["outcome"]).inc()
        self.last_reload = outcome
        self._report(outcome, confirming, asked)
        return outcome

    def _report(self, outcome: dict[str, Any], confirming: list[str], asked: bool) -> None:
        serving = ", ".join(f"{v.name} v{v.model.version}" for v in self.router.variants)
        if outcome["outcome"] not in ("refused", "failed"):
            for kind in ("confirmation", "reload"):
                self.degradation.clear(kind, f"serving {serving} as the registry has them")
            return
        if confirming:
            self.degradation.report(
                "confirmation", f"serving the start-up snapshot of {', '.join(confirming)} "
                f"({serving}), unconfirmed: the registry's model could not be loaded "
                f"(reload {outcome['outcome']}, retried every {CONFIRM_RETRY_SECONDS:.0f} s): "
                f"{outcome['error']}", asked,
            )  # fmt: skip
            return
        moved = ", ".join(f"{k} v{v}" for k, v in outcome.get("wanted", {}).items())
        self.degradation.report(
            "reload", f"reload {outcome['outcome']}, still serving {serving}"
            f"{f' (not {moved})' if moved else ''}: {outcome['error']}", asked,
        )  # fmt: skip

    def webhook(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """An MLflow webhook delivery: verified (else 401, or 409 for a replay), then a
        reload in the background when it moves an alias this service follows (202), else
        nothing (200). The poller, if any, stays the fallback for a lost delivery.
        """
        if self.receiver is None:
            raise RequestError(403, "webhooks are off: start the service with "
                               "INNFLOW_WEBHOOK_SECRET set to the webhook's secret")  # fmt: skip
        delivery = self.receiver.verify(headers, body, time.time())
        event = f"{delivery.entity}.{delivery.action}"
        outcome: dict[str, Any] = {"delivery": delivery.id, "event": event}
        name, aliases = self.source.watched() if self.source is not None else ("", [])
        if self.source is not None and (new := delivery.registers(name)):
            self.metrics.webhooks.labels("prefetch").inc()
            self.say(f"webhook {delivery.id}: {event} v{new}; loading it ahead")
            threading.Thread(target=self._prefetch, args=(new,), name="innflow-prefetch",
                             daemon=True).start()  # fmt: skip
            return 202, {**outcome, "outcome": "prefetching", "version": new}
        if not delivery.moves(name, aliases):
            self.metrics.webhooks.labels("ignored").inc()
            return 200, {**outcome, "outcome": "ignored"}
        self.metrics.webhooks.labels("reload").inc()
        moved = f"{delivery.data.get('alias')} -> v{delivery.data.get('version', '(deleted)')}"
        self.say(f"webhook {delivery.id}: {event} {moved}; reloading")
        threading.Thread(target=self.reload, name="innflow-webhook-reload", daemon=True).start()
        return 202, {**outcome, "outcome": "reloading", "moved": moved}

    def _prefetch(self, version: str) -> None:
        """Load ``version`` ahead, one at a time (a burst of new versions must not load
        them all at once); a skipped or failed one is loaded when an alias moves to it.
        """
        assert self.source is not None
        if not self._prefetching.acquire(blocking=False):
            self.say(f"not loading v{version} ahead: another version is loading")
            return
        started = time.time()
        try:
            self.source.prefetch(version)
        except Exception as e:  # the version may be broken or gone: the reload will say
            self.say(f"could not load v{version} ahead: {type(e).__name__}: {e}"[:500])
            return
        finally:
            self._prefetching.release()
        self.say(f"loaded v{version} ahead in {time.time() - started:.2f} s")

    # -- scoring --------------------------------------------------------------------------

    def read(self, content_type: str | None, body: bytes, routing_key: str | None) -> Scoring:
        """Parse and check a request body; choose the variant that answers it."""
        limits = self.settings
        batch = parsing.parse(
            content_type, body, limits.max_rows, ARROW_EXPANSION * limits.max_body_bytes,
            self.reader,
        )  # fmt: skip
        return self.route(batch, routing_key)

    def route(
        self, batch: parsing.Batch, routing_key: str | None, version: str | None = None
    ) -> Scoring:
        """Check a parsed batch under the variant that answers it: the router's choice
        (sticky by ``routing_key``, else by the first row), or the variant serving
        ``version`` when a client names one (404 when none does).
        """
        limits = self.settings
        if batch.rows > limits.max_rows:
            raise RequestError(413, f"{batch.rows} rows; at most {limits.max_rows} a request")
        router = self.router
        variant = router.live[0]
        if version is not None:
            variant = self.variant_of(version)
        elif len(router.live) > 1:
            key = routing_key
            if key is None:  # sticky by the booking itself
                key = json.dumps(batch.first_row(), sort_keys=True, default=str)
            variant = router.choose(key)
        # Each variant checks its own columns; a field another variant takes is not a typo.
        errors, arrays = core.check_model(variant.model, batch, router.known_columns)
        if errors:
            raise RequestError(400, "invalid input", [e.to_dict() for e in errors])
        return Scoring(arrays, variant, batch)

    def variant_of(self, version: str) -> Variant:
        """The variant (live or shadow) serving model ``version``; 404 when none does."""
        for variant in self.router.variants:
            if variant.model.version == version:
                return variant
        serving = ", ".join(sorted({v.model.version for v in self.router.variants}))
        raise RequestError(404, f"version {version} is not served here (serving {serving})")

    def read_to_explain(
        self, content_type: str | None, body: bytes, routing_key: str | None
    ) -> Scoring:
        """``read`` for an explanation: refused at once where it cannot be given; a
        variant started from its snapshot waits (blocking) for the logged model.
        """
        scoring = self.read(content_type, body, routing_key)
        self._explainable(scoring)
        if scoring.variant.model.pipeline is None:  # the snapshot has no pipeline to explain
            self.confirmed.wait(EXPLAIN_WAIT_SECONDS)
            scoring = self.read(content_type, body, routing_key)  # the router may be new
            self._explainable(scoring)
            if scoring.variant.model.pipeline is None:
                raise RequestError(
                    503, "explanations need the logged model, which is still loading; "
                    "retry in a few seconds",
                )  # fmt: skip
        return scoring

    def _explainable(self, scoring: Scoring) -> None:
        variant, rows = scoring.variant, scoring.batch.rows
        if variant.model.general is not None:
            raise RequestError(
                400, "explanations are given for innflow's own models; "
                f"{variant.name} (version {variant.model.version}) is a general pyfunc model",
            )  # fmt: skip
        if rows > self.settings.max_explain_rows:
            raise RequestError(
                413, f"{rows} rows to explain; at most {self.settings.max_explain_rows} "
                "a request with explain=true (without it, up to "
                f"{self.settings.max_rows})",
            )  # fmt: skip

    def score(
        self, endpoint: str, scoring: Scoring, request_id: str, explain: bool = False
    ) -> Answer:
        """Predict, log, shadow and shape the answer of ``endpoint`` (invocations or
        predict). Blocking: a route runs it off the event loop when it may take long.
        """
        variant, arrays = scoring.variant, scoring.arrays
        try:
            predicted = core.predict(variant.model, arrays)
        except ModelFailed as e:
            raise RequestError(
                422, f"the model of {variant.name} (version {variant.model.version}) "
                f"could not score this input: {e}",
                [{"row": None, "field": "(model)", "problem": str(e)}],
            ) from e  # fmt: skip
        why = core.reasons(variant.model, arrays) if explain else None
        self._record(variant, arrays, predicted, request_id)
        self._shadow(scoring.batch, request_id)
        if endpoint == "infer":  # the Open Inference Protocol shapes its own answer
            answered: dict[str, Any] = {}
        elif endpoint == "invocations":
            answered = {"predictions": predicted.raw}
        else:
            answered = {"predictions": _per_row(variant, predicted, why)}
            if "likely_cancel" in predicted.columns:
                answered = {"threshold": variant.model.threshold, **answered}
        ignored = core.ignored(scoring.batch, variant.model.columns)
        return Answer(answered, variant, ignored, predicted)

    @staticmethod
    def blocks(scoring: Scoring, explain: bool) -> bool:
        """Whether scoring may take long enough to hold up /ping (a model of unknown speed,
        explanations): a route then runs ``score`` in a worker thread.
        """
        return explain or scoring.variant.model.general is not None

    def _record(
        self,
        variant: Variant,
        arrays: dict[str, np.ndarray],
        predicted: core.Prediction,
        request_id: str,
    ) -> None:
        count = len(next(iter(predicted.columns.values())))
        self.metrics.rows.labels(variant.name).inc(count)
        decisions = predicted.columns.get("likely_cancel")
        if decisions is not None:
            cancel = int(decisions.sum())
            self.metrics.decisions.labels(variant.name, "likely_cancel").inc(cancel)
            self.metrics.decisions.labels(variant.name, "likely_stay").inc(count - cancel)
        if self.log is None:
            return
        rows = core.model_frame(variant.model, arrays)
        for name, values in predicted.columns.items():
            rows[name] = values
        rows["model_version"] = variant.model.version
        rows["variant"] = variant.name
        rows["request_id"] = request_id
        rows["scored_at"] = pd.Timestamp.now(tz="UTC")
        self.log.append(rows)

    def _shadow(self, batch: parsing.Batch, request_id: str) -> None:
        router = self.router
        for variant in router.shadows:
            try:
                errors, arrays = core.check_model(variant.model, batch, router.known_columns)
                if errors:  # what the shadow cannot take is not scored, and counted
                    self.metrics.requests.labels("shadow", "invalid").inc()
                    continue
                self._record(variant, arrays, core.predict(variant.model, arrays), request_id)
                self.degradation.clear(f"shadow {variant.name}", "scoring again")
            except Exception as e:  # a shadow must never affect the answer, but is said
                self.metrics.requests.labels("shadow", "error").inc()
                self.degradation.report(
                    f"shadow {variant.name}",
                    f"shadow {variant.name} (version {variant.model.version}) failed on a "
                    f"request: {type(e).__name__}: {e}"[:500],
                )

    def count(self, endpoint: str, status: int, seconds: float) -> None:
        """Count a request and its latency."""
        self.metrics.requests.labels(endpoint, str(status)).inc()
        self.metrics.latency.labels(endpoint).observe(seconds)

    # -- what the service tells -----------------------------------------------------------

    def predictors(self) -> dict[str, dict[str, Any]]:
        """Each variant's predictor (compiled or exact, and why)."""
        return {
            v.name: {"version": v.model.version, **v.model.predictor} for v in self.router.variants
        }

    def health(self) -> dict[str, Any]:
        """Ready once a model is loaded, ``degraded`` (still answering) while a problem in
        ``degraded`` holds: a start-up snapshot the registry cannot confirm, a failed
        reload, a failing shadow, a prediction log that cannot write. ``confirmed`` is false
        while a variant started from its snapshot has not been confirmed by the registry
        (``origins`` says which); ``json_rows``: how JSON bodies' rows are decoded.
        """
        router = self.router
        problems = self.degradation.reasons()
        return {
            "status": "degraded" if problems else "ready",
            "degraded": problems,
            "model_version": router.live[0].model.version,
            "variants": {v.name: v.model.version for v in router.variants},
            "confirmed": not self.unconfirmed(),
            "origins": {v.name: v.model.origin for v in router.variants},
            "predictors": self.predictors(),
            "json_rows": "msgspec",
            "last_reload": self.last_reload,
        }

    @property
    def model_name(self) -> str:
        """The registered name clients address the model by (V2's ``{name}``); a model
        loaded from a run or a path has none and is ``model``.
        """
        return self.router.live[0].model.description.get("name") or "model"

    def require_model(self, name: str) -> None:
        """404 unless ``name`` is the model this service serves (V2 routes address it)."""
        if name != self.model_name:
            raise RequestError(404, f"unknown model {name!r}: this service serves "
                               f"{self.model_name!r}")  # fmt: skip

    def v2_model(self, name: str, version: str | None = None) -> dict[str, Any]:
        """Open Inference Protocol metadata of the served model (or one served version)."""
        self.require_model(name)
        variant = self.router.live[0] if version is None else self.variant_of(version)
        versions = list(dict.fromkeys(v.model.version for v in self.router.variants))
        return open_inference.model_metadata(name, variant.model, versions)

    def metadata(self) -> dict[str, Any]:
        """Registered name, version, alias, run id, threshold, input columns, signature."""
        router = self.router
        primary = router.live[0].model
        keys = ("name", "version", "alias", "run_id", "uri", "signature")
        described = primary.description
        return {
            **{k: described.get(k) for k in keys},
            "task": "regression" if primary.regression else "binary",
            "threshold": None if primary.regression else primary.threshold,
            "columns": primary.columns,
            "variants": [
                {"name": v.name, "version": v.model.version, "weight": v.weight, "shadow": v.shadow}
                for v in router.variants
            ],
            "predictors": self.predictors(),
        }


def _per_row(
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
