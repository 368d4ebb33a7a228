from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from innflow.serving import core, parsing
from innflow.serving.app import create_app
from innflow.serving.loading import load
from innflow.serving.settings import ServiceSettings as Settings
from innflow.workflows.score import score_file
from tests.conftest import SAMPLE


@pytest.fixture
def served(registered):
    """A fresh app (own metrics) around the module's model."""
    model, bookings, version, _ = registered
    return TestClient(create_app(model, Settings(max_body_bytes=200_000))), model, bookings, version


def _records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))


def test_every_mlflow_format_gives_the_in_process_probabilities(served) -> None:
    client, model, bookings, version = served
    expected = model.pipeline.predict_proba(bookings)
    split = json.loads(bookings.to_json(orient="split", index=False))
    bodies = {
        "dataframe_split": {"dataframe_split": split},
        "dataframe_records": {"dataframe_records": _records(bookings)},
        "instances": {"instances": _records(bookings)},
        "inputs": {"inputs": _records(bookings)},
    }
    for name, body in bodies.items():
        response = client.post("/invocations", json=body)
        assert response.status_code == 200, (name, response.text)
        got = np.asarray(response.json()["predictions"])
        assert np.abs(got - expected).max() == 0, name
        assert response.headers["X-Model-Version"] == version
    csv = client.post(
        "/invocations", content=bookings.to_csv(index=False), headers={"Content-Type": "text/csv"}
    )
    assert csv.status_code == 200
    assert np.abs(np.asarray(csv.json()["predictions"]) - expected).max() < 1e-12


def test_json_rows_decoded_by_msgspec_give_the_same_answers(registered) -> None:
    """As a deployed service reads JSON (msgspec, typed by the contract: serving/decoding.py):
    every form gives the in-process probabilities, and bad values (those it decodes and
    those it leaves to the Python path) the Python path's 400s.
    """
    model, bookings, _, _ = registered
    expected = model.pipeline.predict_proba(bookings)
    records = _records(bookings)
    bad = [dict(r) for r in records]
    bad[3]["adults"], bad[5]["lead_time"], bad[6]["hotel"] = -1, "12", None
    decodable = [dict(r) for r in records]
    decodable[3]["adults"] = -1
    bodies = [
        {"dataframe_split": json.loads(bookings.to_json(orient="split", index=False))},
        {"dataframe_records": records},
        {"instances": records},
        {"inputs": records},
    ]
    with TestClient(create_app(model)) as client:
        assert client.get("/health").json()["json_rows"] == "msgspec"
        for body in bodies:
            got = np.asarray(client.post("/invocations", json=body).json()["predictions"])
            assert got.tobytes() == expected.tobytes(), list(body)
        for body, where in (
            ({"dataframe_records": bad}, {(3, "adults"), (5, "lead_time"), (6, "hotel")}),
            ({"inputs": bad}, {(3, "adults"), (5, "lead_time"), (6, "hotel")}),
            ({"instances": decodable}, {(3, "adults")}),
        ):
            response = client.post("/invocations", json=body)
            assert response.status_code == 400
            python = parsing.parse("application/json", json.dumps(body).encode())  # no decoder
            errors, _ = core.check(python, model.columns)
            assert response.json()["errors"] == [e.to_dict() for e in errors]
            assert {(e["row"], e["field"]) for e in response.json()["errors"]} == where


def _arrow(table, compression: str | None = None) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=compression)
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table, max_chunksize=7)  # several record batches
    return sink.getvalue().to_pybytes()


ARROW = {"Content-Type": parsing.ARROW_STREAM}


