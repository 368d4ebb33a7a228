"""What an Arrow IPC stream would decode to, read from its message headers before anything
is decoded.

Why: a compressed record batch declares each buffer's decompressed length, and pyarrow
allocates and fills that much when it reads the batch. A 5 MB zstd body can declare
gigabytes; the service must refuse it before pyarrow allocates. pyarrow's Python API
exposes each message's header only as flatbuffer bytes (``Message.metadata``), so the few
fields needed are read here, following Arrow's ``Message.fbs``/``Schema.fbs`` layout:
Message {version, header_type, header, bodyLength}; RecordBatch {length, nodes, buffers,
compression}; DictionaryBatch {id, data: RecordBatch}; Buffer {offset: long, length: long}.
A compressed buffer starts with its decompressed length as a little-endian int64 (-1 when
that buffer was left uncompressed).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_DICTIONARY_BATCH, _RECORD_BATCH = 2, 3  # MessageHeader union tags


class MalformedStream(ValueError):
    """A message header that does not parse as Arrow IPC."""


@dataclass(frozen=True)
class Declared:
    """One data message: rows (0 for a dictionary batch) and bytes once decoded."""

    rows: int
    bytes: int


def declared(body: bytes) -> Iterator[Declared]:
    """Each record or dictionary batch of the stream ``body``, as its headers declare it."""
    import pyarrow as pa

    for message in pa.ipc.MessageReader.open_stream(body):
        if message.type not in ("record batch", "dictionary"):
            continue
        header = message.metadata.to_pybytes()  # small; the body is only looked into
        content = memoryview(message.body) if message.body is not None else memoryview(b"")
        try:
            yield _declared(header, content)
        except (struct.error, IndexError) as e:
            raise MalformedStream(f"unreadable {message.type} header") from e


def _declared(header: bytes, content: memoryview) -> Declared:
    root = _u32(header, 0)
    kind = _field(header, root, 1, "<B", 0)
    batch = _table(header, root, 2)
    if batch is None or kind not in (_DICTIONARY_BATCH, _RECORD_BATCH):
        raise MalformedStream("a data message without a batch")
    rows = 0
    if kind == _DICTIONARY_BATCH:
        batch = _table(header, batch, 1)
        if batch is None:
            raise MalformedStream("a dictionary batch without data")
    else:
        rows = _field(header, batch, 0, "<q", 0)
    compressed = _table(header, batch, 3) is not None
    size = 0
    for offset, length in _buffers(header, batch):
        if length <= 0:
            continue
        if offset < 0 or offset + length > len(content):
            raise MalformedStream("a buffer outside the message body")
        if compressed and length >= 8:
            (decoded,) = struct.unpack_from("<q", content, offset)
            size += length - 8 if decoded == -1 else decoded
        else:
            size += length
    if rows < 0 or size < 0:
        raise MalformedStream("negative sizes")
    return Declared(rows, size)


def _u32(data: bytes, at: int) -> int:
    return int(struct.unpack_from("<I", data, at)[0])


def _slot(data: bytes, table: int, index: int) -> int:
    """Offset of field ``index`` within ``table``, or 0 when it is absent."""
    vtable = table - struct.unpack_from("<i", data, table)[0]
    size = struct.unpack_from("<H", data, vtable)[0]
    at = 4 + 2 * index
    return int(struct.unpack_from("<H", data, vtable + at)[0]) if at + 2 <= size else 0


def _field(data: bytes, table: int, index: int, form: str, default: Any) -> Any:
    slot = _slot(data, table, index)
    return struct.unpack_from(form, data, table + slot)[0] if slot else default


def _table(data: bytes, table: int, index: int) -> int | None:
    slot = _slot(data, table, index)
    return table + slot + _u32(data, table + slot) if slot else None


def _buffers(data: bytes, batch: int) -> list[tuple[int, int]]:
    slot = _slot(data, batch, 2)
    if not slot:
        return []
    vector = batch + slot + _u32(data, batch + slot)
    count = _u32(data, vector)
    if vector + 4 + 16 * count > len(data):  # a count the header cannot hold
        raise MalformedStream("a buffer list longer than its header")
    return [struct.unpack_from("<qq", data, vector + 4 + 16 * i) for i in range(count)]
