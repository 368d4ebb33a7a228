"""JSON rows into typed column arrays in C, for the service's batch requests.

Why: from orjson's rows to checked arrays, Python spent 1.3-1.8 ms on a 1,000-booking
``dataframe_split`` body (transposing 0.2-0.3 ms, each number column's type check and
conversion ~45 us), as much as orjson's parse itself; ``dataframe_records`` more. The
function in jsonrows.c (CPython's C API, called through ctypes with the GIL held) writes
every number column into one float64 block and every text column into an object array
in one pass: 0.1-0.15 ms for the same body.

A body of records (``dataframe_records``, ``instances``, ``inputs``) is read from its
bytes: msgspec decodes each record into a typed object with one slot per schema column
(no dict per record, no key string per value), and the C function copies the slots into
the same arrays. orjson's 1,000 dicts were 1.2 ms of a 1,000-booking request; this takes
0.67 ms, and the copy (the records freed with it) 0.13 ms against 0.23 from dicts. Any
body it does not take (a split body, an unknown column, mixed keys, malformed JSON) is
read by orjson as before.

It takes only what the Python path (parsing.py) would turn into the same arrays: every
column known to the data schema, every row of the same width (every record with the same
keys), numbers as int, float or null. Anything else (a bool, text in a number column, an
int beyond a double, a ragged row, an unknown column) makes it decline, and the Python
path reads the body and names each problem; tests check the two agree value for value.

The library is compiled once per Python ABI into the cache (INNFLOW_CACHE_DIR, beside
the compiled trees; needs a C compiler and Python's headers). Without them, or with
``INNFLOW_COMPILE=0``, every body takes the Python path.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import sysconfig
from functools import lru_cache
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from innflow import data
from innflow.serving import accelerate, compiled

log = logging.getLogger("innflow.serving")

SOURCE = Path(__file__).with_name("jsonrows.c")
Columns = dict[str, list[Any] | np.ndarray]  # parsing.Batch's
FIELDS = tuple(data.SCHEMA)  # the keys a record read from bytes may have
RECORD_KEYS = ("dataframe_records", "instances", "inputs")  # bodies that are lists of records
ABSENT = np.iinfo(np.int64).min  # jsonrows.c: a field no record may have


def _record_decoder() -> tuple[type, msgspec.json.Decoder]:
    """The record type (every schema column a field, unset unless given; unknown keys
    refused) and a decoder of bodies holding lists of them. Other keys of the body are
    skipped, as the Python path ignores them (MLflow's ``params``); ``dataframe_split``
    only as null, so that a split body is declined at its first key, unread. No GC
    tracking: decoded JSON holds no cycles, and the records live for one request.
    """
    unset, unset_type = msgspec.UNSET, msgspec.UnsetType
    record: Any = msgspec.defstruct("Record", [(n, Any, unset) for n in FIELDS],
                                    forbid_unknown_fields=True, gc=False)  # fmt: skip
    records = list[record] | unset_type  # type: ignore[valid-type]
    fields = [(key, records, unset) for key in RECORD_KEYS]
    body = msgspec.defstruct(
        "RecordsBody", [*fields, ("dataframe_split", None | unset_type, unset)], gc=False
    )
    return record, msgspec.json.Decoder(body)


def library_path(directory: Path | None = None) -> Path:
    """Where this Python's build of jsonrows.c is cached (keyed by source and ABI)."""
    key = f"{SOURCE.read_text()}\n{sysconfig.get_config_var('SOABI')}".encode()
    digest = hashlib.sha256(key).hexdigest()[:16]
    return (directory or compiled.cache_dir()) / "compiled" / f"jsonrows-{digest}.so"


@lru_cache(maxsize=64)
def _layout(names: tuple[str, ...]) -> tuple[np.ndarray, int, int] | None:
    """Per column its slot (>= 0: row of the number block, < 0: ~row of the text block),
    and the two blocks' heights; None when a column is not in the data schema.
    """
    if not set(names) <= data.SCHEMA.keys():
        return None
    slots, numbers, texts = [], 0, 0
    for name in names:
        if data.SCHEMA[name][0] == "str":
            slots.append(~texts)
            texts += 1
        else:
            slots.append(numbers)
            numbers += 1
    return np.array(slots, dtype=np.int64), numbers, texts


@lru_cache(maxsize=64)
def _field_slots(names: tuple[str, ...]) -> np.ndarray:
    """``_layout``'s slots over every field of the record type (ABSENT: not named)."""
    layout = _layout(names)
    assert layout is not None  # names are fields, so schema columns
    slots = np.full(len(FIELDS), ABSENT, dtype=np.int64)
    slots[[FIELDS.index(name) for name in names]] = layout[0]
    return slots


class RowReader:
    """The compiled reader loaded from its library."""

    def __init__(self, library: Path) -> None:
        self.library = library
        lib = ctypes.PyDLL(str(library))  # PyDLL: called with the GIL held
        try:
            self._split, self._records = lib.innflow_split, lib.innflow_records
        except AttributeError as e:  # another library at this path: as a file that won't load
            raise OSError(f"{library} is not the JSON row reader: {e}") from e
        arguments = [ctypes.c_void_p] * 3
        self._split.argtypes = [ctypes.py_object, ctypes.c_ssize_t, *arguments]
        self._records.argtypes = [ctypes.py_object, ctypes.py_object, *arguments]
        self._structs = lib.innflow_structs
        self._structs.argtypes = [ctypes.py_object] * 3 + [ctypes.c_ssize_t, *[ctypes.c_void_p] * 4]
        for function in (self._split, self._records, self._structs):
            function.restype = ctypes.c_long
        self._record, self._decoder = _record_decoder()
        offset = lib.innflow_offset
        offset.argtypes, offset.restype = [ctypes.py_object], ctypes.c_ssize_t
        offsets = [offset(self._record.__dict__[name]) for name in FIELDS]
        # a msgspec whose fields are not plain slots: records are then read from dicts
        self._offsets = np.array(offsets, dtype=np.intp) if min(offsets) >= 0 else None

    def split(self, names: list[str], rows: Any) -> Columns | None:
        """``dataframe_split`` rows (names checked unique) as columns, or None: decline."""
        if not isinstance(rows, list) or not rows:
            return None
        return self._read(names, len(rows), lambda *out: self._split(rows, len(names), *out))

    def records(self, names: list[str], records: Any) -> Columns | None:
        """Records with exactly the keys ``names`` as columns, or None: decline."""
        if not isinstance(records, list) or not records:
            return None
        keys = tuple(names)
        return self._read(names, len(records), lambda *out: self._records(records, keys, *out))

    def body(self, body: bytes) -> tuple[Columns, int] | None:
        """A body whose one key is a list of records, every one with the same keys, read
        from its bytes: the columns and the number of rows, or None: decline (orjson
        reads it then).
        """
        if self._offsets is None:
            return None
        try:
            decoded = self._decoder.decode(body)
        except (ValueError, RecursionError):  # msgspec's errors are ValueErrors
            return None
        given = [r for key in RECORD_KEYS if (r := getattr(decoded, key)) is not msgspec.UNSET]
        if len(given) != 1 or not given[0] or decoded.dataframe_split is not msgspec.UNSET:
            return None
        records = given[0]
        first = records[0]
        names = [name for name in FIELDS if getattr(first, name) is not msgspec.UNSET]
        if not names:
            return None
        slots, offsets = _field_slots(tuple(names)), self._offsets
        read = self._read(names, len(records), lambda _, *out: self._structs(
            records, self._record, msgspec.UNSET, len(FIELDS), offsets.ctypes.data,
            slots.ctypes.data, *out))  # fmt: skip
        return None if read is None else (read, len(records))

    @staticmethod
    def _read(names: list[str], rows: int, call: Any) -> Columns | None:
        layout = _layout(tuple(names))
        if layout is None:
            return None
        slots, numbers, texts = layout
        number_block = np.empty((numbers, rows), dtype="float64")
        text_block = np.empty((texts, rows), dtype=object)  # full of None
        if call(slots.ctypes.data, number_block.ctypes.data, text_block.ctypes.data):
            return None
        return {
            name: number_block[slot] if slot >= 0 else text_block[~slot]
            for name, slot in zip(names, slots.tolist(), strict=True)
        }


def load(build: bool = True, directory: Path | None = None) -> tuple[RowReader | None, str]:
    """The reader (compiled first when ``build`` and not cached), and how bodies are read:
    ``compiled``, or why not.
    """
    if not accelerate.enabled():
        return None, "python (INNFLOW_COMPILE is off)"
    target = library_path(directory)
    headers = sysconfig.get_paths()["include"]

    def compile_it() -> None:
        compiled.compile_library(SOURCE.read_text(), target, (f"-I{headers}",), nice=True)

    if build and not target.exists() and not (Path(headers) / "Python.h").exists():
        return None, f"python (no Python.h in {headers})"
    try:
        reader = compiled.cached_library(target, compile_it if build else None, RowReader)
    except (OSError, RuntimeError) as e:  # no compiler, a broken cache file: Python reads
        log.warning("JSON rows read in Python: %s", e)
        return None, f"python ({type(e).__name__}: {e})"[:500]
    if reader is None:
        return None, f"python (no compiled reader cached at {target})"
    return reader, "compiled"
