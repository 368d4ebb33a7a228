"""The checker derived from an MLflow signature (serving/signature.py), on tiny columns."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from innflow.errors import ModelNotServable
from innflow.serving.signature import InputSchema

TYPES = ["long", "integer", "double", "float", "string", "boolean", "datetime"]


def _schema(*columns: tuple[str, str, bool]) -> InputSchema:
    specs = [{"type": t, "name": n, "required": r} for n, t, r in columns]
    return InputSchema.from_signature({"inputs": json.dumps(specs)}, "models:/m/1")


def test_every_type_takes_its_values_and_names_each_bad_row() -> None:
    schema = _schema(*[(t, t, True) for t in TYPES])
    good = {"long": [1, 2.0], "integer": [3, 4], "double": [1.5, None], "float": [1, 2],
            "string": ["a", None], "boolean": [True, False],
            "datetime": ["2020-01-01", "2021-06-30T12:00:00"]}  # fmt: skip
    problems, ok, typed = schema.convert(good, 2)
    assert problems == [] and ok.all()
    assert typed["long"].dtype == np.int64 and typed["integer"].dtype == np.int32
    assert typed["float"].dtype == np.float32 and np.isnan(typed["double"][1])
    assert typed["datetime"].dtype == "datetime64[ns]"
    bad = {"long": [1, None], "integer": [2**40, 1], "double": [1.0, "x"], "float": [True, 1],
           "string": ["a", 3], "boolean": [True, "yes"], "datetime": ["soon", None]}  # fmt: skip
    problems, ok, _ = schema.convert(bad, 2)
    assert sorted(problems) == [
        (0, "datetime", "value not a date"),
        (0, "float", "value not a number"),
        (0, "integer", "value out of range for integer"),
        (1, "boolean", "value not true/false"),
        (1, "double", "value not a number"),
        (1, "long", "value null (the signature says long, which has no nulls)"),
        (1, "string", "value not text"),
    ]
    assert not ok.any()


def test_missing_means_required_and_absent() -> None:
    schema = _schema(("a", "double", True), ("b", "string", False))
    assert schema.missing(["b"]) == ["a"] and schema.missing(["a"]) == []


def test_a_csv_number_column_with_some_text_keeps_its_numbers() -> None:
    schema = _schema(("n", "long", True))
    frame = pd.DataFrame({"n": ["1", "oops", "3"]})
    problems, ok, typed = schema.convert(schema.file_columns(frame), 3)
    assert problems == [(1, "n", "value not a number")] and ok.tolist() == [True, False, True]
    assert typed["n"][ok].tolist() == [1, 3]


@pytest.mark.parametrize(
    ("signature", "said"),
    [
        (None, "has no signature"),
        ({"inputs": json.dumps([{"type": "tensor", "tensor-spec": {}}])}, "type tensor"),
        ({"inputs": json.dumps([{"type": "binary", "name": "b"}])}, "'b' of type binary"),
    ],
)
def test_models_innflow_cannot_check_are_refused(signature, said) -> None:
    with pytest.raises(ModelNotServable, match=said):
        InputSchema.from_signature(signature, "models:/m/1")
