"""MLflow registry webhook deliveries, verified: the service reloads when an alias it serves
moves, without waiting for its next poll.

MLflow (3.3+, `mlflow server` on a SQL store) signs each delivery as Standard Webhooks do:
``X-MLflow-Signature: v1,<base64 HMAC-SHA256 of "<delivery id>.<timestamp>.<body>">``
with the webhook's secret, ``X-MLflow-Delivery-Id`` and ``X-MLflow-Timestamp`` (Unix
seconds). A delivery without them, signed with another secret, older than
``TOLERANCE_SECONDS`` or from the future, is refused (401); one whose id was already taken
is a replay (409). Nothing here reloads: the service decides what a verified delivery means.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from innflow.serving.parsing import RequestError

SIGNATURE = "x-mlflow-signature"
DELIVERY_ID = "x-mlflow-delivery-id"
TIMESTAMP = "x-mlflow-timestamp"
TOLERANCE_SECONDS = 300  # MLflow's own receiver example's; retries keep the first timestamp
ALIAS_EVENTS = {("model_version_alias", "created"), ("model_version_alias", "deleted")}


@dataclass(frozen=True)
class Delivery:
    """A verified delivery: its id, event and the event's data."""

    id: str
    entity: str
    action: str
    data: dict[str, Any]

    def registers(self, model_name: str) -> str | None:
        """The version it registers of ``model_name`` (a new version), else None."""
        if (self.entity, self.action) != ("model_version", "created"):
            return None
        version = self.data.get("version")
        if self.data.get("name") != model_name or not str(version or "").isdigit():
            return None
        return str(version)

    def moves(self, model_name: str, aliases: list[str]) -> bool:
        """Whether it moves (sets or deletes) one of ``aliases`` of ``model_name``."""
        return (
            (self.entity, self.action) in ALIAS_EVENTS
            and self.data.get("name") == model_name
            and self.data.get("alias") in aliases
        )


def signature(secret: bytes, delivery_id: str, timestamp: str, body: bytes) -> str:
    """MLflow's signature of a delivery (``v1,`` and the base64 HMAC-SHA256)."""
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class Receiver:
    """Verifies deliveries for one secret and remembers the ids it took (for as long as a
    replay could still pass the timestamp check, at most ``remember`` of them).
    """

    def __init__(self, secret: str, remember: int = 10_000) -> None:
        self.secret = secret.encode()
        self.remember = remember
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> Delivery:
        """The delivery, or a RequestError: 401 unsigned, stale or forged; 409 a replay;
        400 a signed body that is not an MLflow event.
        """
        given = {name: headers.get(name) for name in (SIGNATURE, DELIVERY_ID, TIMESTAMP)}
        missing = [name for name, value in given.items() if not value]
        if missing:
            raise RequestError(401, f"unsigned webhook delivery: no {', '.join(missing)} header")
        delivery_id, stamp = str(given[DELIVERY_ID]), str(given[TIMESTAMP])
        try:
            sent = int(stamp)
        except ValueError:
            raise RequestError(401, f"{TIMESTAMP} {stamp!r} is not Unix seconds") from None
        if abs(now - sent) > TOLERANCE_SECONDS:
            raise RequestError(
                401, f"stale webhook delivery: sent {now - sent:+.0f} s from now "
                f"(tolerated: {TOLERANCE_SECONDS} s)",
            )  # fmt: skip
        expected = signature(self.secret, delivery_id, stamp, body)
        offered = [s.strip() for s in str(given[SIGNATURE]).split(" ") if s.strip()]
        if not any(hmac.compare_digest(expected.encode(), s.encode()) for s in offered):
            raise RequestError(401, "webhook signature does not match (another secret?)")
        with self._lock:
            self._forget(now)
            if delivery_id in self._seen:
                raise RequestError(409, f"webhook delivery {delivery_id} was already received")
            self._seen[delivery_id] = now
        try:
            event = orjson.loads(body)
            return Delivery(
                delivery_id, str(event["entity"]), str(event["action"]), dict(event["data"])
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise RequestError(400, f"not an MLflow webhook event: {e}") from e

    def _forget(self, now: float) -> None:
        while self._seen and (
            len(self._seen) >= self.remember
            or now - next(iter(self._seen.values())) > 2 * TOLERANCE_SECONDS
        ):
            self._seen.popitem(last=False)
