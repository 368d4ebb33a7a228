"""The compiled JSON row reader: the same arrays as the Python path whenever it reads a
body, a decline (never an error, never a leaked reference) whenever it should not.
"""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from innflow import data
from innflow.serving import core, jsonrows, parsing


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> jsonrows.RowReader:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INNFLOW_COMPILE", "1")
        built, state = jsonrows.load(directory=tmp_path_factory.mktemp("jsonrows"))
    assert state == "compiled", state
    assert built is not None
    return built


def _outcome(read: Callable[[], parsing.Batch]) -> tuple:
    """What the service would make of a body: the error, or check's errors and arrays."""
    try:
        batch = read()
    except parsing.RequestError as e:
        return ("refused", e.status, e.body)
    # the model's columns: the body's schema columns (in one order: records read from bytes
    # keep no key order)
    columns = sorted(c for c in batch.columns if c in data.SCHEMA)
    return ("read", batch.rows, core.check(batch, columns))


def _same(python: tuple, compiled: tuple) -> None:
    assert python[:2] == compiled[:2]
    if python[0] == "refused":
        assert python == compiled
        return
    (errors, arrays), (compiled_errors, compiled_arrays) = python[2], compiled[2]
    assert errors == compiled_errors
    assert arrays.keys() == compiled_arrays.keys()
    for name, values in arrays.items():
        other = compiled_arrays[name]
        assert values.dtype == other.dtype, name
        if values.dtype == object:
            assert [(type(v), repr(v)) for v in values] == [(type(v), repr(v)) for v in other]
        else:
            assert values.tobytes() == other.tobytes(), name  # bit for bit, NaN included


def test_a_real_batch_is_read_in_c_and_equals_the_python_path(reader, sample_frame) -> None:
    frame = sample_frame.head(1000).drop(columns=["is_canceled"])
    names = [c for c in frame.columns if c in data.SCHEMA]
    split = json.loads(frame[names].to_json(orient="split", index=False))
    records = json.loads(frame[names].to_json(orient="records"))
    assert reader.split(split["columns"], split["data"]) is not None  # not declined
    assert reader.records(names, records) is not None
    _same(
        _outcome(lambda: parsing._from_split(split)),
        _outcome(lambda: parsing._from_split(split, reader)),
    )
    for key in ("dataframe_records", "instances"):
        _same(
            _outcome(lambda key=key: parsing._from_records(records, key)),
            _outcome(lambda key=key: parsing._from_records(records, key, reader)),
        )
    for key in jsonrows.RECORD_KEYS:  # records straight from the body's bytes
        body = json.dumps({key: records}).encode()
        assert reader.body(body) is not None
        _same(_outcome(lambda body=body: parsing.batch_from_json(body)),
              _outcome(lambda body=body: parsing.batch_from_json(body, reader)))  # fmt: skip


