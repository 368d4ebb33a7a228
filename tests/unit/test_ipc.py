"""Sizes read from Arrow IPC message headers agree with what pyarrow decodes."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from innflow.serving import ipc, parsing


def _stream(table: pa.Table, compression: str | None = None, chunk: int | None = None) -> bytes:
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=compression)
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table, max_chunksize=chunk)
    return sink.getvalue().to_pybytes()


TABLE = pa.table(
    {
        "n": pa.array(range(1000)),
        "f": pa.array(np.linspace(0, 1, 1000)),
        "s": pa.array(["City Hotel", None, "Resort Hotel", "x" * 50] * 250),
        "d": pa.array(["BB", "HB"] * 500).dictionary_encode(),
        "b": pa.array([True, None] * 500),
    }
)


@pytest.mark.parametrize("compression", [None, "zstd", "lz4"])
@pytest.mark.parametrize("chunk", [None, 300])
def test_declared_rows_and_bytes_match_the_decoded_batches(compression, chunk) -> None:
    body = _stream(TABLE, compression, chunk)
    declared = list(ipc.declared(body))
    batches = list(pa.ipc.open_stream(body))
    data = [d for d in declared if d.rows]
    assert [d.rows for d in data] == [b.num_rows for b in batches]
    assert sum(d.rows for d in declared) == TABLE.num_rows
    for d, b in zip(data, batches, strict=True):  # within Arrow's padding of each buffer
        assert abs(d.bytes - b.nbytes) <= 64 * b.num_columns, (d, b.nbytes)
    assert len(declared) == len(data) + 1  # and the dictionary batch


def test_a_compressed_stream_declares_what_it_would_decode_to() -> None:
    wide = pa.table({"s": pa.array(["x" * 100_000] * 50)})  # 5 MB of text
    body = _stream(wide, "zstd")
    assert len(body) < 10_000
    assert sum(d.bytes for d in ipc.declared(body)) >= 5_000_000


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(data=st.data())
def test_damaged_streams_are_a_4xx_never_an_exception(data) -> None:
    """Bytes changed anywhere in a stream (headers or buffers): the service's reader gives
    columns or a RequestError (400/413), nothing else, and returns.
    """
    body = bytearray(_stream(TABLE.slice(0, 20), data.draw(st.sampled_from([None, "zstd"]))))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(body) - 1))
        body[at] = data.draw(st.integers(0, 255))
    try:
        batch = parsing.batch_from_arrow(bytes(body), max_rows=1_000, max_bytes=1_000_000)
    except parsing.RequestError as e:
        assert e.status in (400, 413), e.body
    else:
        assert all(len(values) == batch.rows for values in batch.columns.values())
