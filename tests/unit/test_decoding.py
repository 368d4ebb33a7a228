"""The msgspec request decoder: the same arrays as the Python path whenever it reads a
body, a decline (never an error) whenever it should not.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable

import msgspec
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from innflow import data
from innflow.serving import core, decoding, parsing

DECODER = decoding.for_bookings()


def _outcome(read: Callable[[], parsing.Batch]) -> tuple:
    """What the service would make of a body: the error, or check's errors and arrays."""
    try:
        batch = read()
    except parsing.RequestError as e:
        return ("refused", e.status, e.body)
    # the model's columns: the body's schema columns (in one order: records decoded by
    # msgspec keep the contract's order, not the body's)
    columns = sorted(c for c in batch.columns if c in data.SCHEMA)
    return ("read", batch.rows, core.check(batch, columns))


def _same(python: tuple, decoded: tuple) -> None:
    assert python[:2] == decoded[:2]
    if python[0] == "refused":
        assert python == decoded
        return
    (errors, arrays), (decoded_errors, decoded_arrays) = python[2], decoded[2]
    assert errors == decoded_errors
    assert arrays.keys() == decoded_arrays.keys()
    for name, values in arrays.items():
        other = decoded_arrays[name]
        assert values.dtype == other.dtype, name
        if values.dtype == object:
            assert [(type(v), repr(v)) for v in values] == [(type(v), repr(v)) for v in other]
        else:
            assert values.tobytes() == other.tobytes(), name  # bit for bit, NaN included


def _both(body: bytes) -> None:
    """The body through the Python path and through the decoder, twice (the second time
    as a body of the shape it last decoded): the same outcome.
    """
    python = _outcome(lambda: parsing.parse("application/json", body))
    for _ in range(2):
        _same(python, _outcome(lambda: parsing.parse("application/json", body, decoder=DECODER)))


def test_a_real_batch_is_decoded_and_equals_the_python_path(sample_frame) -> None:
    frame = sample_frame.head(1000).drop(columns=["is_canceled"])
    names = [c for c in frame.columns if c in data.SCHEMA]
    split = json.loads(frame[names].to_json(orient="split", index=False))
    records = json.loads(frame[names].to_json(orient="records"))
    bodies = [json.dumps({"dataframe_split": split}).encode()]
    bodies += [json.dumps({key: records}).encode() for key in decoding.RECORD_KEYS]
    for body in bodies:
        assert DECODER.decode(body) is not None  # not declined
        _both(body)


NAMES = sorted(data.SCHEMA)
cells = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, -1, 2**53 + 1, 2**64, 10**400, -(10**400), 2**1023 * 2 - 1]),
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
    """Column names (mostly the schema's, sometimes an unknown one or a repeated one) and
    rows of cells, mostly plain numbers and text of the right kind, sometimes anything,
    sometimes ragged.
    """
    names = draw(st.lists(st.sampled_from([*NAMES, "unknown"]), min_size=1, max_size=5,
                          unique=True))  # fmt: skip
    if draw(st.integers(0, 19)) == 0:
        names.append(names[0])
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
@given(table=tables(), extra=st.booleans())
def test_split_bodies_decode_as_the_python_path_reads_them(table, extra) -> None:
    names, rows = table
    split: dict = {"columns": names, "data": rows}
    if extra:
        split["index"] = list(range(len(rows)))  # pandas' split with its index
    _both(json.dumps({"dataframe_split": split}).encode())


@EQUIVALENCE
@given(table=tables(), drop=st.booleans(), extra=st.booleans(),
       key=st.sampled_from([*parsing.JSON_KEYS, "params"]), second=st.booleans())  # fmt: skip
