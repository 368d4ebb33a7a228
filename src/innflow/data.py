"""Load, validate, fingerprint and split the hotel bookings; guard against label leakage.

Pure functions over pandas frames: no MLflow, no CLI. Each check names the column and how
many rows fail, because the person reading the error has to go and fix the file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from innflow.contract import checks
from innflow.contract.bookings import BOOKINGS
from innflow.errors import DataValidationError, LeakageError

if TYPE_CHECKING:  # pydantic's models cost ~0.15 s to import: not for scoring a file
    from innflow.config import FeaturesConfig, SplitConfig

TARGET = "is_canceled"
CONTRACT = BOOKINGS
_MONTH = CONTRACT.columns["arrival_date_month"]
MONTHS: tuple[str, ...] = _MONTH.categories or ()
MONTH_NUMBER = {m: i for i, m in enumerate(MONTHS, 1)}


def month_numbers(names: Any) -> np.ndarray:
    """Month names (any sequence) as 1..12 in float64, NaN for anything else."""
    return checks.positions(_MONTH, names) + 1


# Columns that *are* the outcome: refused whatever the configuration says.
FORBIDDEN = ("reservation_status", "reservation_status_date")
# Columns that can change or get filled in after the booking: only by explicit configuration.
KNOWN_LATER = ("assigned_room_type", "booking_changes", "days_in_waiting_list", "country")

# name -> (kind, nullable) as the checks judge them (see contract.Column.kind)
SCHEMA: dict[str, tuple[str, bool]] = {
    name: (column.kind, column.nullable) for name, column in CONTRACT.columns.items()
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
        for column, problem, mask in checks.row_problems(CONTRACT, frame, required)
    ]
    dates = [c for c in required if CONTRACT.columns[c].type == "date"]
    for name in dates if not problems else ():
        unparsed = int(pd.to_datetime(frame[name], errors="coerce").isna().sum())
        if unparsed:
            problems.append(f"column {name!r}: {unparsed} rows are not dates")
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
