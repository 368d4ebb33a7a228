from __future__ import annotations

from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from innflow import data
from innflow.config import FeaturesConfig, SplitConfig
from innflow.contract import checks
from innflow.errors import DataValidationError, LeakageError


def _problems(frame, columns) -> list:
    return checks.row_problems(data.CONTRACT, frame, columns)


def _together(frame, columns) -> set[str]:
    return checks.plainly_valid_together(data.CONTRACT, frame, columns)


def test_sample_is_valid_and_canonical(sample_frame: pd.DataFrame) -> None:
    frame = data.validate(sample_frame)
    assert list(frame.columns) == list(data.SCHEMA)
    assert frame["lead_time"].dtype == "int64"
    assert frame["agent"].dtype == "float64"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop(columns=["lead_time"]), "missing column(s): lead_time"),
        (
            lambda f: f.assign(lead_time=f["lead_time"].astype(str)),
            "column 'lead_time': 40 rows are not numbers",
        ),
        (
            lambda f: f.assign(adults=np.where(f.index < 3, -1, f["adults"])),
            "column 'adults': 3 rows are negative",
        ),
        (
            lambda f: f.assign(arrival_date_month="Jully"),
            "column 'arrival_date_month': 40 rows are not month names",
        ),
        (
            lambda f: f.assign(
                arrival_date_day_of_month=np.where(f.index == 0, 32, f["arrival_date_day_of_month"])
            ),
            "1 rows outside 1..31",
        ),
        (
            lambda f: f.assign(is_canceled=np.where(f.index == 0, 2, f["is_canceled"])),
            "column 'is_canceled': 1 rows are not 0 or 1",
        ),
        (
            lambda f: f.assign(hotel=np.where(f.index < 2, None, f["hotel"])),
            "column 'hotel': 2 rows are null",
        ),
        (
            lambda f: f.assign(lead_time=f["lead_time"] + 0.5),
            "column 'lead_time': 40 rows are not whole numbers",
        ),
    ],
)
def test_schema_problems_name_column_and_row_count(tiny_frame, mutate, message) -> None:
    with pytest.raises(DataValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        data.validate(mutate(tiny_frame))


def test_every_problem_is_reported_at_once(tiny_frame) -> None:
    """A type error in one column does not hide domain errors in others; the date check
    judges only rows whose parts are valid.
    """
    frame = tiny_frame.assign(
        adults=np.where(tiny_frame.index == 0, 2.5, tiny_frame["adults"]),
        arrival_date_month=np.where(
            tiny_frame.index == 1, "Smarch", tiny_frame["arrival_date_month"]
        ),
        arrival_date_day_of_month=np.where(tiny_frame.index == 2, 32, 1),
    )
    frame.loc[3, ["arrival_date_month", "arrival_date_day_of_month"]] = ["February", 30]
    found = {(c, p.split(" (")[0]): np.flatnonzero(m).tolist()
             for c, p, m in _problems(frame, tuple(data.SCHEMA))}  # fmt: skip
    assert found == {
        ("adults", "are not whole numbers"): [0],
        ("arrival_date_month", "are not month names"): [1],
        ("arrival_date_day_of_month", "outside 1..31"): [2],
        ("arrival date", "do not form a valid date"): [3],
    }


def test_impossible_arrival_date_is_refused(tiny_frame: pd.DataFrame) -> None:
    bad = tiny_frame.copy()
    bad.loc[0, ["arrival_date_month", "arrival_date_day_of_month"]] = ["February", 30]
    with pytest.raises(DataValidationError, match="arrival date: 1 rows do not form a valid date"):
        data.validate(bad)


def test_files_that_cannot_be_read(tmp_path: Path) -> None:
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"this is not parquet at all")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    header_only = tmp_path / "header.csv"
    header_only.write_text("hotel,is_canceled\n")
    for path, message in [
        (tmp_path / "missing.parquet", "not found"),
        (empty, "empty"),
        (garbage, "not a readable parquet file"),
        (text, "unsupported file type"),
        (header_only, "no rows"),
    ]:
        with pytest.raises(DataValidationError, match=message):
            data.read_table(path)


def test_csv_and_parquet_load_identically(tmp_path: Path, tiny_frame: pd.DataFrame) -> None:
    parquet, csv = tmp_path / "b.parquet", tmp_path / "b.csv"
    tiny_frame.to_parquet(parquet)
    tiny_frame.to_csv(csv, index=False)
    pd.testing.assert_frame_equal(data.load_data(parquet), data.load_data(csv))