def test_arrow_bodies_give_the_in_process_probabilities(served) -> None:
    """A batch client's columnar body: ints, floats, text, nulls, unseen levels,
    dictionary-encoded text and compressed buffers all score bit for bit as the pipeline
    does in-process.
    """
    import pyarrow as pa

    client, model, bookings, version = served
    frame = bookings.copy()
    frame.loc[2, "children"] = None  # nullable count
    frame.loc[4, "meal"] = "a level never seen in training"
    expected = model.pipeline.predict_proba(frame)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    hotel = table.schema.get_field_index("hotel")
    dictionary = table.set_column(hotel, "hotel", table.column("hotel").dictionary_encode())
    for name, body in {
        "plain": _arrow(table),
        "zstd": _arrow(table, "zstd"),
        "int32": _arrow(
            table.cast(pa.schema([
                pa.field(f.name, pa.int32() if pa.types.is_integer(f.type) else f.type)
                for f in table.schema
            ]))
        ),
        "dictionary text": _arrow(dictionary),
    }.items():  # fmt: skip
        response = client.post("/invocations", content=body, headers=ARROW)
        assert response.status_code == 200, (name, response.text)
        got = np.asarray(response.json()["predictions"])
        assert got.tobytes() == expected.tobytes(), name
        assert response.headers["X-Model-Version"] == version
    predicted = client.post("/predict", content=_arrow(table), headers=ARROW).json()
    assert [p["probability"] for p in predicted["predictions"]] == expected[:, 1].tolist()


def test_bad_arrow_bodies_are_4xx_naming_field_and_row(served) -> None:
    import pyarrow as pa

    client, _, bookings, _ = served
    table = pa.Table.from_pandas(bookings.head(5), preserve_index=False)
    body = _arrow(table)
    text_lead = table.set_column(
        table.schema.get_field_index("lead_time"), "lead_time",
        pa.array(["12", "3", "x", "4", "5"]),
    )  # fmt: skip
    bools = table.set_column(
        table.schema.get_field_index("adults"), "adults", pa.array([True, False, True, True, True])
    )
    fractional = table.set_column(
        table.schema.get_field_index("adults"), "adults", pa.array([2.0, 2.5, 1.0, 1.0, 1.0])
    )
    file_format = pa.BufferOutputStream()
    with pa.ipc.new_file(file_format, table.schema) as writer:
        writer.write_table(table)
    cases = {
        "text in a number column": (_arrow(text_lead), 400, ("lead_time", 0, "not numbers")),
        "booleans": (_arrow(bools), 400, ("adults", 0, "not numbers")),
        "fraction": (_arrow(fractional), 400, ("adults", 1, "not whole numbers")),
        "missing column": (_arrow(table.drop_columns(["hotel"])), 400, ("hotel", None, "missing")),
        "truncated": (body[: len(body) // 2], 400, None),
        "garbage": (b"\x00\x01garbage" * 10, 400, None),
        "file format": (file_format.getvalue().to_pybytes(), 400, None),
        "no rows": (_arrow(table.slice(0, 0)), 400, ("(body)", None, "no rows")),
    }
    for name, (content, status, named) in cases.items():
        response = client.post("/invocations", content=content, headers=ARROW)
        assert response.status_code == status, (name, response.text)
        if named is None:
            assert "Arrow" in response.json()["error"], (name, response.text)
        else:
            field, row, problem = named
            error = response.json()["errors"][0]
            assert (error["field"], error["row"]) == (field, row), (name, error)
            assert problem in error["problem"], (name, error)
    assert client.get("/ping").status_code == 200


def test_arrow_bodies_are_bounded_once_decoded(registered, monkeypatch) -> None:
    """A compressed stream that would decode past the limits is refused from its headers,
    before pyarrow decodes (and allocates) anything.
    """
    import pyarrow as pa

    model, bookings, _, _ = registered
    client = TestClient(create_app(model, Settings(max_body_bytes=60_000, max_rows=50)))
    many = pa.Table.from_pandas(pd.concat([bookings] * 5), preserve_index=False)  # 100 rows
    response = client.post("/invocations", content=_arrow(many, "zstd"), headers=ARROW)
    assert response.status_code == 413 and "rows" in response.json()["error"]
    wide = pa.table({"hotel": pa.array(["x" * 100_000] * 20)})  # 2 MB of text, compresses well
    body = _arrow(wide, "zstd")
    assert len(body) < 60_000  # but 2 MB decoded: over 20 x the body limit

    def no_decoding(*_: object) -> None:
        raise AssertionError("the stream was decoded")

    monkeypatch.setattr(pa.ipc, "open_stream", no_decoding)
    response = client.post("/invocations", content=body, headers=ARROW)
    assert response.status_code == 413 and "decoded" in response.json()["error"]


def test_predict_returns_probability_decision_version_and_reasons(served) -> None:
    client, model, bookings, version = served
    response = client.post(
        "/predict?explain=true", json={"dataframe_records": _records(bookings.head(3))}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["threshold"] == model.threshold
    first = body["predictions"][0]
    assert first["model_version"] == version
    assert first["likely_cancel"] == (first["probability"] >= model.threshold)
    assert len(first["reasons"]) == 5 and {"feature", "value", "contribution"} <= set(
        first["reasons"][0]
    )


@pytest.mark.parametrize(
    ("mutate", "field", "problem"),
    [
        (lambda r: r.pop("lead_time"), "lead_time", "missing column"),
        (lambda r: r.update(surprise=1), "surprise", "unknown column"),
        (lambda r: r.update(lead_time="12"), "lead_time", "value not numbers"),
        (lambda r: r.update(adults=2.5), "adults", "value not whole numbers"),
        (lambda r: r.update(stays_in_week_nights=-1), "stays_in_week_nights", "value negative"),
        (
            lambda r: r.update(arrival_date_month="Smarch"),
            "arrival_date_month",
            "value not month names",
        ),
        (lambda r: r.update(hotel=None), "hotel", "value null"),
    ],
)
def test_bad_input_is_a_400_naming_field_and_row(served, mutate, field, problem) -> None:
    client, _, bookings, _ = served
    records = _records(bookings.head(3))
    for record in records:
        mutate(record)
    response = client.post("/invocations", json={"dataframe_records": records})
    assert response.status_code == 400, response.text
    errors = response.json()["errors"]
    assert any(e["field"] == field and e["problem"].startswith(problem) for e in errors), errors
    assert client.get("/health").status_code == 200


def test_a_whole_booking_record_is_answered_its_unused_columns_ignored(served) -> None:
    """A record of the bookings file (every column, the label too) is scored; the columns
    the model does not take are named in a header, as MLflow's server ignores them.
    """
    client, model, bookings, _ = served
    raw = pd.read_parquet(SAMPLE).head(3)
    response = client.post("/invocations", json={"dataframe_records": _records(raw)})
    assert response.status_code == 200, response.text
    ignored = set(response.headers["X-Ignored-Columns"].split(","))
    assert ignored == set(raw.columns) - set(model.columns) and "is_canceled" in ignored
    only = client.post("/invocations", json={"dataframe_records": _records(bookings.head(3))})
    assert only.status_code == 200 and "X-Ignored-Columns" not in only.headers


def test_unseen_category_and_nullable_fields_are_valid(served) -> None:
    client, _, bookings, _ = served
    records = _records(bookings.head(2))
    records[0]["market_segment"] = "Metaverse"
    records[1]["agent"] = None
    response = client.post("/invocations", json={"dataframe_records": records})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"", {"Content-Type": "application/json"}, 400),
        (b"{not json", {"Content-Type": "application/json"}, 400),
        (b'{"rows": []}', {"Content-Type": "application/json"}, 400),
        (b'{"dataframe_records": []}', {"Content-Type": "application/json"}, 400),
        (b"lead_time\n1", {"Content-Type": "text/plain"}, 415),
        (b"x" * 300_000, {"Content-Type": "application/json"}, 413),
    ],
)
def test_malformed_requests_are_4xx(served, body, headers, status) -> None:
    client, *_ = served
    assert client.post("/invocations", content=body, headers=headers).status_code == status