def test_record_bodies_decode_as_the_python_path_reads_them(
    table, drop, extra, key, second
) -> None:
    """Records under each key (and split tables, bodies with two keys or an extra one),
    NaN and Infinity tokens, integers beyond a double, missing and extra keys.
    """
    names, rows = table
    records = [dict(zip(names, row, strict=False)) for row in rows]
    if drop and len(records[-1]) > 1:
        records[-1].popitem()  # a key missing from one record
    if extra:
        records[-1]["adults"] = 2  # a key one record has beyond the others (or the same)
    payload: dict = {key: records if key != "dataframe_split" else {"columns": names, "data": rows}}
    if second:
        payload["dataframe_records" if key == "params" else "params"] = records[:1]
    _both(json.dumps(payload).encode())  # NaN/Infinity become bare tokens


def test_only_plain_tables_are_decoded() -> None:
    def body(records: object, key: str = "dataframe_records", **more: object) -> bytes:
        return json.dumps({key: records, **more}).encode()

    read = DECODER.decode(body([{"hotel": "City Hotel", "adults": 2, "children": None},
                                {"adults": 1.5, "children": 1, "hotel": "x"}]))  # fmt: skip
    assert read is not None
    columns, rows = read
    assert rows == 2 and set(columns) == {"hotel", "adults", "children"}
    assert columns["hotel"].tolist() == ["City Hotel", "x"]
    assert columns["adults"].tolist() == [2.0, 1.5]
    assert np.isnan(columns["children"][0]) and columns["children"][1] == 1.0
    # other keys are ignored, as the Python path ignores them (MLflow's params)
    assert DECODER.decode(body([{"adults": 2}], params={"x": [1, {"y": None}]})) is not None
    split = {"columns": ["hotel", "adults"], "data": [["x", 2], ["y", -0]]}
    read = DECODER.decode(body(split, "dataframe_split"))
    assert read is not None and read[0]["adults"].tobytes() == np.array([2.0, 0.0]).tobytes()
    declined = [
        body([]),
        body([{}]),
        body([{"hotel": "x"}, {}]),  # a key missing from a later record
        body([{"hotel": "x"}, {"hotel": "y", "adults": 1}]),  # a key only a later one has
        body([{"adults": 1}, {"adults": 1, "hotel": "y"}]),  # ... a text one
        body([{"hotel": "x", "surprise": 1}]),  # not a contract column
        body([{"hotel": 3}]),  # a number in a text column
        body([{"hotel": None}]),  # null where the contract allows none
        body([{"adults": None}]),
        body([{"hotel": 2**70}]),
        body([{"adults": True}]),  # a bool in a number column
        body([{"adults": "2"}]),
        body([{"adults": 10**400}]),  # beyond a double
        body([{"adults": 2}], instances=[{"adults": 2}]),  # two keys: refused there
        body([{"adults": 2}], dataframe_split=None),
        body({"adults": [2]}, "inputs"),  # columnar inputs
        body({"columns": ["adults"], "data": [[2], [1, 2]]}, "dataframe_split"),  # ragged
        body({"columns": ["adults"], "data": [[True]]}, "dataframe_split"),
        body({"columns": ["adults", "adults"], "data": [[1, 1]]}, "dataframe_split"),
        body({"columns": ["nope"], "data": [[1]]}, "dataframe_split"),
        body({"columns": ["adults"], "data": []}, "dataframe_split"),
        body({"columns": [], "data": [[]]}, "dataframe_split"),
        body({"data": [[1]]}, "dataframe_split"),
        b'{"dataframe_records": [{"adults": NaN}]}',
        b'{"dataframe_records": [{"adults": 2}]',  # malformed
        b"[" * 100_000 + b"]" * 100_000,
        b'{"dataframe_records": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        rb'{"dataframe_records": [{"hotel": "\ud800"}]}',  # a lone surrogate
    ]
    for bad in declined:
        assert DECODER.decode(bad) is None, bad[:80]
        _both(bad)


def test_repeated_keys_count_as_orjson_counts_them() -> None:
    """The last one wins, in a record, in the body and in a split body."""
    for repeated in (
        b'{"dataframe_records": [{"adults": 1, "adults": 2, "hotel": "x"}]}',
        b'{"dataframe_records": [{"adults": 1}], "dataframe_records": [{"adults": 3}]}',
        b'{"dataframe_split": {"columns": ["adults"], "columns": ["babies"], "data": [[1]]}}',
    ):
        assert DECODER.decode(repeated) is not None
        _both(repeated)
    assert DECODER.decode(
        b'{"dataframe_records": [{"adults": 1, "adults": 2}]}'
    )[0]["adults"].tolist() == [2.0]  # fmt: skip


