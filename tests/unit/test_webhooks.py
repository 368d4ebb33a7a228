"""The webhook receiver: MLflow's signature scheme, staleness, replays, what moves."""

from __future__ import annotations

import json

import pytest

from innflow.serving.parsing import RequestError
from innflow.serving.webhooks import Receiver, signature

NOW = 1_800_000_000.0
EVENT = {"entity": "model_version_alias", "action": "created",
         "timestamp": "2027-01-15T08:00:00+00:00",
         "data": {"name": "m", "alias": "production", "version": "3"}}  # fmt: skip
BODY = json.dumps(EVENT).encode()


def _headers(body: bytes = BODY, secret: str = "s3cret", delivery: str = "d-1",
             sent: float = NOW) -> dict[str, str]:  # fmt: skip
    stamp = str(int(sent))
    return {"x-mlflow-delivery-id": delivery, "x-mlflow-timestamp": stamp,
            "x-mlflow-signature": signature(secret.encode(), delivery, stamp, body)}  # fmt: skip


def test_a_signed_delivery_is_read_and_says_what_it_moves() -> None:
    delivery = Receiver("s3cret").verify(_headers(), BODY, NOW + 2)
    assert (delivery.entity, delivery.action, delivery.id) == ("model_version_alias", "created",
                                                               "d-1")  # fmt: skip
    assert delivery.moves("m", ["production", "staging"])
    assert not delivery.moves("m", ["staging"]) and not delivery.moves("other", ["production"])


@pytest.mark.parametrize(
    ("change", "status", "said"),
    [
        ({"x-mlflow-signature": None}, 401, "unsigned"),
        ({"x-mlflow-timestamp": None}, 401, "unsigned"),
        ({"x-mlflow-timestamp": "yesterday"}, 401, "Unix seconds"),
        ({"secret": "other"}, 401, "does not match"),
        ({"sent": NOW - 301}, 401, "stale"),
        ({"sent": NOW + 301}, 401, "stale"),
    ],
)
def test_unsigned_forged_or_stale_deliveries_are_refused(change, status, said) -> None:
    given = {k: v for k, v in change.items() if k in ("secret", "sent")}
    headers = {k: v for k, v in _headers(**given).items()}
    for name, value in change.items():
        if name.startswith("x-"):
            if value is None:
                headers.pop(name)
            else:
                headers[name] = value
    with pytest.raises(RequestError) as refused:
        Receiver("s3cret").verify(headers, BODY, NOW)
    assert refused.value.status == status and said in str(refused.value)


def test_a_replayed_delivery_is_refused_and_a_tampered_body_too() -> None:
    receiver = Receiver("s3cret")
    receiver.verify(_headers(), BODY, NOW)
    with pytest.raises(RequestError) as again:
        receiver.verify(_headers(), BODY, NOW + 1)
    assert again.value.status == 409
    with pytest.raises(RequestError) as tampered:
        receiver.verify(_headers(delivery="d-2"), BODY.replace(b'"3"', b'"4"'), NOW)
    assert tampered.value.status == 401
    receiver.verify(_headers(delivery="d-2"), BODY, NOW)  # the genuine one still passes


def test_a_new_version_of_the_served_model_is_named_for_loading_ahead() -> None:
    created = {
        "entity": "model_version",
        "action": "created",
        "data": {"name": "m", "version": "4", "source": "models:/m-1", "run_id": "r"},
    }
    body = json.dumps(created).encode()
    delivery = Receiver("s3cret").verify(_headers(body), body, NOW)
    assert delivery.registers("m") == "4"
    assert delivery.registers("other") is None
    assert not delivery.moves("m", ["production"])  # a new version moves no alias
    alias = Receiver("s3cret").verify(_headers(), BODY, NOW)
    assert alias.registers("m") is None
