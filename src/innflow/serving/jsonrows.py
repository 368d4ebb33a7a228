"""JSON rows into typed column arrays in C, for the service's batch requests.

Why: from orjson's rows to checked arrays, Python spent 1.3-1.8 ms on a 1,000-booking
``dataframe_split`` body (transposing 0.2-0.3 ms, each number column's type check and
conversion ~45 us), as much as orjson's parse itself; ``dataframe_records`` more. The
function in jsonrows.c (CPython's C API, called through ctypes with the GIL held) writes
every number column into one float64 block and every text column into an object array
in one pass: 0.1-0.15 ms for the same body.

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

import numpy as np

from innflow import data
from innflow.serving import accelerate, compiled

log = logging.getLogger("innflow.serving")

SOURCE = Path(__file__).with_name("jsonrows.c")
Columns = dict[str, list[Any] | np.ndarray]  # parsing.Batch's


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
        for function in (self._split, self._records):
            function.restype = ctypes.c_long

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