def test_the_last_shape_is_tried_first_and_holds_bodies_to_it() -> None:
    """After a body of a shape, bodies of that shape decode in one pass (every field
    required), and bodies of any other shape still decode or decline as before.
    """
    decoder = decoding.Decoder(data.CONTRACT)
    records = [{"hotel": "x", "adults": 2, "children": None}, {"hotel": "y", "adults": 1,
                                                                "children": 3}]  # fmt: skip
    body = json.dumps({"instances": records}).encode()
    first = decoder.decode(body)
    assert decoder._last == decoding.Shape("instances", ("hotel", "adults", "children"))
    again = decoder.decode(body)
    assert first is not None and again is not None
    assert {k: repr(v.tolist()) for k, v in first[0].items()} == {
        k: repr(v.tolist()) for k, v in again[0].items()
    }
    others = [
        json.dumps(
            {"instances": [records[0], {"hotel": "y", "adults": 1}]}
        ).encode(),  # a key fewer
        json.dumps({"instances": [records[0], {**records[1], "babies": 0}]}).encode(),  # one more
        json.dumps({"instances": records, "dataframe_split": None}).encode(),  # another key
        json.dumps({"dataframe_records": records}).encode(),  # another key, the same records
        json.dumps(
            {
                "dataframe_split": {
                    "columns": ["hotel", "adults", "children"],
                    "data": [["x", 2, None]],
                }
            }
        ).encode(),
        json.dumps(
            {
                "dataframe_split": {
                    "columns": ["adults", "hotel", "children"],
                    "data": [[2, "x", None]],
                }
            }
        ).encode(),
    ]
    for other in others:
        decoder._last = decoding.Shape("instances", ("hotel", "adults", "children"))
        _same(_outcome(lambda other=other: parsing.parse("application/json", other)),
              _outcome(lambda other=other: parsing.parse("application/json", other,
                                                         decoder=decoder)))  # fmt: skip
    decoder._last = decoding.Shape("dataframe_split", ("adults", "hotel", "children"))
    for other in others:
        _same(_outcome(lambda other=other: parsing.parse("application/json", other)),
              _outcome(lambda other=other: parsing.parse("application/json", other,
                                                         decoder=decoder)))  # fmt: skip


def test_the_record_types_are_the_contracts() -> None:
    """Text as str, numbers as float, null only where the contract allows it."""
    types = {c.name: decoding.value_type(c) for c in data.CONTRACT.columns.values()}
    assert types["hotel"] is str and types["adults"] is float
    assert types["children"] == float | None and types["country"] == str | None
    number = types["adults"]
    assert msgspec.json.decode(b"[2, 2.5]", type=list[number]) == [2.0, 2.5]


def test_decoding_keeps_nothing_behind() -> None:
    """Every value decoded is freed with the arrays, after a read and after a decline
    half-way.
    """
    import tracemalloc

    records = [{"hotel": f"Hotel {i}", "meal": f"BB{i}", "adults": i} for i in range(200)]
    good = json.dumps({"dataframe_records": records}).encode()
    bad = json.dumps({"dataframe_records": [*records, {"hotel": "x", "meal": "y"}]}).encode()

    def churn(times: int) -> None:
        for _ in range(times):
            assert DECODER.decode(good) is not None
            assert DECODER.decode(bad) is None

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
    assert grown < 100_000, grown


def test_the_whole_json_body_decodes_alike() -> None:
    _both(json.dumps(
        {"dataframe_split": {"columns": ["hotel", "lead_time", "adr"],
                             "data": [["City Hotel", 3, 80.5], ["Resort Hotel", 2, 1e300]]}}
    ).encode())  # fmt: skip