def test_metadata_health_and_metrics(served) -> None:
    client, _, bookings, version = served
    meta = client.get("/metadata").json()
    assert meta["name"] == "hotel-booking-cancellation" and meta["version"] == version
    assert meta["alias"] == "production" and meta["run_id"] and meta["signature"]
    assert client.get("/ping").status_code == 200
    client.post("/invocations", json={"dataframe_records": _records(bookings.head(4))})
    client.post("/invocations", content=b"{", headers={"Content-Type": "application/json"})
    text = client.get("/metrics").text
    assert 'innflow_requests_total{endpoint="invocations",status="200"} 1.0' in text
    assert 'innflow_requests_total{endpoint="invocations",status="400"} 1.0' in text
    assert 'innflow_rows_scored_total{variant="main"} 4.0' in text
    assert f'version="{version}"' in text and "innflow_request_duration_seconds_bucket" in text
    assert client.get("/openapi.json").status_code == 200


def test_openapi_types_the_bookings_of_the_served_model(served) -> None:
    client, model, _, _ = served
    document = client.get("/openapi.json").json()
    for path in ("/invocations", "/predict"):
        body = document["paths"][path]["post"]["requestBody"]["content"]
        assert "text/csv" in body
        booking = body["application/json"]["schema"]["properties"]["dataframe_records"]["items"]
        assert set(booking["properties"]) == set(model.columns) == set(booking["required"])
        assert "X-Ignored-Columns" in booking["description"]
    assert booking["properties"]["lead_time"] == {"type": "integer", "minimum": 0, "maximum": 3653}
    assert booking["properties"]["agent"]["type"] == ["integer", "null"]
    assert "January" in booking["properties"]["arrival_date_month"]["enum"]
    answer = document["paths"]["/predict"]["post"]["responses"]["200"]["content"]
    item = answer["application/json"]["schema"]["properties"]["predictions"]["items"]
    assert {"probability", "likely_cancel", "model_version", "variant"} <= set(item["required"])