NAMES = sorted(data.SCHEMA)
cells = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, -1, 2**53 + 1, 10**400, -(10**400), 2**1023 * 2 - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.booleans(),
    st.text(max_size=6),
    st.sampled_from(["City Hotel", "BB", "July", "12"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
EQUIVALENCE = settings(
    max_examples=400,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[list]]:
    """Column names (mostly the schema's, sometimes an unknown one) and rows of cells,
    mostly plain numbers and text of the right kind, sometimes anything, sometimes ragged.
    """
    names = draw(st.lists(st.sampled_from([*NAMES, "unknown"]), min_size=1, max_size=5,
                          unique=True))  # fmt: skip
    plain = {n: st.text(max_size=4) if data.SCHEMA.get(n, ("str",))[0] == "str"
             else st.integers(0, 400) | st.floats(0, 400) | st.none() for n in names}  # fmt: skip
    rows = []
    for _ in range(draw(st.integers(1, 4))):
        row = [draw(plain[n] if draw(st.integers(0, 3)) else cells) for n in names]
        if draw(st.integers(0, 9)) == 0:
            row = row[: draw(st.integers(0, len(row)))]
        rows.append(row)
    return names, rows


@EQUIVALENCE
@given(table=tables())
def test_split_bodies_read_as_the_python_path_reads_them(reader, table) -> None:
    names, rows = table
    split = {"columns": names, "data": rows}
    _same(
        _outcome(lambda: parsing._from_split(split)),
        _outcome(lambda: parsing._from_split(split, reader)),
    )


@EQUIVALENCE
@given(table=tables(), drop=st.booleans(), extra=st.booleans())
def test_record_bodies_read_as_the_python_path_reads_them(reader, table, drop, extra) -> None:
    names, rows = table
    records = [dict(zip(names, row, strict=False)) for row in rows]
    if drop and len(records[-1]) > 1:
        records[-1].popitem()  # a key missing from one record
    if extra:
        records[-1]["adults"] = 2  # a key one record has beyond the others (or the same)
    _same(
        _outcome(lambda: parsing._from_records(records, "dataframe_records")),
        _outcome(lambda: parsing._from_records(records, "dataframe_records", reader)),
    )


@EQUIVALENCE
@given(table=tables(), drop=st.booleans(), extra=st.booleans(),
       key=st.sampled_from([*parsing.JSON_KEYS, "params"]), second=st.booleans())  # fmt: skip
def test_record_bodies_read_from_bytes_as_the_python_path_reads_them(
    reader, table, drop, extra, key, second
) -> None:
    """Whole bodies through ``parse``: records under each key (and split tables, bodies
    with two keys or an extra one), NaN and Infinity tokens, integers beyond a double.
    """
    names, rows = table
    records = [dict(zip(names, row, strict=False)) for row in rows]
    if drop and len(records[-1]) > 1:
        records[-1].popitem()
    if extra:
        records[-1]["adults"] = 2
    payload: dict = {key: records if key != "dataframe_split" else {"columns": names, "data": rows}}
    if second:
        payload["dataframe_records" if key == "params" else "params"] = records[:1]
    body = json.dumps(payload).encode()
    _same(
        _outcome(lambda: parsing.parse("application/json", body)),
        _outcome(lambda: parsing.parse("application/json", body, reader=reader)),
    )


def test_records_from_bytes_take_only_plain_tables(reader) -> None:
    def body(records: object, key: str = "dataframe_records", **more: object) -> bytes:
        return json.dumps({key: records, **more}).encode()

    read = reader.body(body([{"hotel": "City Hotel", "adults": 2, "children": None},
                             {"adults": 1.5, "children": 1, "hotel": None}]))  # fmt: skip
    assert read is not None
    columns, rows = read
    assert rows == 2 and set(columns) == {"hotel", "adults", "children"}
    # other keys are ignored, as the Python path ignores them (MLflow's params)
    assert reader.body(body([{"adults": 2}], params={"x": [1, {"y": None}]})) is not None
    assert columns["hotel"].tolist() == ["City Hotel", None]
    assert columns["adults"].tolist() == [2.0, 1.5]
    assert np.isnan(columns["children"][0]) and columns["children"][1] == 1.0
    declined = [
        body([]),
        body([{}]),
        body([{"hotel": "x"}, {}]),  # a key missing from a later record
        body([{"hotel": "x"}, {"hotel": "y", "adults": 1}]),  # a key only a later one has
        body([{"hotel": "x", "surprise": 1}]),  # not a schema column
        body([{"hotel": 3}]),  # a number in a text column
        body([{"hotel": 2**70}]),  # ... beyond 64 bits (msgspec keeps it exact)
        body([{"adults": True}]),  # a bool in a number column
        body([{"adults": "2"}]),
        body([{"adults": 10**400}]),
        body([{"adults": 2}], instances=[{"adults": 2}]),  # two keys: refused there
        body([{"adults": 2}], dataframe_split=None),
        body({"adults": [2]}, "inputs"),  # columnar inputs
        body({"columns": ["adults"], "data": [[2]]}, "dataframe_split"),
        b'{"dataframe_records": [{"adults": NaN}]}',
        b'{"dataframe_records": [{"adults": 2}]',  # malformed
        b"[" * 100_000 + b"]" * 100_000,
        rb'{"dataframe_records": [{"hotel": "\ud800"}]}',  # a lone surrogate
    ]
    for bad in declined:
        assert reader.body(bad) is None, bad[:80]
    # repeated keys: the last one counts, as orjson has it
    for repeated in (
        b'{"dataframe_records": [{"adults": 1, "adults": 2, "hotel": "x"}]}',
        b'{"dataframe_records": [{"adults": 1}], "dataframe_records": [{"adults": 3}]}',
    ):
        assert reader.body(repeated) is not None
        _same(_outcome(lambda body=repeated: parsing.batch_from_json(body)),
              _outcome(lambda body=repeated: parsing.batch_from_json(body, reader)))  # fmt: skip


def test_records_from_bytes_keep_no_reference_behind(reader) -> None:
    """Every value the decoder made is freed with the arrays, after a read and after a
    decline half-way (a leaked reference would keep a string per cell alive).
    """
    import tracemalloc

    records = [{"hotel": f"Hotel {i}", "meal": f"BB{i}", "adults": i} for i in range(200)]
    good = json.dumps({"dataframe_records": records}).encode()
    bad = json.dumps({"dataframe_records": [*records, {"hotel": "x", "meal": "y", "adults": True}]})

    def churn(times: int) -> None:
        for _ in range(times):
            assert reader.body(good) is not None
            assert reader.body(bad.encode()) is None

    churn(20)
    tracemalloc.start()
    try:
        churn(5)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        churn(100)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 100_000, grown  # a leak: ~400 strings a round, over 2 MB in 100


def test_the_whole_json_body_reads_alike(reader) -> None:
    body = json.dumps(
        {"dataframe_split": {"columns": ["hotel", "lead_time", "adr"],
                             "data": [["City Hotel", 3, 80.5], ["Resort Hotel", None, 1e300]]}}
    ).encode()  # fmt: skip
    _same(
        _outcome(lambda: parsing.parse("application/json", body)),
        _outcome(lambda: parsing.parse("application/json", body, reader=reader)),
    )


def test_references_are_kept_exactly_and_errors_cleared(reader) -> None:
    text = "".join(["City", " Hotel"])  # an object of its own
    rows = [[text, 1], [text, 2.5], [text, None]]
    before = sys.getrefcount(text)
    read = reader.split(["hotel", "lead_time"], rows)
    assert read is not None
    assert sys.getrefcount(text) == before + 3  # one per cell of the text column
    assert read["lead_time"].tobytes() == np.array([1.0, 2.5, np.nan]).tobytes()
    del read
    gc.collect()
    assert sys.getrefcount(text) == before
    # declining half-way (a bool, an int beyond a double) frees what it had taken, and
    # leaves no Python error set
    for bad in (True, 10**400, "3"):
        assert reader.split(["hotel", "lead_time"], [*rows, [text, bad]]) is None
        records = [{"hotel": text, "lead_time": 1}, {"hotel": text, "lead_time": bad}]
        assert reader.records(["hotel", "lead_time"], records) is None
        del records
        gc.collect()
        assert sys.getrefcount(text) == before
    assert reader.records(["hotel", "lead_time"], [{"hotel": text}]) is None  # too few keys
    assert reader.records(["hotel", "adr"], [{"hotel": text, "lead_time": 1}]) is None  # other


def test_declines_what_is_not_a_table(reader) -> None:
    assert reader.split(["hotel"], []) is None
    assert reader.split(["hotel"], [["x"], ("y",)]) is None  # a tuple is not a JSON row
    assert reader.split(["hotel"], "rows") is None
    assert reader.split(["nope"], [["x"]]) is None  # not in the data schema
    assert reader.records(["hotel"], [{"hotel": "x"}, ["x"]]) is None


def test_a_broken_cache_file_is_rebuilt_or_reported(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("INNFLOW_COMPILE", "1")
    target = jsonrows.library_path(tmp_path)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not a library")
    reader, state = jsonrows.load(build=False, directory=tmp_path)
    assert reader is None and state.startswith("python (OSError")
    reader, state = jsonrows.load(build=True, directory=tmp_path)
    assert state == "compiled" and reader is not None
    assert reader.split(["adults"], [[2]])["adults"].tolist() == [2.0]


def test_off_without_compiling_or_a_compiler(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("INNFLOW_COMPILE", "0")
    assert jsonrows.load(directory=tmp_path) == (None, "python (INNFLOW_COMPILE is off)")
    monkeypatch.setenv("INNFLOW_COMPILE", "1")
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    reader, state = jsonrows.load(directory=tmp_path)
    assert reader is None and state.startswith("python (")
    assert not jsonrows.library_path(tmp_path).exists()
