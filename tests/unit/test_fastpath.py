"""The fast path's category lookups give the codes of the pipeline's own category text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from innflow.modeling.features import _as_category_text
from innflow.serving.fastpath import LookupTable

TABLE = {"9": 0.0, "12": 1.0, "none": 2.0, "-1": 3.0, "0": 4.0, "City Hotel": 5.0, "09": 6.0}


def _expected(series: pd.Series) -> np.ndarray:
    with np.errstate(all="ignore"):
        text = _as_category_text(series)
    return np.array([TABLE.get(t, np.nan) for t in text], dtype="float64")


@pytest.mark.parametrize(
    "series",
    [
        pd.Series([9.0, 12.7, np.nan, -1.0, 5.0, -0.0, 0.4, 1e30, -np.inf, np.inf, 13.0, 9.0]),
        pd.Series([9, 12, 5, -1, 0], dtype="int64"),
        pd.Series([9, None, 12, 7], dtype="Int64"),  # nullable: an object array of numbers
        pd.Series(["City Hotel", None, "Resort", "none", "9", np.nan], dtype=object),
        pd.Series(["City Hotel", None, "x"], dtype="str"),
        pd.Series(["9", "x", None, "City Hotel", "9"], dtype=pd.StringDtype("python")),
        pd.Series([None, None], dtype="str"),
        pd.Series([], dtype="str"),
    ],
    ids=["floats", "ints", "nullable-ints", "text", "arrow-text", "python-text", "nulls", "empty"],
)
def test_lookups_match_the_pipelines_category_text(series: pd.Series) -> None:
    lookup = LookupTable("agent", TABLE)
    np.testing.assert_array_equal(lookup(series.to_numpy()), _expected(series))
    # as `innflow score` passes a file's text columns: pandas' own array, by distinct value
    np.testing.assert_array_equal(lookup(series.array), _expected(series))


def test_unseen_values_do_not_grow_the_table() -> None:
    lookup = LookupTable("agent", TABLE)
    lookup(np.array([f"new-{i}" for i in range(100)], dtype=object))
    lookup(np.arange(1000, 1100, dtype="float64"))
    assert len(lookup._text) == len(TABLE)
    assert sorted(lookup._ids) == [-1.0, 0.0, 9.0, 12.0]  # "09" is no id the pipeline writes


def test_numbers_against_a_table_without_ids() -> None:
    """A text column sent numbers (a table with no id levels): unseen, nulls "none"."""
    lookup = LookupTable("hotel", {"City Hotel": 0.0, "none": 1.0})
    got = lookup(np.array([3.0, np.nan, np.inf, -np.inf, 0.0]))
    np.testing.assert_array_equal(got, [np.nan, 1.0, np.nan, np.nan, np.nan])