def test_batch_score_equals_in_process_and_keeps_bad_rows(registry) -> None:
    model, bookings, version, path = registry
    frame = bookings.copy()
    frame.loc[3, "adults"] = -2
    source, target = path / "in.csv", path / "out.parquet"
    frame.to_csv(source, index=False)
    outcome = score_file("models:/hotel-booking-cancellation@production", source, target)
    assert (outcome.rows, outcome.scored, outcome.rejected) == (20, 19, 1)
    scored = pd.read_parquet(target)
    assert "adults" in scored.loc[3, "error"] and np.isnan(scored.loc[3, "probability"])
    good = scored.drop(index=3)
    expected = model.pipeline.predict_proba(bookings.drop(index=3))[:, 1]
    assert np.abs(good["probability"].to_numpy() - expected).max() < 1e-12
    assert (scored["model_version"] == version).all()


def test_fast_path_is_bit_identical_to_the_pipeline(registered) -> None:
    from innflow.serving.fastpath import FastScorer

    model, _, _, _ = registered
    frame = pd.read_parquet(SAMPLE)[model.columns]
    assert model.fast is not None
    expected = model.pipeline.predict_proba(frame).tobytes()
    fast = FastScorer.from_pipeline(model.pipeline)
    whole = fast.predict_proba(core.columns_of(frame, model.columns))
    assert whole.tobytes() == expected
    # as the service sees them: parsed from JSON, a few bookings a request
    records = json.loads(frame.to_json(orient="records"))
    parts = []
    for start in range(0, len(records), 500):
        size = 1 + start % 97  # 1..97 bookings
        batch = parsing.batch_from_json(
            json.dumps({"inputs": records[start : start + size]}).encode()
        )
        errors, arrays = core.check(batch, model.columns)
        assert errors == []
        parts.append(core.score(model, arrays)[0])
        expected_part = model.pipeline.predict_proba(frame.iloc[start : start + size])
        assert parts[-1].tobytes() == expected_part.tobytes()


def test_prediction_log_keeps_every_scored_booking(registered, tmp_path) -> None:
    model, bookings, version, _ = registered
    app = create_app(model, Settings(prediction_log=tmp_path / "log"))
    with TestClient(app) as client:
        for size in (3, 5):
            body = {"dataframe_records": _records(bookings.head(size))}
            response = client.post("/invocations", json=body, headers={"X-Request-Id": f"r{size}"})
            assert response.status_code == 200
    logged = pd.concat(pd.read_parquet(p) for p in sorted((tmp_path / "log").glob("*.parquet")))
    assert len(logged) == 8
    assert set(logged["request_id"]) == {"r3", "r5"}
    assert (logged["model_version"] == version).all()
    expected = model.pipeline.predict_proba(bookings.head(5))[:, 1]
    assert logged[logged["request_id"] == "r5"]["probability"].tolist() == expected.tolist()
    assert set(model.columns) <= set(logged.columns)


def test_broken_prediction_log_never_fails_a_request(registered, tmp_path) -> None:
    model, bookings, _, _ = registered
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the log directory should be")
    app = create_app(model, Settings(prediction_log=blocker))
    with TestClient(app) as client:
        for _ in range(3):
            body = {"dataframe_records": _records(bookings.head(2))}
            assert client.post("/invocations", json=body).status_code == 200
    dropped = app.state.metrics.registry.get_sample_value("innflow_prediction_log_dropped_total")
    assert dropped == 6


