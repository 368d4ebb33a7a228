"""The scoring service driven without HTTP: scoring, one reload at a time, gauges set when
models are installed (not by reading them), loud shadows, capped explanations."""

from __future__ import annotations

import dataclasses
import json
import threading
import time

import numpy as np
import pytest

from innflow.serving.routing import Router, Variant
from innflow.serving.service import RequestError, ScoringService
from innflow.serving.settings import ServiceSettings


def _split(frame) -> bytes:
    return json.dumps(
        {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}
    ).encode()


def test_a_request_is_read_checked_and_scored_without_http(registered) -> None:
    model, bookings, _, _ = registered
    service = ScoringService(model)
    scoring = service.read("application/json", _split(bookings), None)
    answer = service.score("invocations", scoring, "request-1")
    expected = model.pipeline.predict_proba(bookings)
    assert np.asarray(answer.body["predictions"]).tobytes() == expected.tobytes()
    assert answer.variant.name == "main" and answer.ignored == []
    bad = bookings.head(3).copy()
    bad.loc[1, "adults"] = -1
    with pytest.raises(RequestError) as refused:
        service.read("application/json", _split(bad), None)
    assert refused.value.status == 400
    assert [(e["row"], e["field"]) for e in refused.value.body["errors"]] == [(1, "adults")]


class SlowSource:
    """A registry whose version moved, and whose loads take a while and are counted."""

    def __init__(self, model) -> None:
        self.model, self.loads = model, 0

    def versions(self) -> dict[str, str]:
        return {"main": "moved"}

    def load(self) -> Router:
        self.loads += 1
        time.sleep(0.3)
        moved = dataclasses.replace(
            self.model, description={**self.model.description, "version": "moved"}
        )
        return Router.single(moved)

    def keep(self, model) -> None:
        self.kept = model


def test_reloads_from_the_poller_and_an_operator_never_overlap(registered) -> None:
    model = registered[0]
    source = SlowSource(model)
    service = ScoringService(model, ServiceSettings(), source)
    outcomes: list[str] = []
    threads = [
        threading.Thread(target=lambda: outcomes.append(service.reload()["outcome"]))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert source.loads == 1  # the others waited, then found the version already served
    assert sorted(outcomes) == ["loaded", "unchanged", "unchanged"]
    assert service.router.live[0].model.version == "moved"
    assert source.kept is model  # the replaced model, held for a move back


def test_gauges_are_set_when_models_are_installed_not_when_read(registered) -> None:
    model = registered[0]
    service = ScoringService(model)
    registry = service.metrics.registry
    state = model.predictor["state"]
    labels = {"variant": "main", "version": model.version, "state": state}
    assert registry.get_sample_value("innflow_predictor_info", labels) == 1
    service.health()
    service.metadata()
    assert registry.get_sample_value("innflow_predictor_info", labels) == 1


class Broken:
    def predict_proba(self, frame):
        raise RuntimeError("the shadow's pipeline is broken")


def test_a_failing_shadow_never_changes_the_answer_and_is_said(registered) -> None:
    model, bookings, _, _ = registered
    shadow = dataclasses.replace(model, pipeline=Broken(), fast=None)
    said: list[str] = []
    router = Router([Variant("main", model), Variant("candidate", shadow, 0.0, shadow=True)])
    service = ScoringService(router, say=said.append)
    answer = service.score("predict", service.read("application/json", _split(bookings), None), "r")
    expected = model.pipeline.predict_proba(bookings)[:, 1]
    assert [p["probability"] for p in answer.body["predictions"]] == expected.tolist()
    assert "shadow candidate" in service.health()["degraded"]
    assert any("the shadow's pipeline is broken" in line for line in said)
    error = {"endpoint": "shadow", "status": "error"}
    assert service.metrics.registry.get_sample_value("innflow_requests_total", error) == 1


def test_explanations_are_capped_in_rows_and_batched(registered) -> None:
    model, bookings, _, _ = registered
    service = ScoringService(model, ServiceSettings(max_explain_rows=5))
    with pytest.raises(RequestError) as refused:
        service.read_to_explain("application/json", _split(bookings.head(6)), None)
    assert refused.value.status == 413 and "at most 5" in refused.value.body["error"]
    scoring = service.read_to_explain("application/json", _split(bookings.head(5)), None)
    answer = service.score("predict", scoring, "r", explain=True)
    assert all(len(p["reasons"]) == 5 for p in answer.body["predictions"])


def test_a_version_loaded_ahead_is_what_the_alias_move_swaps_in(reloadable) -> None:
    from innflow.serving.loading import RegistrySource

    _, client, _, _ = reloadable
    name = "hotel-booking-cancellation"
    staging = str(client.get_model_version_by_alias(name, "staging").version)
    source = RegistrySource(name, ["production=100"], [])
    warm = source.prefetch(staging)  # the webhook of a new version: loaded before any move
    assert source.warm() == [staging]
    client.set_registered_model_alias(name, "production", staging)
    (variant,) = source.load().variants
    assert variant.model.pipeline is warm.pipeline  # swapped in as loaded, not loaded again
    assert variant.model.version == staging
    assert (variant.model.description["alias"], variant.model.description["uri"]) == (
        "production", f"models:/{name}@production",
    )  # fmt: skip
    assert source.warm() == []  # taken: a later move to it loads afresh
    service = ScoringService(variant.model, ServiceSettings(), source)
    client.set_registered_model_alias(name, "production", reloadable[3])
    assert service.reload()["outcome"] == "loaded"
    assert source.warm() == [staging]  # the replaced version, held: a rollback costs no load


class PrefetchingSource(SlowSource):
    """A registry source whose loads ahead take a while and are recorded."""

    def __init__(self, model) -> None:
        super().__init__(model)
        self.prefetched: list[str] = []

    def watched(self) -> tuple[str, list[str]]:
        return "m", ["production"]

    def prefetch(self, version: str) -> None:
        self.prefetched.append(version)
        time.sleep(0.5)


def test_new_versions_are_loaded_ahead_one_at_a_time(registered) -> None:
    from innflow.serving.webhooks import signature

    said: list[str] = []
    source = PrefetchingSource(registered[0])
    service = ScoringService(
        registered[0], ServiceSettings(webhook_secret="s3cret"), source, say=said.append
    )

    def deliver(version: str) -> tuple[int, dict]:
        body = json.dumps({"entity": "model_version", "action": "created",
                           "data": {"name": "m", "version": version}}).encode()  # fmt: skip
        stamp, delivery = str(int(time.time())), f"d-{version}"
        headers = {"x-mlflow-delivery-id": delivery, "x-mlflow-timestamp": stamp,
                   "x-mlflow-signature": signature(b"s3cret", delivery, stamp, body)}  # fmt: skip
        return service.webhook(headers, body)

    assert deliver("4") == (202, {"delivery": "d-4", "event": "model_version.created",
                                  "outcome": "prefetching", "version": "4"})  # fmt: skip
    time.sleep(0.1)
    assert deliver("5")[0] == 202  # while 4 still loads: 5 is skipped, not loaded beside it
    deadline = time.monotonic() + 5
    while not any(line.startswith("loaded v4 ahead") for line in said):
        assert time.monotonic() < deadline, said
        time.sleep(0.05)
    assert source.prefetched == ["4"]
    assert "not loading v5 ahead: another version is loading" in said
