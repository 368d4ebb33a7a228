"""Load, validate, fingerprint and split the hotel bookings; guard against label leakage.

Pure functions over pandas frames: no MLflow, no CLI. Each check names the column and how
many rows fail, because the person reading the error has to go and fix the file.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from innflow.errors import DataValidationError, LeakageError

if TYPE_CHECKING:  # pydantic's models cost ~0.15 s to import: not for scoring a file
    from innflow.config import FeaturesConfig, SplitConfig

TARGET = "is_canceled"
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
MONTH_NUMBER = {m: i for i, m in enumerate(MONTHS, 1)}


def month_numbers(names: Any) -> np.ndarray:
    """Month names (any sequence) as 1..12 in float64, NaN for anything else (a third of
    a list comprehension's time: ~40 us for 1,000 names).
    """
    return np.fromiter(map(MONTH_NUMBER.get, names, repeat(np.nan)), "float64", len(names))


# Columns that *are* the outcome: refused whatever the configuration says.
FORBIDDEN = ("reservation_status", "reservation_status_date")
# Columns that can change or get filled in after the booking: only by explicit configuration.
KNOWN_LATER = ("assigned_room_type", "booking_changes", "days_in_waiting_list", "country")

# name -> (kind, nullable). "count" is a non-negative integer.
SCHEMA: dict[str, tuple[str, bool]] = {
    "hotel": ("str", False),
    "is_canceled": ("binary", False),
    "lead_time": ("count", False),
    "arrival_date_year": ("int", False),
    "arrival_date_month": ("str", False),
    "arrival_date_week_number": ("int", False),
    "arrival_date_day_of_month": ("int", False),
    "stays_in_weekend_nights": ("count", False),
    "stays_in_week_nights": ("count", False),
    "adults": ("count", False),
    "children": ("count", True),
    "babies": ("count", False),
    "meal": ("str", False),
    "country": ("str", True),
    "market_segment": ("str", False),
    "distribution_channel": ("str", False),
    "is_repeated_guest": ("binary", False),
    "previous_cancellations": ("count", False),
    "previous_bookings_not_canceled": ("count", False),
    "reserved_room_type": ("str", False),
    "assigned_room_type": ("str", False),
    "booking_changes": ("count", False),
    "deposit_type": ("str", False),
    "agent": ("count", True),
    "company": ("count", True),
    "days_in_waiting_list": ("count", False),
    "customer_type": ("str", False),
    "adr": ("float", False),
    "required_car_parking_spaces": ("count", False),
    "total_of_special_requests": ("count", False),
    "reservation_status": ("str", False),
    "reservation_status_date": ("str", False),
}
INPUT_COLUMNS = tuple(c for c in SCHEMA if c != TARGET and c not in FORBIDDEN)
HOTELS = ("City Hotel", "Resort Hotel")


def file_sha256(path: Path) -> str:
    """sha256 of the file's bytes: the data fingerprint recorded with every run."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_table(path: Path) -> pd.DataFrame:
    """Read a parquet or CSV file, turning every way it can fail into one clear error."""
    path = Path(path)
    if not path.exists():
        raise DataValidationError(f"data file not found: {path}")
    if path.is_dir():
        raise DataValidationError(f"data path is a directory, not a file: {path}")
    if path.stat().st_size == 0:
        raise DataValidationError(f"data file is empty: {path}")
    suffixes = "".join(path.suffixes[-2:]).lower()
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        elif suffixes.endswith((".csv", ".csv.gz")):
            frame = pd.read_csv(path)
        else:
            raise DataValidationError(
                f"{path}: unsupported file type {path.suffix!r} (expected .parquet or .csv)"
            )
    except DataValidationError:
        raise
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        kind = "parquet" if path.suffix.lower() in (".parquet", ".pq") else "CSV"
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataValidationError(f"{path} is not a readable {kind} file: {first_line}") from e
    if frame.empty:
        raise DataValidationError(f"{path} has no rows")
    return frame


def arrival_dates(frame: pd.DataFrame) -> pd.Series:
    """Arrival date from year, English month name and day; NaT where they make no date."""
    month = frame["arrival_date_month"].map(MONTH_NUMBER)
    parts = pd.DataFrame(
        {
            "year": frame["arrival_date_year"],
            "month": month,
            "day": frame["arrival_date_day_of_month"],
        }
    )
    return pd.to_datetime(parts, errors="coerce")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _as_float(value: object) -> float:
    """A number as float; integers beyond float range become +-inf (then refused)."""
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:  # (copysign would convert the integer to float again)
        return math.inf if value > 0 else -math.inf  # type: ignore[operator]


# Beyond these no value is a booking, and date arithmetic would overflow: whole numbers
# must fit 32 bits, and nobody books more than ten years ahead.
MAX_WHOLE = 2**31 - 1
MAX_LEAD_DAYS = 3_653
# Calendar parts' bounds, checked here and published in the service's OpenAPI document.
RANGES = {"arrival_date_day_of_month": (1, 31), "arrival_date_week_number": (1, 53)}


def _column_checks(series: Any, kind: str, nullable: bool) -> list[tuple[str, np.ndarray]]:
    """(problem, mask of failing rows) for one column (a Series or a numpy array); each row
    fails at most once.

    Works on one numpy array per column: a request of one booking must not pay for a
    dozen pandas Series per column.
    """
    if isinstance(series, pd.Series):  # extension dtypes (nullable ints, booleans) included
        if kind == "str" and isinstance(series.dtype, pd.StringDtype):
            # text by its dtype: only nulls to find, without an object array of its strings
            # (7 ms a column of the 119k bookings, most of `innflow score`'s validation)
            return [] if nullable else [("are null", np.asarray(series.isna(), dtype=bool))]
        values = series.to_numpy()
        is_bool = pd.api.types.is_bool_dtype(series)
        is_numeric = pd.api.types.is_numeric_dtype(series)
    else:  # the service's arrays: the dtype's kind says it, without pandas' dtype machinery
        values = np.asarray(series)
        is_bool, is_numeric = values.dtype.kind == "b", values.dtype.kind in "iuf"
    floats = values.dtype.kind == "f"
    if _plainly_valid(values, kind, nullable):
        return []
    null = np.isnan(values) if floats else np.asarray(pd.isna(values), dtype=bool)
    checks = [("are null", null)] if not nullable else []
    present = ~null
    if kind == "str":
        if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
            return checks
        text = np.fromiter((isinstance(v, str) for v in values), dtype=bool, count=len(values))
        return [*checks, ("are not text", present & ~text)]
    if is_bool:
        return [*checks, ("are not numbers", present)]
    if is_numeric:
        numeric = present
        numbers = values if values.dtype == np.float64 else values.astype("float64")
    else:
        ok = np.fromiter((_is_number(v) for v in values), dtype=bool, count=len(values))
        numeric = present & ok
        checks.append(("are not numbers", present & ~numeric))
        numbers = np.array(
            [_as_float(v) if good else np.nan for v, good in zip(values, numeric, strict=True)],
            dtype="float64",
        )
    with np.errstate(invalid="ignore"):
        if kind in ("int", "count", "binary"):
            whole = np.isfinite(numbers) & (numbers == np.floor(numbers))
            checks.append(("are not whole numbers", numeric & ~whole))
            checks.append(
                (f"are beyond +-{MAX_WHOLE}", numeric & whole & (np.abs(numbers) > MAX_WHOLE))
            )
        if kind == "count":
            checks.append(("are negative", numeric & (numbers < 0)))
        if kind == "binary":
            checks.append(("are not 0 or 1", numeric & (numbers != 0) & (numbers != 1)))
        if kind == "float":
            checks.append(("are infinite", numeric & np.isinf(numbers)))
    return checks


_WHOLE_RANGE = {"int": (-MAX_WHOLE, MAX_WHOLE), "count": (0, MAX_WHOLE), "binary": (0, 1)}


def _plainly_valid_together(
    frame: pd.DataFrame | Mapping[str, Any], columns: tuple[str, ...]
) -> set[str]:
    """The service's float64 number columns accepted a few at a time: those of one kind
    and nullability stacked and judged in one ``_plainly_valid`` pass (a request of one
    booking spent a third of its time in two dozen per-column passes). A group with any
    problem is left to the per-column checks, which say where.
    """
    if isinstance(frame, pd.DataFrame):  # a file's columns: judged one by one
        return set()
    groups: dict[tuple[str, bool], list[str]] = {}  # (kind, nullable) -> its columns
    for name in columns:
        values, spec = frame[name], SCHEMA[name]
        if spec[0] != "str" and isinstance(values, np.ndarray) and values.dtype == np.float64:
            groups.setdefault(spec, []).append(name)
    return {
        name
        for (kind, nullable), names in groups.items()
        if len(names) > 1 and _plainly_valid(np.stack([frame[n] for n in names]), kind, nullable)
        for name in names
    }


SMALL = 32  # up to this many values, a set of their types beats infer_dtype's set-up


def _plainly_valid(values: np.ndarray, kind: str, nullable: bool) -> bool:
    """One cheap pass that accepts a column with nothing wrong (the usual case), so the
    per-problem masks are built only for a column that has a problem. False means "look
    closer", never "invalid". Any shape (``_plainly_valid_together`` passes 2-D blocks).
    """
    if values.dtype == object:  # text: every value a str (nulls skipped when allowed)
        if kind != "str":
            return False
        if values.size <= SMALL:
            return set(map(type, values.flat)) <= ({str, type(None)} if nullable else {str})
        return pd.api.types.infer_dtype(values, skipna=nullable) == "string"
    if values.dtype != np.float64 or kind == "str":
        return False
    present = values[~np.isnan(values)] if nullable else values
    with np.errstate(invalid="ignore"):
        if kind == "float":
            return bool(np.isfinite(present).all())
        low, high = _WHOLE_RANGE[kind]
        return bool(((present >= low) & (present <= high) & (present == np.floor(present))).all())


_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _impossible_dates(years: np.ndarray, months: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Rows whose (year, month, day) is no calendar date in 1900..2100 (Feb 29 only in
    leap years). Plain numpy, so a one-booking request does not build a DataFrame.
    """
    # (np.where, not nan_to_num: a fifth of a one-booking request's validation)
    month_index = np.clip(np.where(np.isnan(months), 1, months).astype(int), 1, 12) - 1
    y = np.where(np.isfinite(years), years, 0).astype(int)  # not finite: refused below
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    last_day = _MONTH_DAYS[month_index] + (leap & (month_index == 1))
    return (
        np.isnan(years) | np.isnan(months) | np.isnan(days)
        | (y < 1900) | (y > 2100) | (days < 1) | (days > last_day)
    )  # fmt: skip


def row_problems(
    frame: pd.DataFrame | Mapping[str, Any], columns: tuple[str, ...]
) -> list[tuple[str, str, np.ndarray]]:
    """Every (column, problem, failing-rows mask) in ``frame`` (a DataFrame, or columns as
    numpy arrays as the service parses them): types, nulls and domains.

    Shared by file validation (which counts rows) and the scoring service (which names
    them). A domain check (lead time, month names, day and week ranges) runs on its column
    once that column's types are right, whatever other columns hold, so one request hears
    of every problem at once; the calendar-date check runs on the rows whose year, month
    and day are each valid.
    """
    found: list[tuple[str, str, np.ndarray]] = []
    typed = _plainly_valid_together(frame, columns)  # columns whose every value's type is right
    for name in columns:
        if name in typed:
            continue
        kind, nullable = SCHEMA[name]
        problems = [(p, m) for p, m in _column_checks(frame[name], kind, nullable) if m.any()]
        found.extend((name, problem, mask) for problem, mask in problems)
        if not problems:
            typed.add(name)

    def numbers(column: str) -> np.ndarray:
        return np.asarray(frame[column], dtype="float64")

    failed: dict[str, np.ndarray] = {}

    def flag(column: str, problem: str, mask: np.ndarray) -> None:
        if mask.any():
            found.append((column, problem, mask))
            failed[column] = failed.get(column, np.zeros(len(mask), dtype=bool)) | mask

    if "lead_time" in typed:
        flag("lead_time", f"are over {MAX_LEAD_DAYS} days", numbers("lead_time") > MAX_LEAD_DAYS)
    numbered = None
    if "arrival_date_month" in typed:
        months = np.asarray(frame["arrival_date_month"], dtype=object)
        numbered = month_numbers(months)
        unknown = np.isnan(numbered)
        if unknown.any():
            examples = ", ".join(repr(m) for m in pd.unique(months[unknown])[:3])
            flag("arrival_date_month", f"are not month names ({examples})", unknown)
    for column, (low, high) in RANGES.items():
        if column in typed:
            values = numbers(column)
            flag(column, f"outside {low}..{high}", (values < low) | (values > high))
    parts = ("arrival_date_year", "arrival_date_month", "arrival_date_day_of_month")
    if numbered is not None and set(parts) <= typed:
        rows = len(numbered)
        judged = ~np.logical_or.reduce([failed.get(p, np.zeros(rows, dtype=bool)) for p in parts])
        invalid = _impossible_dates(
            numbers("arrival_date_year"), numbered, numbers("arrival_date_day_of_month")
        )
        flag("arrival date", "do not form a valid date", judged & invalid)
    return found


def _where(column: str) -> str:
    return f"column {column!r}" if column in SCHEMA else column


def validate(frame: pd.DataFrame, required: tuple[str, ...] = tuple(SCHEMA)) -> pd.DataFrame:
    """Check columns, types and domains; return the frame with canonical dtypes.

    Raises DataValidationError listing every problem on one line, each naming the column
    and how many rows fail.
    """
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataValidationError(f"missing column(s): {', '.join(missing)}")
    problems = [
        f"{_where(column)}: {int(mask.sum())} rows {problem}"
        for column, problem, mask in row_problems(frame, required)
    ]
    if "reservation_status_date" in required and not problems:
        unparsed = int(
            pd.to_datetime(frame["reservation_status_date"], errors="coerce").isna().sum()
        )
        if unparsed:
            problems.append(f"column 'reservation_status_date': {unparsed} rows are not dates")
    if problems:
        raise DataValidationError("; ".join(problems))
    return _canonical(frame, required)


def _canonical(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """Fixed column order and dtypes, so a CSV and a parquet of the same data agree."""
    out = {}
    for name in columns:
        kind, nullable = SCHEMA[name]
        series = frame[name]
        if kind == "str":
            out[name] = series.astype(object).where(series.notna(), None)
        elif kind == "float" or nullable:
            out[name] = series.astype("float64")
        else:
            out[name] = series.astype("int64")
    return pd.DataFrame(out, index=frame.index)


def load_bookings(path: Path) -> pd.DataFrame:
    """Read and validate a bookings file (all 32 columns)."""
    return validate(read_table(path)).reset_index(drop=True)


def summarize(frame: pd.DataFrame) -> dict:
    """Rows, arrival range and cancellation rates per year and hotel, for `data check`."""
    arrival = arrival_dates(frame)
    return {
        "rows": len(frame),
        "columns": frame.shape[1],
        "arrival_first": arrival.min().date().isoformat(),
        "arrival_last": arrival.max().date().isoformat(),
        "cancellation_rate": round(float(frame[TARGET].mean()), 4),
        "cancellation_rate_by_year": {
            str(k): round(float(v), 4)
            for k, v in frame.groupby(arrival.dt.year)[TARGET].mean().items()
        },
        "cancellation_rate_by_hotel": {
            str(k): round(float(v), 4) for k, v in frame.groupby("hotel")[TARGET].mean().items()
        },
        "missing_values": {c: int(n) for c, n in frame.isna().sum().items() if n},
    }


def input_columns(
    features: FeaturesConfig, available: tuple[str, ...] = INPUT_COLUMNS
) -> list[str]:
    """The raw columns the model is given, after the leakage guard.

    Outcome columns are refused outright; "known later" columns only with
    ``features.allow_known_later``. Excluded columns are dropped, except the arrival-date
    parts, which stay as inputs because the date features are derived from them.
    """
    requested = list(features.include) if features.include is not None else None
    for name in requested or []:
        if name in FORBIDDEN:
            raise LeakageError(
                f"column '{name}' is the booking's outcome and can never be a feature"
            )
        if name == TARGET:
            raise LeakageError(f"column '{name}' is the label and can never be a feature")
        if name in KNOWN_LATER and not features.allow_known_later:
            raise LeakageError(
                f"column '{name}' is only known after booking; set features.allow_known_later: true"
                " to use it (the run is then tagged)"
            )
        if name not in SCHEMA:
            raise LeakageError(f"unknown column '{name}' in features.include")
    for name in features.exclude:
        if name not in SCHEMA:
            raise LeakageError(f"unknown column '{name}' in features.exclude")
    if requested is None:
        requested = [c for c in available if features.allow_known_later or c not in KNOWN_LATER]
    date_parts = ["arrival_date_year", "arrival_date_month", "arrival_date_day_of_month"]
    wanted = (set(requested) - set(features.exclude)) | set(date_parts)
    return [c for c in INPUT_COLUMNS if c in wanted]


@dataclass(frozen=True)
class Split:
    """Train / validation / test frames and how they were made."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    strategy: str

    def sizes(self) -> dict[str, int]:
        """Row counts per part."""
        return {
            "train": len(self.train),
            "validation": len(self.validation),
            "test": len(self.test),
        }


def split(frame: pd.DataFrame, config: SplitConfig, seed: int) -> Split:
    """Split by arrival date (default) or, only when configured, at random."""
    if config.strategy == "random":
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(frame))
        n_test = int(len(frame) * config.random_test_fraction)
        n_val = int(len(frame) * config.random_validation_fraction)
        test = frame.iloc[np.sort(order[:n_test])]
        validation = frame.iloc[np.sort(order[n_test : n_test + n_val])]
        train = frame.iloc[np.sort(order[n_test + n_val :])]
    else:
        arrival = arrival_dates(frame)
        val_start = pd.Timestamp(config.validation_start)
        test_start = pd.Timestamp(config.test_start)
        in_test = arrival >= test_start
        if config.test_end is not None:
            in_test &= arrival <= pd.Timestamp(config.test_end)
        train = frame[arrival < val_start]
        validation = frame[(arrival >= val_start) & (arrival < test_start)]
        test = frame[in_test]
    parts = Split(train, validation, test, config.strategy)
    empty = [name for name, size in parts.sizes().items() if size == 0]
    if empty:
        raise DataValidationError(
            f"split leaves no rows in {', '.join(empty)} (check split dates against the data's "
            "arrival range)"
        )
    return parts
