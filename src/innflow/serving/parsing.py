"""MLflow's scoring protocol (JSON `dataframe_split`, `dataframe_records`, `instances`,
`inputs`; CSV; and an Arrow IPC stream for batch clients) into columns of plain values, or
a 4xx naming the row and field. No DataFrame per request; msgspec decodes first
(serving/decoding.py), what it declines takes the path below, which names each problem.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd
from pydantic_core import from_json

from innflow import data
from innflow.contract import Contract
from innflow.serving import ipc

if TYPE_CHECKING:
    from innflow.serving.decoding import Decoder

JSON_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def booking_schema(columns: list[str], contract: Contract = data.CONTRACT) -> dict[str, Any]:
    """One booking (a row) as a model takes it, in JSON Schema: each input column's type,
    nullability and domain from the model's data contract (what validation enforces row by
    row).
    """
    properties = {name: contract.columns[name].json_schema() for name in columns}
    return {"type": "object", "required": list(columns), "properties": properties,
            "description": IGNORED_FIELDS}  # fmt: skip


IGNORED_FIELDS = ("other booking columns (and another variant's) are accepted and ignored, "
                  "named in the X-Ignored-Columns header; any other field is refused")  # fmt: skip


def request_body(
    columns: list[str], record: dict[str, Any] | None = None, contract: Contract = data.CONTRACT
) -> dict[str, Any]:
    """The scoring request in the OpenAPI document, records typed by the served model's
    input columns (the routes read the body themselves: one parser for JSON and CSV, and
    errors that name row and field); ``record``: one record's schema when the model is
    not innflow's (from its signature), else a booking's.
    """
    records = {"type": "array", "items": record or booking_schema(columns, contract),
               "description": "one object a booking"}  # fmt: skip
    split = {
        "type": "object",
        "required": ["columns", "data"],
        "properties": {
            "columns": {"type": "array", "items": {"enum": list(columns)}},
            "data": {"type": "array", "items": {"type": "array"}},
        },
    }
    protocol = {
        "type": "object",
        "description": "MLflow's scoring protocol: exactly one of these keys",
        "minProperties": 1,
        "maxProperties": 1,
        "properties": {"dataframe_split": split, "dataframe_records": records,
                       "instances": records, "inputs": {"oneOf": [records, split]}},
    }  # fmt: skip
    csv = {"type": "string", "description": "a header row naming " + ", ".join(columns)}
    arrow = {"type": "string", "format": "binary",
             "description": "an Arrow IPC stream with these columns (numbers as integer or "
                            "floating types, text as string)"}  # fmt: skip
    return {
        "required": True,
        "content": {"application/json": {"schema": protocol}, "text/csv": {"schema": csv},
                    ARROW_STREAM: {"schema": arrow},
                    PARQUET: {"schema": {**arrow, "description": "a Parquet file with these "
                                         "columns (DataFrame.to_parquet())"}}},
    }  # fmt: skip


PREDICT_RESPONSE = {
    "type": "object",
    "required": ["threshold", "predictions"],
    "properties": {
        "threshold": {"type": "number", "description": "the model's decision threshold"},
        "predictions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["probability", "likely_cancel", "model_version", "variant"],
                "properties": {
                    "probability": {"type": "number", "minimum": 0, "maximum": 1},
                    "likely_cancel": {"type": "boolean"},
                    "model_version": {"type": "string"},
                    "variant": {"type": "string"},
                    "reasons": {
                        "type": "array",
                        "description": "with explain=true: top contributing features",
                        "items": {
                            "type": "object",
                            "properties": {
                                "feature": {"type": "string"},
                                "value": {},
                                "contribution": {"type": "number"},
                                "effect": {"enum": ["raises", "lowers"]},
                            },
                        },
                    },
                },
            },
        },
    },
}
INVOCATIONS_RESPONSE = {
    "type": "object",
    "required": ["predictions"],
    "properties": {
        "predictions": {
            "type": "array",
            "description": "per booking [p(stay), p(cancel)], as MLflow's server answers",
            "items": {"type": "array", "items": {"type": "number"}},
        }
    },
}


# A regression model's answers: a number per row.
REGRESSION_PREDICT_RESPONSE = {
    "type": "object",
    "required": ["predictions"],
    "properties": {
        "predictions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["prediction", "model_version", "variant"],
                "properties": {
                    "prediction": {"type": "number"},
                    "model_version": {"type": "string"},
                    "variant": {"type": "string"},
                },
            },
        },
    },
}
REGRESSION_INVOCATIONS_RESPONSE = {
    "type": "object",
    "required": ["predictions"],
    "properties": {
        "predictions": {
            "type": "array",
            "description": "the predicted number per row, as MLflow's server answers",
            "items": {"type": "number"},
        }
    },
}


class RequestError(Exception):
    """A request the service refuses: HTTP status and a JSON-able body."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: list[dict] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers
        self.body: dict[str, Any] = {"error": message}
        if errors:
            self.body["errors"] = errors