def test_ab_split_is_sticky_and_shadow_is_logged_never_returned(registry, tmp_path) -> None:
    from innflow.serving.routing import Router, Variant

    production, bookings, version, _ = registry
    staging = load("models:/hotel-booking-cancellation@staging")
    router = Router([Variant("production", production, 0.5), Variant("staging", staging, 0.5)])
    with TestClient(create_app(router)) as client:
        seen = {}
        for i in range(40):
            key = f"booking-{i}"
            body = {"dataframe_records": _records(bookings.head(1))}
            first = client.post("/predict", json=body, headers={"X-Routing-Key": key})
            again = client.post("/predict", json=body, headers={"X-Routing-Key": key})
            assert first.headers["X-Variant"] == again.headers["X-Variant"]
            seen[first.headers["X-Variant"]] = first.json()["predictions"][0]["model_version"]
        assert seen == {"production": version, "staging": staging.version}

    shadowed = Router([Variant("production", production), Variant("staging", staging, shadow=True)])
    app = create_app(shadowed, Settings(prediction_log=tmp_path / "log"))
    with TestClient(app) as client:
        for i in range(5):
            body = {"dataframe_records": _records(bookings.iloc[[i]])}
            response = client.post("/invocations", json=body)
            assert response.headers["X-Variant"] == "production"
            expected = production.pipeline.predict_proba(bookings.iloc[[i]])
            assert response.json()["predictions"] == expected.tolist()
    logged = pd.concat(pd.read_parquet(p) for p in (tmp_path / "log").glob("*.parquet"))
    assert sorted(logged["variant"].value_counts().items()) == [("production", 5), ("staging", 5)]
    assert set(logged.loc[logged["variant"] == "staging", "model_version"]) == {staging.version}


def test_reload_swaps_to_the_new_production_version(reloadable) -> None:
    http, registry, bookings, version = reloadable
    body = {"dataframe_records": _records(bookings.head(1))}
    assert http.post("/invocations", json=body).headers["X-Model-Version"] == version
    unchanged = http.post("/admin/reload", headers={"Authorization": "Bearer s3cret"})
    assert unchanged.status_code == 200 and unchanged.json()["outcome"] == "unchanged"
    staging = registry.get_model_version_by_alias("hotel-booking-cancellation", "staging")
    registry.set_registered_model_alias("hotel-booking-cancellation", "production", staging.version)
    loaded = http.post("/admin/reload", headers={"Authorization": "Bearer s3cret"})
    assert loaded.status_code == 200 and loaded.json()["outcome"] == "loaded"
    assert http.post("/invocations", json=body).headers["X-Model-Version"] == str(staging.version)
    assert http.get("/health").json()["last_reload"]["outcome"] == "loaded"


def test_a_broken_version_is_refused_and_the_old_one_keeps_serving(reloadable) -> None:
    http, registry, bookings, version = reloadable
    broken = registry.create_model_version(
        "hotel-booking-cancellation", source="file:///nonexistent/model", run_id=None
    )
    registry.set_registered_model_alias("hotel-booking-cancellation", "production", broken.version)
    refused = http.post("/admin/reload", headers={"Authorization": "Bearer s3cret"})
    assert refused.status_code == 409 and refused.json()["outcome"] == "failed"
    body = {"dataframe_records": _records(bookings.head(1))}
    answer = http.post("/invocations", json=body)
    assert answer.status_code == 200 and answer.headers["X-Model-Version"] == version
    assert http.get("/health").json()["last_reload"]["outcome"] == "failed"
    assert 'innflow_model_reloads_total{outcome="failed"} 1.0' in http.get("/metrics").text


def test_reload_endpoint_needs_the_token(reloadable, registered) -> None:
    http, *_ = reloadable
    assert http.post("/admin/reload").status_code == 401
    assert http.post("/admin/reload", headers={"Authorization": "Bearer nope"}).status_code == 401
    model = registered[0]
    assert TestClient(create_app(model)).post("/admin/reload").status_code == 403


