"""The input checker of a model innflow did not train, derived from its MLflow signature.

One place turns the signature's columns (name, type, required) into the rules a request
body and a scored file are held to, and into the typed columns ``mlflow.pyfunc`` is then
called with. The rules follow what MLflow's own server accepts, said per row and field:
integers where the signature says long/integer (nulls refused: those types hold none),
numbers for double/float, text for string, true/false for boolean, dates for datetime;
nulls elsewhere pass, as they do through MLflow.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from innflow.errors import ModelNotServable

NUMBER_TYPES = {"long": "int64", "integer": "int32", "double": "float64", "float": "float32"}
TYPES = (*NUMBER_TYPES, "string", "boolean", "datetime")
_PLAIN_NUMBERS = {int, float, type(None)}
_LIMITS = {"int64": (-(2**63), 2**63 - 1), "int32": (-(2**31), 2**31 - 1)}


@dataclass(frozen=True)
class Column:
    """One input column of the signature."""

    name: str
    type: str
    required: bool = True


@dataclass(frozen=True)
class InputSchema:
    """The columns a model takes, in its signature's order."""

    columns: tuple[Column, ...]

    @classmethod
    def from_signature(cls, signature: dict[str, Any] | None, uri: str) -> InputSchema:
        """From ``ModelSignature.to_dict()``; a model innflow cannot check is refused."""
        if not signature or not signature.get("inputs"):
            raise ModelNotServable(
                f"{uri} has no signature: innflow checks every request against it. Log the "
                "model with an input_example (MLflow infers the signature) or signature=..."
            )
        specs = json.loads(signature["inputs"])
        columns = []
        for spec in specs:
            kind, name = spec.get("type"), spec.get("name")
            if not isinstance(kind, str) or kind not in TYPES or not name:
                shown = kind if isinstance(kind, str) else json.dumps(kind)
                raise ModelNotServable(
                    f"{uri} takes {'an unnamed column' if not name else repr(name)} of type "
                    f"{shown}: innflow serves models whose signature is named columns of "
                    f"{', '.join(TYPES)}"
                )
            columns.append(Column(str(name), kind, bool(spec.get("required", True))))
        return cls(tuple(columns))

    @property
    def names(self) -> list[str]:
        """Every input column, required or optional."""
        return [c.name for c in self.columns]

    def json_schema(self, description: str = "") -> dict[str, Any]:
        """One record in JSON Schema (the OpenAPI document of a general model)."""
        types = {"long": "integer", "integer": "integer", "double": "number", "float": "number",
                 "string": "string", "boolean": "boolean"}  # fmt: skip
        properties: dict[str, Any] = {}
        for c in self.columns:
            field: dict[str, Any] = (
                {"type": "string", "format": "date-time"} if c.type == "datetime"
                else {"type": types[c.type]}
            )  # fmt: skip
            if c.type not in ("long", "integer"):  # those hold no nulls
                field["type"] = [field["type"], "null"]
            properties[c.name] = field
        return {"type": "object", "properties": properties, "description": description,
                "required": [c.name for c in self.columns if c.required]}  # fmt: skip

    def missing(self, present: Iterable[str]) -> list[str]:
        """Required columns not in ``present``."""
        given = set(present)
        return [c.name for c in self.columns if c.required and c.name not in given]

    def file_columns(self, frame: pd.DataFrame) -> dict[str, Any]:
        """A file's columns of the signature; a CSV's number column holding some text
        (read as text) has its numbers taken as numbers, the rest left to be refused.
        """
        found: dict[str, Any] = {}
        for column in self.columns:
            if column.name not in frame.columns:
                continue
            values = frame[column.name]
            if column.type in NUMBER_TYPES and not pd.api.types.is_numeric_dtype(values):
                numbers = pd.to_numeric(values, errors="coerce")
                values = values.astype(object).where(numbers.isna() | values.isna(), numbers)
            found[column.name] = values
        return found

    def convert(
        self, columns: dict[str, Any], rows: int, limit: int = 20
    ) -> tuple[list[tuple[int, str, str]], np.ndarray, dict[str, Any]]:
        """Per-row problems as (row, column, problem), up to ``limit`` a column; a mask
        of the rows with none; and the signature's columns present, typed for the model.
        """
        problems: list[tuple[int, str, str]] = []
        good = np.ones(rows, dtype=bool)
        typed: dict[str, Any] = {}
        for column in self.columns:
            if column.name not in columns:
                continue
            values, failures = _typed(columns[column.name], column.type)
            typed[column.name] = values
            for problem, mask in failures:
                good &= ~mask
                problems += [(int(r), column.name, problem) for r in np.flatnonzero(mask)[:limit]]
        return problems, good, typed


def _typed(values: Any, kind: str) -> tuple[Any, list[tuple[str, np.ndarray]]]:
    """A column as the signature's type, and (problem, failing rows) for what cannot be."""
    if isinstance(values, pd.Series):
        values = values.to_numpy(dtype=object) if values.dtype == object else values.to_numpy()
    if kind in NUMBER_TYPES:
        return _numbers(values, NUMBER_TYPES[kind])
    objects = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
    objects = objects.astype(object)
    null = pd.isna(objects)
    if kind == "string":
        wrong = np.fromiter((type(v) is not str for v in objects), bool, len(objects)) & ~null
        return objects, [("value not text", wrong)]
    if kind == "boolean":
        plain = np.fromiter((type(v) in (bool, np.bool_) for v in objects), bool, len(objects))
        wrong = ~plain & ~null
        return (objects.astype(bool) if not null.any() and not wrong.any() else objects), [
            ("value not true/false", wrong)
        ]
    dates = pd.to_datetime(pd.Series(objects), errors="coerce", format="mixed")
    wrong = dates.isna().to_numpy() & ~null
    return dates.to_numpy(dtype="datetime64[ns]"), [("value not a date", wrong)]


def _numbers(values: Any, dtype: str) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """Numbers as ``dtype``: floats take nulls (NaN); integers must be whole and in range."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
        numbers = values.astype("float64", copy=False)
        wrong = np.zeros(len(values), dtype=bool)
    else:
        objects = list(values)
        plain = np.fromiter((type(v) in _PLAIN_NUMBERS for v in objects), bool, len(objects))
        wrong = ~plain
        try:
            numbers = np.array([v if p else None for v, p in zip(objects, plain, strict=True)],
                               dtype="float64")  # fmt: skip
        except OverflowError:  # an integer beyond a double: refused as out of range
            numbers = np.array(
                [v if p and (v is None or abs(v) < 2**1023) else np.inf
                 for v, p in zip(objects, plain, strict=True)], dtype="float64",
            )  # fmt: skip
    if dtype.startswith("float"):
        return numbers.astype(dtype), [("value not a number", wrong)]
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        return values.astype(dtype), [("value not a number", wrong)]
    null = np.isnan(numbers) & ~wrong
    low, high = _LIMITS[dtype]
    with np.errstate(invalid="ignore"):
        fractional = ~wrong & ~null & (np.mod(numbers, 1) != 0)
        beyond = ~wrong & ~null & ~fractional & ((numbers < low) | (numbers > high))
    bad = wrong | null | fractional | beyond
    integers = np.where(bad, 0, numbers).astype(dtype)
    kind = "long" if dtype == "int64" else "integer"
    return integers, [
        ("value not a number", wrong),
        (f"value null (the signature says {kind}, which has no nulls)", null),
        ("value not a whole number", fractional),
        (f"value out of range for {kind}", beyond),
    ]
