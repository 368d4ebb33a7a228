"""JSON bodies of bookings into column arrays with msgspec, for the usual requests.

msgspec decodes a body straight into the types the data contract gives each column (text
as ``str``, numbers as ``float``, null only where the column is nullable): a record is a
typed object with one slot per contract column, a ``dataframe_split`` row a typed tuple of
its columns. ``struct`` and numpy then turn the values into one float64 array per number
column (nulls NaN) and one object array per text column, the arrays the Python path
(parsing.py) makes.

It takes only bodies the Python path would turn into the same arrays: every column in the
contract, every row of the same width, every record with the same keys. Anything msgspec
refuses (a bool, text in a number column, an integer beyond a double, a null where the
contract allows none, a ragged row, an unknown column, NaN tokens) makes it decline, and
the Python path reads the body and names each problem; tests check the two agree value for
value.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from functools import lru_cache
from itertools import chain
from typing import Any, NamedTuple

import msgspec
import numpy as np
from msgspec.structs import astuple

from innflow import data
from innflow.contract import Column, Contract

Columns = dict[str, list[Any] | np.ndarray]  # parsing.Batch's
RECORD_KEYS = ("dataframe_records", "instances", "inputs")  # bodies that are lists of records
KEYS = ("dataframe_split", *RECORD_KEYS)
UNSET = msgspec.UNSET


def value_type(column: Column) -> Any:
    """The Python type msgspec decodes a column's JSON values to (ints become floats)."""
    base = str if column.kind == "str" else float
    return base | None if column.nullable else base


