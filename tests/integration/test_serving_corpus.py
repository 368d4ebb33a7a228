"""A generated bad-input corpus against the service: every route in its OpenAPI document,
every MLflow scoring format and Arrow IPC streams, with mutated bookings (missing columns,
wrong types, out-of-domain and huge values, nulls, NaN/Infinity tokens, nesting) and
malformed bodies.

Every answer must be a 2xx or a 4xx with a JSON body (400s name field and row), never a
5xx, and the service must still answer /ping afterwards.
"""

from __future__ import annotations

import json
import math
from contextlib import suppress
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from innflow.serving.app import create_app
from innflow.serving.parsing import ARROW_STREAM, PARQUET
from innflow.serving.settings import ServiceSettings as Settings

MAX_BODY = 20_000
CORPUS = settings(
    max_examples=500,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)

# Values a client could send in any field.
nasty = st.one_of(
    st.none(),
    st.just(math.nan),
    st.sampled_from([math.inf, -math.inf, 1e308, -1e308, 1e19, 2**63, 2**64, 10**30, -(2**63)]),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(["12", "January", "Smarch", "", " ", "NaN", "null", "1e400", "City Hotel"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=20,
)


@st.composite
def mutated_records(draw: st.DrawFn, bookings: list[dict]) -> list[dict]:
    """A few real bookings, usually with one or two fields of one booking dropped, replaced
    by a nasty value or joined by an unknown field (so the deep checks are reached).
    """
    rows = [dict(r) for r in draw(st.lists(st.sampled_from(bookings), min_size=1, max_size=4))]
    fields = sorted(rows[0])
    for _ in range(draw(st.integers(0, 2))):
        row = rows[draw(st.integers(0, len(rows) - 1))]
        action = draw(st.sampled_from(["replace"] * 8 + ["drop", "add"]))
        if action == "replace":
            row[draw(st.sampled_from(fields))] = draw(nasty)
        elif action == "drop":
            row.pop(draw(st.sampled_from(fields)), None)
        else:
            row[draw(st.text(min_size=1, max_size=8))] = draw(nasty)
    return rows


ARROW_TYPES = [pa.int8(), pa.uint64(), pa.float32(), pa.bool_(), pa.large_string(),
               pa.string_view(), pa.dictionary(pa.int32(), pa.string()), pa.timestamp("s"),
               pa.decimal128(12, 2), pa.null()]  # fmt: skip


@st.composite
def arrow_tables(draw: st.DrawFn, rows: list[dict]) -> pa.Table:
    """The rows as an Arrow table: each column as Arrow infers it (text when its values
    have no one type), sometimes cast to another type.
    """
    columns = sorted({k for r in rows for k in r})
    arrays = []
    for column in columns:
        values = [r.get(column) for r in rows]
        try:
            array = pa.array(values)
        except (pa.ArrowException, OverflowError, TypeError, ValueError):
            array = pa.array([None if v is None else str(v) for v in values])
        if draw(st.integers(0, 5)) == 0:
            with suppress(pa.ArrowException, NotImplementedError):  # else keep the inferred
                array = array.cast(draw(st.sampled_from(ARROW_TYPES)))
        arrays.append(array)
    return pa.Table.from_arrays(arrays, names=columns)


@st.composite
def arrow_bodies(draw: st.DrawFn, rows: list[dict]) -> bytes:
    """The rows as an Arrow IPC stream, sometimes compressed, split into batches,
    truncated or written in the file format instead.
    """
    table = draw(arrow_tables(rows))
    sink = pa.BufferOutputStream()
    compression = draw(st.sampled_from([None, None, "zstd", "lz4"]))
    if draw(st.integers(0, 9)) == 0:
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    else:
        options = pa.ipc.IpcWriteOptions(compression=compression)
        with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
            writer.write_table(table, max_chunksize=draw(st.sampled_from([None, 1, 2])))
    body = sink.getvalue().to_pybytes()
    if draw(st.integers(0, 9)) == 0:
        body = body[: draw(st.integers(0, len(body)))]
    return body


@st.composite
def parquet_bodies(draw: st.DrawFn, rows: list[dict]) -> bytes:
    """The rows as a Parquet file (MLflow's parquet body), sometimes truncated."""
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    with suppress(pa.ArrowException, NotImplementedError):  # a type Parquet cannot hold
        pq.write_table(draw(arrow_tables(rows)), sink)
    body = sink.getvalue().to_pybytes()
    if draw(st.integers(0, 9)) == 0:
        body = body[: draw(st.integers(0, len(body)))]
    return body


def _deep(depth: int) -> str:
    return '{"inputs": ' + "[" * depth + "]" * depth + "}"


@st.composite
def bodies(draw: st.DrawFn, bookings: list[dict]) -> tuple[bytes, str | None]:
    """(body, content type) in every format the service speaks, and in many it does not."""
    rows = draw(mutated_records(bookings))
    columns = sorted({k for r in rows for k in r})
    form = draw(
        st.sampled_from(
            [
                "split",
                "records",
                "instances",
                "inputs",
                "columnar",
                "csv",
                "arrow",
                "parquet",
                "junk",
            ]
        )
    )
    payload: Any
    if form == "split":
        data = [[r.get(c) for c in columns] for r in rows]
        if draw(st.integers(0, 4)) == 0:  # ragged rows, odd or duplicate column lists
            data = [row[: draw(st.integers(0, len(row)))] for row in data]
            columns = draw(st.sampled_from([columns + columns[:1], [1, None, "x"], "columns"]))
        payload = {"dataframe_split": {"columns": columns, "data": data}}
    elif form == "columnar":
        payload = {"inputs": {c: [r.get(c) for r in rows] for c in columns}}
    elif form == "csv":
        header = ",".join(columns)
        lines = [",".join("" if r.get(c) is None else str(r.get(c)) for c in columns) for r in rows]
        text = "\n".join([header, *lines])
        return text.encode(), draw(st.sampled_from(["text/csv", "text/csv; charset=utf-8"]))
    elif form == "arrow":
        return draw(arrow_bodies(rows)), draw(st.sampled_from([ARROW_STREAM, "application/json"]))
    elif form == "parquet":
        return draw(parquet_bodies(rows)), PARQUET
    elif form == "junk":
        choice = draw(st.integers(0, 5))
        if choice == 0:
            return draw(st.binary(max_size=64)), draw(st.sampled_from(["application/json", None]))
        if choice == 1:
            return _deep(draw(st.sampled_from([5_000, 50, 100_000]))).encode(), "application/json"
        if choice == 2:
            return b"x" * (MAX_BODY + 1), "application/json"
        if choice == 3:
            wrapper = draw(st.sampled_from(["dataframe_records", "inputs", "dataframe_split"]))
            payload = {wrapper: draw(json_values)}
        elif choice == 4:
            payload = draw(json_values)
        else:
            payload = {"dataframe_records": rows, "inputs": rows}
    else:
        key = {"records": "dataframe_records"}.get(form, form)
        payload = {key: rows}
    content_type = draw(
        st.sampled_from(
            ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON",
             "text/plain", "application/x-www-form-urlencoded", None]
        )
    )  # fmt: skip
    return json.dumps(payload).encode(), content_type  # NaN/Infinity become bare tokens


@pytest.fixture(scope="module")
def corpus_client(registered):
    """The service as deployed: JSON rows decoded by msgspec (whose declines and the Python
    path behind them the corpus reaches too).
    """
    model, bookings, _, _ = registered
    app = create_app(model, Settings(max_body_bytes=MAX_BODY, max_rows=500))
    records = json.loads(bookings.to_json(orient="records"))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/health").json()["json_rows"] == "msgspec"
        yield client, records


def _assert_clean(response: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    body = response.json()  # always JSON, also for errors
    if response.status_code >= 400:
        assert "error" in body or "detail" in body, body
        for error in body.get("errors", []):
            assert {"row", "field", "problem"} <= set(error), error


@pytest.fixture(scope="module")
def scoring_routes(corpus_client) -> list[tuple[str, str]]:
    """The POST routes of the app's own OpenAPI document that take bookings."""
    client, _ = corpus_client
    paths = client.get("/openapi.json").json()["paths"]
    scoring = [
        (path, method.upper())
        for path, operations in paths.items()
        for method, operation in operations.items()
        if "requestBody" in operation
    ]
    assert {"/invocations", "/predict"} <= {path for path, _ in scoring}
    for path, method in scoring:  # the content types the corpus speaks are the documented ones
        documented = paths[path][method.lower()]["requestBody"]["content"]
        assert set(documented) == {"application/json", "text/csv", ARROW_STREAM, PARQUET}
    return scoring


@pytest.mark.slow
@CORPUS
@given(data=st.data())
def test_generated_bodies_never_get_a_5xx(corpus_client, scoring_routes, data) -> None:
    client, records = corpus_client
    path, method = data.draw(st.sampled_from(scoring_routes), label="route")
    content, content_type = data.draw(bodies(records), label="body")
    query = data.draw(st.sampled_from(["", "?explain=true", "?explain=maybe"]), label="query")
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.request(method, path + query, content=content, headers=headers)
    kind = (content_type or "-").split(";")[0].lower()
    event(f"{kind}: {response.status_code} {str(response.json().get('error', ''))[:24]}")
    _assert_clean(response)
    assert client.get("/ping").status_code == 200


def test_every_documented_route_answers_without_a_body(corpus_client) -> None:
    client, _ = corpus_client
    for path, ops in client.get("/openapi.json").json()["paths"].items():
        for method in ops:
            response = client.request(method.upper(), path)
            assert response.status_code < 500, (method, path, response.text[:300])
    assert client.get("/health").json()["status"] == "ready"


SEEDS = {
    "deep nesting": (_deep(5_000), "application/json"),
    "integer beyond float": ('{"inputs": [{"lead_time": 1%s}]}' % ("0" * 400), "application/json"),
    "duplicate columns": ('{"dataframe_split": {"columns": ["a", "a"], "data": [[1, 2]]}}', None),
    "columns not a list": ('{"dataframe_split": {"columns": "ab", "data": []}}', None),
    "lone surrogate": ('{"inputs": [{"hotel": "\\ud800"}]}', "application/json"),
}


@pytest.mark.parametrize(
    ("field", "value"),
    [("lead_time", math.inf), ("lead_time", 1e300), ("lead_time", 10**30), ("lead_time", 5000),
     ("arrival_date_year", 1e300), ("agent", 1e300), ("stays_in_week_nights", 1e308),
     ("adults", -math.inf), ("children", math.nan), ("adr", 1e300), ("adr", -math.inf),
     ("adr", 10**400), ("agent", -(10**400))],
)  # fmt: skip
def test_values_that_once_broke_the_service(corpus_client, field: str, value: Any) -> None:
    """Found by the corpus before the fixes (500s from overflowing dates, casts and JSON)."""
    client, records = corpus_client
    rows = [dict(records[0], **{field: value}), records[1]]
    for form in ("dataframe_records", "inputs"):
        response = client.post(
            "/predict?explain=true",
            content=json.dumps({form: rows}).encode(),
            headers={"Content-Type": "application/json"},
        )
        _assert_clean(response)
        if (field, value) == ("adr", 1e300) or field == "children":  # a price, a nullable count
            assert response.status_code == 200, response.text
        else:
            assert response.status_code == 400, response.text
            assert response.json()["errors"][0]["row"] == 0
            assert response.json()["errors"][0]["field"] == field


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_malformed_bodies_that_once_broke_the_service(corpus_client, name: str) -> None:
    client, _ = corpus_client
    body, content_type = SEEDS[name]
    headers = {"Content-Type": content_type or "application/json"}
    response = client.post("/invocations", content=body.encode(), headers=headers)
    assert response.status_code == 400, response.text
    assert client.get("/ping").status_code == 200
