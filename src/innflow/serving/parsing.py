"""MLflow's scoring protocol: JSON (`dataframe_split`, `dataframe_records`, `instances`,
`inputs`) and CSV bodies into a DataFrame, or a 4xx with a reason.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd

JSON_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


class RequestError(Exception):
    """A request the service refuses: HTTP status and a JSON-able body."""

    def __init__(self, status: int, message: str, errors: list[dict] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"error": message}
        if errors:
            self.body["errors"] = errors


def _records(value: Any, key: str) -> pd.DataFrame:
    if isinstance(value, dict):  # column -> values ("inputs" in columnar form)
        lengths = {len(v) if isinstance(v, list) else 1 for v in value.values()}
        if len(lengths) > 1:
            raise RequestError(400, f"'{key}': columns have different lengths")
        return pd.DataFrame({k: v if isinstance(v, list) else [v] for k, v in value.items()})
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise RequestError(400, f"'{key}' must be a list of records (objects)")
    return pd.DataFrame.from_records(value)


def frame_from_json(body: bytes) -> pd.DataFrame:
    """Parse a JSON body in any of MLflow's four tabular forms."""
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RequestError(400, f"malformed JSON: {e}") from e
    if not isinstance(payload, dict):
        raise RequestError(400, f"JSON body must be an object with one of {', '.join(JSON_KEYS)}")
    keys = [k for k in JSON_KEYS if k in payload]
    if len(keys) != 1:
        raise RequestError(
            400, f"JSON body needs exactly one of {', '.join(JSON_KEYS)}; got {sorted(payload)}"
        )
    key = keys[0]
    value = payload[key]
    if key == "dataframe_split":
        if not isinstance(value, dict) or "columns" not in value or "data" not in value:
            raise RequestError(400, "'dataframe_split' needs 'columns' and 'data'")
        rows = value["data"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise RequestError(400, "'dataframe_split.data' must be a list of rows")
        if any(len(r) != len(value["columns"]) for r in rows):
            raise RequestError(400, "'dataframe_split': every row needs one value per column")
        return pd.DataFrame(rows, columns=value["columns"])
    return _records(value, key)


def frame_from_csv(body: bytes) -> pd.DataFrame:
    """Parse a CSV body with a header row."""
    try:
        return pd.read_csv(io.BytesIO(body))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        raise RequestError(400, f"malformed CSV: {str(e).splitlines()[0]}") from e


def parse(content_type: str | None, body: bytes) -> pd.DataFrame:
    """Dispatch on the content type; an empty body or an unknown type is refused."""
    if not body.strip():
        raise RequestError(400, "empty body")
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == "application/json":
        return frame_from_json(body)
    if kind == "text/csv":
        return frame_from_csv(body)
    raise RequestError(
        415, f"unsupported content type {kind or '(none)'!r}: use application/json or text/csv"
    )