class Decoder:
    """A contract's JSON body decoder: ``decode`` gives columns, or None to decline."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.fields = tuple(contract.columns)
        self._known = frozenset(self.fields)
        # Every column a field, unset unless given, unknown keys refused. No GC tracking:
        # decoded JSON holds no cycles, and the records live for one request.
        record: Any = msgspec.defstruct(
            "Record",
            [(n, value_type(c) | msgspec.UnsetType, UNSET) for n, c in contract.columns.items()],
            forbid_unknown_fields=True,
            gc=False,
        )
        # A split body's rows are typed by its columns, so they are kept raw (unparsed) at
        # first; other keys (MLflow's ``params``) are skipped, as the Python path ignores them.
        split = msgspec.defstruct("Split", [("columns", list[str]), ("data", msgspec.Raw)])
        records = list[record] | msgspec.UnsetType  # type: ignore[valid-type]
        body = msgspec.defstruct(
            "Body",
            [("dataframe_split", split | msgspec.UnsetType, UNSET),
             *[(key, records, UNSET) for key in RECORD_KEYS]],
            gc=False,
        )  # fmt: skip
        self._body = msgspec.json.Decoder(body)
        self._rows = lru_cache(maxsize=64)(self._rows_decoder)
        self._layout = lru_cache(maxsize=64)(self._grouped)
        self._shaped = lru_cache(maxsize=16)(self._shaped_decoder)
        self._last: Shape | None = None  # the shape of the last body decoded

    def decode(self, body: bytes) -> tuple[Columns, int] | None:
        """A body with one of MLflow's keys, as columns and the number of rows; None when
        the body is not a plain table of the contract's columns and types.

        A client sends one shape of table over and over, so the last body's shape (its key
        and columns) is tried first: one pass, every field required. Any other body is
        decoded as any table of the contract's columns.
        """
        if self._last is not None and (read := self._decode_shaped(body, self._last)):
            return read
        try:
            decoded: Any = self._body.decode(body)
        except (msgspec.DecodeError, RecursionError):  # (ValidationError is a DecodeError)
            return None
        keys = [k for k in KEYS if getattr(decoded, k) is not UNSET]
        if len(keys) != 1:
            return None
        if keys[0] == "dataframe_split":
            names = tuple(decoded.dataframe_split.columns)
            read = self._split(names, decoded.dataframe_split.data)
        else:
            records = getattr(decoded, keys[0])
            names = tuple(n for n in self.fields if records and getattr(records[0], n) is not UNSET)
            read = self._records(names, records)
        if read is not None:
            self._last = Shape(keys[0], names)
        return read

    def _shaped_decoder(self, shape: Shape) -> msgspec.json.Decoder:
        """Bodies of one shape: under its key a split table of exactly its columns or
        records of exactly its fields; any other key (seen, never parsed) makes it decline.
        """
        types = [value_type(self.contract.columns[n]) for n in shape.names]
        if shape.key == "dataframe_split":
            row: Any = tuple.__class_getitem__(tuple(types))
            table: Any = msgspec.defstruct("Split", [("columns", list[str]), ("data", list[row])])
        else:
            record = msgspec.defstruct("Record", list(zip(shape.names, types, strict=True)),
                                       forbid_unknown_fields=True, gc=False)  # fmt: skip
            table = list[record]  # type: ignore[valid-type]
        fields = [(k, (table if k == shape.key else msgspec.Raw) | msgspec.UnsetType, UNSET)
                  for k in KEYS]  # fmt: skip
        return msgspec.json.Decoder(msgspec.defstruct("Body", fields, gc=False))

    def _decode_shaped(self, body: bytes, shape: Shape) -> tuple[Columns, int] | None:
        try:
            decoded: Any = self._shaped(shape).decode(body)
        except (msgspec.DecodeError, RecursionError):
            return None
        if any(getattr(decoded, k) is not UNSET for k in KEYS if k != shape.key):
            return None
        table = getattr(decoded, shape.key)
        if table is UNSET:
            return None
        if shape.key == "dataframe_split":
            if tuple(table.columns) != shape.names or not table.data:
                return None
            return self._arrays(shape.names, list(zip(*table.data, strict=True)), len(table.data))
        if not table:
            return None
        values = list(zip(*map(astuple, table), strict=True))  # every field set in every one
        return self._arrays(shape.names, values, len(table))

    def _rows_decoder(self, names: tuple[str, ...]) -> msgspec.json.Decoder:
        row: Any = tuple.__class_getitem__(
            tuple(value_type(self.contract.columns[n]) for n in names)
        )
        return msgspec.json.Decoder(list[row])  # a row of another length: refused

    def _split(self, names: tuple[str, ...], data: msgspec.Raw) -> tuple[Columns, int] | None:
        if not names or len(set(names)) < len(names) or not self._known.issuperset(names):
            return None  # (unknown and repeated columns: the Python path says which)
        try:
            rows = self._rows(names).decode(data)
        except (msgspec.DecodeError, RecursionError):
            return None
        if not rows:
            return None
        return self._arrays(names, list(zip(*rows, strict=True)), len(rows))

    def _records(self, names: tuple[str, ...], records: list[Any]) -> tuple[Columns, int] | None:
        if not names:  # (no records, or a first record without a field)
            return None
        values = dict(zip(self.fields, zip(*map(astuple, records), strict=True), strict=True))
        n, layout = len(records), self._layout(names)
        # every record with the first's keys: the others unset in all, its own set in all
        # (an unset number fails its conversion below; text is looked at here)
        if any(values[name].count(UNSET) != n for name in layout.absent):
            return None
        if any(UNSET in values[names[i]] for i in layout.text):
            return None
        return self._arrays(names, [values[name] for name in names], n)

    def _grouped(self, names: tuple[str, ...]) -> _Layout:
        groups: dict[str, list[int]] = {"numbers": [], "nullable": [], "text": []}
        for i, name in enumerate(names):
            column = self.contract.columns[name]
            group = "text" if column.kind == "str" else "nullable" if column.nullable else "numbers"
            groups[group].append(i)
        absent = tuple(name for name in self.fields if name not in names)
        return _Layout(**{group: tuple(indices) for group, indices in groups.items()},
                       absent=absent)  # fmt: skip

    def _arrays(
        self, names: tuple[str, ...], columns: Sequence[Sequence[Any]], rows: int
    ) -> tuple[Columns, int] | None:
        """Decoded values (one sequence per column) as float64 and object arrays, a few
        calls per column: non-nullable numbers packed as doubles by ``struct`` (which
        converts Python floats faster than numpy does), nullable ones by numpy (None
        becomes NaN), text into one object block.
        """
        layout, pack = self._layout(names), _doubles(rows).pack
        try:
            packed = bytearray(b"".join([pack(*columns[i]) for i in layout.numbers]))
            nullable = np.array([columns[i] for i in layout.nullable], np.float64)
        except (struct.error, TypeError, ValueError):  # a value left unset: a key missing
            return None
        text = chain.from_iterable(columns[i] for i in layout.text)
        found: Columns = {}
        for indices, block in (
            (layout.numbers, np.frombuffer(packed, np.float64).reshape(-1, rows)),
            (layout.nullable, nullable),
            (layout.text, np.fromiter(text, object, len(layout.text) * rows).reshape(-1, rows)),
        ):
            found.update(zip([names[i] for i in indices], block, strict=True))
        return found, rows


class Shape(NamedTuple):
    """A table's shape: the body's key and the table's columns (a split body's in its
    order, records' in the contract's).
    """

    key: str
    names: tuple[str, ...]


class _Layout(NamedTuple):
    """Where a table's columns go (indices into its names), and the fields it lacks."""

    numbers: tuple[int, ...]  # non-nullable numbers
    nullable: tuple[int, ...]
    text: tuple[int, ...]
    absent: tuple[str, ...]


@lru_cache(maxsize=64)
def _doubles(count: int) -> struct.Struct:
    return struct.Struct(f"={count}d")


@lru_cache(maxsize=1)
def for_bookings() -> Decoder:
    """The bookings contract's decoder, built once (its types are made at first use)."""
    return Decoder(data.CONTRACT)