@dataclass(frozen=True)
class Batch:
    """Bookings as columns (column name -> one value per row): lists of raw values, or,
    from Arrow and the msgspec decoder, float64 arrays for numbers and object arrays for
    text.
    """

    columns: dict[str, list[Any] | np.ndarray]
    rows: int

    def first_row(self) -> dict[str, Any]:
        """The first booking (for sticky routing), its numbers in one form whatever the
        body's format (12, 12.0 and Arrow's float 12.0 are the same booking; NaN is null).
        """
        if not self.rows:
            return {}
        return {name: _plain(values[0]) for name, values in self.columns.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if value != value:
            return None
        if value.is_integer():
            return int(value)
    return value


def _named(columns: Any, key: str) -> list[str]:
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise RequestError(400, f"'{key}': column names must be a list of strings")
    duplicated = sorted(c for c, n in Counter(columns).items() if n > 1)
    if duplicated:
        raise RequestError(400, f"'{key}': duplicate column(s) {', '.join(duplicated)}")
    return columns


def _from_records(value: Any, key: str) -> Batch:
    if isinstance(value, dict):  # column -> values ("inputs" in columnar form)
        names = _named(list(value), key)
        columns = {n: v if isinstance(v, list) else [v] for n, v in value.items()}
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise RequestError(400, f"'{key}': columns have different lengths")
        return Batch(
            dict(zip(names, columns.values(), strict=True)), lengths.pop() if lengths else 0
        )
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise RequestError(400, f"'{key}' must be a list of records (objects)")
    names = list(value[0]) if value else []
    if len(names) > 1 and all(len(r) == len(names) for r in value):
        try:  # the usual case, every record with the same keys: ~3x faster
            return _transposed(names, list(map(itemgetter(*names), value)))
        except KeyError:
            pass  # same sizes, other keys: the general way below
    names = list(dict.fromkeys(name for record in value for name in record))
    # A key absent from one record is null there, as a DataFrame built from the records has it.
    return Batch({n: [r.get(n) for r in value] for n in names}, len(value))


def _from_split(value: Any) -> Batch:
    if not isinstance(value, dict) or "columns" not in value or "data" not in value:
        raise RequestError(400, "'dataframe_split' needs 'columns' and 'data'")
    names = _named(value["columns"], "dataframe_split")
    rows = value["data"]
    if not isinstance(rows, list) or not set(map(type, rows)) <= {list}:
        raise RequestError(400, "'dataframe_split.data' must be a list of rows")
    if not set(map(len, rows)) <= {len(names)}:
        raise RequestError(400, "'dataframe_split': every row needs one value per column")
    return _transposed(names, rows)  # one value per column in every row: checked above


def _transposed(names: list[str], rows: list[Any]) -> Batch:
    """Rows (sequences in ``names`` order) as columns, transposed in C."""
    if not rows:
        return Batch({n: [] for n in names}, 0)
    return Batch(dict(zip(names, map(list, zip(*rows, strict=True)), strict=True)), len(rows))


def batch_from_json(body: bytes, decoder: Decoder | None = None) -> Batch:
    """Parse a JSON body in any of MLflow's four tabular forms; ``decoder`` (msgspec, see
    serving/decoding.py) turns the usual bodies into arrays straight from their bytes.
    """
    if decoder is not None and (read := decoder.decode(body)) is not None:
        return Batch(*read)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:  # NaN and Infinity tokens (not JSON, but MLflow's server takes them)
            payload = from_json(body, allow_inf_nan=True)
        except ValueError as e:
            raise RequestError(400, f"malformed JSON: {e}") from e
    if not isinstance(payload, dict):
        raise RequestError(400, f"JSON body must be an object with one of {', '.join(JSON_KEYS)}")
    keys = [k for k in JSON_KEYS if k in payload]
    if len(keys) != 1:
        raise RequestError(
            400, f"JSON body needs exactly one of {', '.join(JSON_KEYS)}; got {sorted(payload)}"
        )
    key = keys[0]
    if key == "dataframe_split":
        return _from_split(payload[key])
    return _from_records(payload[key], key)


def batch_from_csv(body: bytes) -> Batch:
    """Parse a CSV body with a header row (empty cells are nulls)."""
    try:
        frame = pd.read_csv(io.BytesIO(body))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        raise RequestError(400, f"malformed CSV: {str(e).splitlines()[0]}") from e
    names = [str(c) for c in frame.columns]
    return Batch(
        {n: frame[c].tolist() for n, c in zip(names, frame.columns, strict=True)}, len(frame)
    )


ARROW_STREAM = "application/vnd.apache.arrow.stream"


def batch_from_arrow(body: bytes, max_rows: int, max_bytes: int) -> Batch:
    """Read an Arrow IPC stream. Integer and floating columns become float64 arrays (nulls
    NaN), text columns object arrays (nulls None); any other type becomes Python values,
    checked value by value as JSON's are, so the same wrong value gets the same 400.
    A stream declaring more than ``max_rows`` rows or ``max_bytes`` decoded (compression)
    is refused from its message headers, before anything is decoded (serving/ipc.py).
    """
    import pyarrow as pa

    rows, size = 0, 0
    try:
        for message in ipc.declared(body):
            rows, size = rows + message.rows, size + message.bytes
            if rows > max_rows:
                raise RequestError(413, f"more than {max_rows} rows; at most {max_rows} a request")
            if size > max_bytes:
                raise RequestError(413, f"Arrow stream over {max_bytes} bytes once decoded")
        table = pa.ipc.open_stream(body).read_all()
        # pyarrow trusts the buffers it reads: damaged offsets would be read out of bounds
        # (a crash, measured) unless every buffer is checked first
        table.validate(full=True)
    except (pa.ArrowException, OSError, ValueError) as e:  # pyarrow's IO errors are OSErrors
        raise RequestError(400, f"malformed Arrow IPC stream: {e}") from e
    return _batch_of_table(table, "arrow")


PARQUET = "application/vnd.apache.parquet"  # what MLflow's scoring server takes too


def batch_from_parquet(body: bytes, max_rows: int, max_bytes: int) -> Batch:
    """Read a Parquet file (``DataFrame.to_parquet()``). Rows and decoded size are read
    from its footer and refused past the limits before any column is decoded; the columns
    then become arrays as an Arrow stream's do.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(pa.BufferReader(body))
        meta = parquet.metadata
        if meta.num_rows > max_rows:
            raise RequestError(413, f"more than {max_rows} rows; at most {max_rows} a request")
        decoded = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if decoded > max_bytes:
            raise RequestError(413, f"Parquet file over {max_bytes} bytes once decoded")
        table = parquet.read()
        table.validate(full=True)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise RequestError(400, f"malformed Parquet body: {e}") from e
    return _batch_of_table(table, "parquet")


def _batch_of_table(table: Any, form: str) -> Batch:
    """An Arrow table's columns as the arrays the checks take (see batch_from_arrow)."""
    import pyarrow as pa

    names = _named(table.column_names, form)
    columns: dict[str, list[Any] | np.ndarray] = {}
    for name, column in zip(names, table.columns, strict=True):
        kind = column.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            # nulls become NaN; integers are exact below 2**53, and larger ones are refused
            # as beyond 32 bits either way (numpy's astype: a third of pyarrow's cast here)
            values = column.to_numpy()
            columns[name] = values if values.dtype == np.float64 else values.astype("float64")
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            columns[name] = column.to_numpy()
        else:
            columns[name] = column.to_pylist()
    return Batch(columns, table.num_rows)


def parse(
    content_type: str | None,
    body: bytes,
    max_rows: int = 100_000,
    max_bytes: int = 5_000_000,
    decoder: Decoder | None = None,
) -> Batch:
    """Dispatch on the content type; an empty body or an unknown type is refused.
    ``max_rows``/``max_bytes`` bound what an Arrow stream may decode to; ``decoder``
    reads the usual JSON bodies first (the service's, see serving/decoding.py).
    """
    if not body or body.isspace():  # (no stripped copy of a large body)
        raise RequestError(400, "empty body")
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == "application/json":
        return batch_from_json(body, decoder)
    if kind == "text/csv":
        return batch_from_csv(body)
    if kind == ARROW_STREAM:
        return batch_from_arrow(body, max_rows, max_bytes)
    if kind == PARQUET:
        return batch_from_parquet(body, max_rows, max_bytes)
    raise RequestError(
        415,
        f"unsupported content type {kind or '(none)'!r}: use application/json, text/csv, "
        f"{PARQUET} or {ARROW_STREAM}",
    )