def test_fingerprint_changes_with_one_byte(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    first = data.file_sha256(path)
    path.write_bytes(b"abd")
    assert first != data.file_sha256(path)
    assert len(first) == 64


def test_summary_counts(tiny_frame: pd.DataFrame) -> None:
    summary = data.summarize(data.validate(tiny_frame))
    assert summary["rows"] == len(tiny_frame)
    assert summary["target"] == "is_canceled"
    assert summary["target_mean"] == round(tiny_frame["is_canceled"].mean(), 4)
    years = data.arrival_dates(tiny_frame).dt.year
    assert set(summary["target_mean_by_year"]) == {str(y) for y in years.unique()}


def test_time_split_respects_arrival_dates(sample_frame: pd.DataFrame) -> None:
    frame = data.validate(sample_frame)
    parts = data.split(frame, SplitConfig(), seed=0)
    arrival = data.arrival_dates(frame)
    assert arrival[parts.train.index].max() < pd.Timestamp("2016-07-01")
    assert arrival[parts.validation.index].min() >= pd.Timestamp("2016-07-01")
    assert arrival[parts.validation.index].max() < pd.Timestamp("2017-01-01")
    assert arrival[parts.test.index].min() >= pd.Timestamp("2017-01-01")
    assert sum(parts.sizes().values()) == len(frame)


def test_test_end_bounds_the_test_window(sample_frame: pd.DataFrame) -> None:
    frame = data.validate(sample_frame)
    parts = data.split(frame, SplitConfig(test_end="2017-03-31"), seed=0)
    assert data.arrival_dates(frame)[parts.test.index].max() <= pd.Timestamp("2017-03-31")


def test_split_with_empty_part_is_refused(sample_frame: pd.DataFrame) -> None:
    config = SplitConfig(validation_start="2018-01-01", test_start="2018-06-01")
    with pytest.raises(DataValidationError, match="no rows in validation, test"):
        data.split(data.validate(sample_frame), config, seed=0)


def test_random_split_only_when_asked_and_is_a_partition(sample_frame: pd.DataFrame) -> None:
    frame = data.validate(sample_frame)
    parts = data.split(frame, SplitConfig(strategy="random"), seed=1)
    assert parts.strategy == "random"
    indices = [set(p.index) for p in (parts.train, parts.validation, parts.test)]
    assert set.union(*indices) == set(frame.index)
    assert sum(len(i) for i in indices) == len(frame)
    again = data.split(frame, SplitConfig(strategy="random"), seed=1)
    assert list(again.test.index) == list(parts.test.index)


def test_leakage_guard_refuses_outcome_columns() -> None:
    for column in ("reservation_status", "reservation_status_date", "is_canceled"):
        with pytest.raises(LeakageError, match=column):
            data.input_columns(
                FeaturesConfig(include=["lead_time", column], allow_known_later=True)
            )


def test_known_later_columns_need_explicit_permission() -> None:
    default = data.input_columns(FeaturesConfig())
    assert not set(default) & set(data.KNOWN_LATER)
    assert not set(default) & set(data.FORBIDDEN)
    allowed = data.input_columns(FeaturesConfig(allow_known_later=True))
    assert set(data.KNOWN_LATER) <= set(allowed)
    with pytest.raises(LeakageError, match="allow_known_later"):
        data.input_columns(FeaturesConfig(include=["lead_time", "country"]))


def test_include_keeps_date_parts_for_derived_features() -> None:
    cols = data.input_columns(FeaturesConfig(include=["lead_time", "hotel"]))
    assert cols == [
        "hotel",
        "lead_time",
        "arrival_date_year",
        "arrival_date_month",
        "arrival_date_day_of_month",
    ]


def test_unknown_columns_in_feature_lists() -> None:
    with pytest.raises(LeakageError, match="unknown column 'nope'"):
        data.input_columns(FeaturesConfig(include=["nope"]))
    with pytest.raises(LeakageError, match="unknown column 'nada'"):
        data.input_columns(FeaturesConfig(exclude=["nada"]))


def test_bundled_data_is_the_published_file() -> None:
    bundled = Path(__file__).resolve().parents[2] / "data" / "hotel_bookings.parquet"
    assert (
        data.file_sha256(bundled)
        == "19ce8a86c8f2b291276db0b31fbf3972fe8de67ff8058a56123d002c4181e35d"
    )


def test_impossible_dates_by_hand() -> None:
    frame = pd.DataFrame(
        {"arrival_date_year": [2016, 2017, 2100, 1850, 2016],
         "arrival_date_month": ["February", "February", "December", "May", "April"],
         "arrival_date_day_of_month": [29, 29, 31, 3, 31]}
    )  # fmt: skip
    mask = [p for c, p, m in _problems(frame, tuple(frame.columns)) if c == "arrival date"]
    problems = _problems(frame, tuple(frame.columns))
    assert mask == ["do not form a valid date"]
    assert problems[0][2].tolist() == [False, True, False, True, True]


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("lead_time", np.inf, "are not whole numbers"),
        ("lead_time", 1e300, "are beyond"),
        ("lead_time", 5_000, "are over 3653 days"),
        ("arrival_date_year", 2**40, "are beyond"),
        ("agent", np.inf, "are not whole numbers"),
        ("adr", np.inf, "are infinite"),
    ],
)
def test_values_no_booking_has_are_refused(tiny_frame, column, value, problem) -> None:
    frame = tiny_frame.drop(columns=["is_canceled"]).astype({column: "float64"})
    frame.loc[2, column] = value
    columns = tuple(frame.columns)
    found = [(c, p, np.flatnonzero(m).tolist()) for c, p, m in _problems(frame, columns)]
    assert [(c, p.split(" (")[0][: len(problem)], rows) for c, p, rows in found] == [
        (column, problem, [2])
    ]
    arrays = {c: frame[c].to_numpy() for c in columns}  # the service's form: same verdict
    again = [(c, p, np.flatnonzero(m).tolist()) for c, p, m in _problems(arrays, columns)]
    assert again == found
    # as JSON bodies arrive: every number column float64, judged a group at a time
    floats = {c: v.astype("float64") if v.dtype.kind in "iuf" else v for c, v in arrays.items()}
    assert checks.plainly_valid_together(
        data.CONTRACT, floats, columns
    )  # the clean groups were taken
    again = [(c, p, np.flatnonzero(m).tolist()) for c, p, m in _problems(floats, columns)]
    assert again == found