@pytest.mark.slow
def test_plain_mlflow_models_serve_gives_the_same_numbers(registered, served) -> None:
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    _, bookings, _, path = registered
    client = served[0]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "MLFLOW_TRACKING_URI": f"sqlite:///{path / 'mlflow.db'}"}  # fmt: skip
    command = [str(bin_dir / "mlflow"), "models", "serve", "-m",
               "models:/hotel-booking-cancellation@production", "--env-manager", "local",
               "-p", str(port), "-h", "127.0.0.1"]  # fmt: skip
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        body = json.dumps(
            {"dataframe_split": json.loads(bookings.to_json(orient="split", index=False))}
        )
        deadline = time.monotonic() + 90
        while True:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/invocations", data=body.encode(),
                    headers={"Content-Type": "application/json"},
                )  # fmt: skip
                theirs = json.load(urllib.request.urlopen(request, timeout=10))
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "mlflow models serve did not start in 90 s"
                time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.stderr.close()
    ours = client.post("/invocations", content=body, headers={"Content-Type": "application/json"})
    assert ours.json() == theirs


@pytest.mark.slow
def test_worker_processes_honour_routes_and_the_prediction_log(registered, tmp_path) -> None:
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    _, bookings, version, path = registered
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{path / 'mlflow.db'}"}
    command = [str(Path(sys.executable).parent / "innflow"), "serve", "--workers", "2",
               "--port", str(port), "--route", "production=50", "--route", "staging=50",
               "--prediction-log", str(tmp_path / "log"), "--reload-seconds", "0"]  # fmt: skip
    server = subprocess.Popen(command, env=env, cwd=path, stderr=subprocess.PIPE)
    body = json.dumps({"dataframe_records": _records(bookings.head(1))}).encode()

    def post(key: str) -> tuple[str, str]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict", data=body,
            headers={"Content-Type": "application/json", "X-Routing-Key": key},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.headers["X-Variant"], answer.headers["X-Model-Version"]

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                first = post("booking-0")
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "innflow serve --workers 2 did not start"
                time.sleep(0.5)
        seen = {post(f"booking-{i}") for i in range(40)}
        assert first in seen
        assert {variant for variant, _ in seen} == {"production", "staging"}  # routes kept
        assert ("production", version) in seen
        assert post("booking-7") == post("booking-7")  # sticky whichever worker answers
    finally:
        server.send_signal(signal.SIGINT)  # uvicorn stops its workers, which flush their logs
        server.wait(timeout=60)
        server.stderr.close()
    logged = pd.concat(pd.read_parquet(p) for p in (tmp_path / "log").glob("*.parquet"))
    assert len(logged) == 43  # every scored booking, from whichever worker scored it


def test_parquet_bodies_as_mlflow_server_takes_them(served) -> None:
    """``DataFrame.to_parquet()`` bodies (MLflow's `application/vnd.apache.parquet`) score
    bit for bit as in-process; a damaged one is a 400, too many rows a 413 before decoding.
    """
    import io

    client, model, bookings, _ = served
    parquet = {"Content-Type": "application/vnd.apache.parquet"}
    body = io.BytesIO()
    bookings.to_parquet(body, index=False)
    response = client.post("/invocations", content=body.getvalue(), headers=parquet)
    assert response.status_code == 200, response.text
    expected = model.pipeline.predict_proba(bookings)
    assert np.asarray(response.json()["predictions"]).tobytes() == expected.tobytes()
    damaged = client.post("/invocations", content=body.getvalue()[:-40], headers=parquet)
    assert damaged.status_code == 400 and "Parquet" in damaged.json()["error"]
    bad = bookings.copy()
    bad.loc[1, "adults"] = -2
    bad_body = io.BytesIO()
    bad.to_parquet(bad_body, index=False)
    refused = client.post("/invocations", content=bad_body.getvalue(), headers=parquet)
    assert refused.status_code == 400
    assert {"row": 1, "field": "adults"}.items() <= refused.json()["errors"][0].items()
    many = io.BytesIO()
    pd.concat([bookings] * 6000, ignore_index=True).head(100_001).to_parquet(many, index=False)
    assert len(many.getvalue()) < 200_000  # under the body limit: refused from the footer
    over = client.post("/invocations", content=many.getvalue(), headers=parquet)
    assert over.status_code == 413, over.text