_FLOATS = [0.0, 1.0, 2.0, 60.0, -1.0, 0.5, 2.0**31 - 1, 2.0**31, -(2.0**31 - 1), -(2.0**31),
           1e300, np.nan, np.inf, -np.inf, -0.0, 5e-324]  # fmt: skip
_OBJECTS = ["City Hotel", "", None, np.nan, pd.NA, 0, 1.5, True]


@pytest.mark.parametrize("kind", ["int", "count", "binary", "float", "str"])
@pytest.mark.parametrize("nullable", [False, True])
def test_the_quick_acceptance_never_passes_a_bad_value(kind: str, nullable: bool) -> None:
    """``plainly_valid`` skips the per-problem checks of a column: only ever for one in
    which those checks find nothing (every column of one or two of these values).
    """
    columns = [np.array(pair, dtype="float64") for pair in product(_FLOATS, repeat=2)]
    columns += [np.fromiter(pair, dtype=object, count=2) for pair in product(_OBJECTS, repeat=2)]
    columns += [np.array([v]) for v in _FLOATS] + [np.array([v], dtype=object) for v in _OBJECTS]
    # more values than SMALL: text judged by infer_dtype instead of a set of types
    columns += [np.fromiter(p * 20, dtype=object, count=40) for p in product(_OBJECTS, repeat=2)]
    accepted = 0
    for values in columns:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(checks, "plainly_valid", lambda *_: False)
            thorough = [p for p, mask in checks.column_checks(values, kind, nullable) if mask.any()]
        if checks.plainly_valid(values, kind, nullable):
            accepted += 1
            assert thorough == [], (values, thorough)
            assert checks.column_checks(values, kind, nullable) == []
    assert accepted > 0  # the quick path is taken for good columns


@pytest.mark.parametrize("kind", ["int", "count", "binary", "float"])
@pytest.mark.parametrize("nullable", [False, True])
def test_columns_accepted_together_are_each_accepted(kind: str, nullable: bool) -> None:
    """``plainly_valid_together`` judges a stack of columns at once: it takes a stack only
    when the quick acceptance would take every column in it.
    """
    singles = [np.array(pair, dtype="float64") for pair in product(_FLOATS, repeat=2)]
    accepted = 0
    for first, second in product(singles[::3], singles[1::4]):
        stacked = checks.plainly_valid(np.stack([first, second]), kind, nullable)
        each = checks.plainly_valid(first, kind, nullable) and checks.plainly_valid(
            second, kind, nullable
        )
        assert stacked == each, (first, second)
        accepted += stacked
    assert accepted > 0


@pytest.mark.parametrize("dtype", ["str", "string", "string[pyarrow]"])
@pytest.mark.parametrize("nullable", [False, True])
def test_text_dtypes_are_judged_as_their_objects_are(dtype: str, nullable: bool) -> None:
    """A pandas text column is checked by its dtype (nulls only), with the same outcome as
    the same values in an object column.
    """
    for values in (["City Hotel", None, "x"], ["City Hotel", "x"], [None, None]):
        typed = pd.Series(values, dtype=dtype)
        as_objects = typed.astype(object)

        def found(series: pd.Series) -> list[tuple[str, list[bool]]]:
            return [(p, m.tolist()) for p, m in checks.column_checks(series, "str", nullable)
                    if m.any()]  # fmt: skip

        assert found(typed) == found(as_objects), values
