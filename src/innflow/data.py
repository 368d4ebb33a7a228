"""Load, validate, fingerprint and split a data set by its contract; guard against label
leakage. The bookings' contract is the default of every function.

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

from innflow.contract import Contract, DateRule, checks
from innflow.contract.bookings import BOOKINGS
from innflow.errors import DataValidationError, LeakageError

if TYPE_CHECKING:  # pydantic's models cost ~0.15 s to import: not for scoring a file
    from innflow.config import FeaturesConfig, SplitConfig

CONTRACT = BOOKINGS
assert CONTRACT.target is not None and isinstance(CONTRACT.event_time, DateRule)
TARGET = CONTRACT.target
_MONTH = CONTRACT.columns[CONTRACT.event_time.month]
MONTHS: tuple[str, ...] = _MONTH.categories or ()
MONTH_NUMBER = {m: i for i, m in enumerate(MONTHS, 1)}


def month_numbers(names: Any) -> np.ndarray:
    """Month names (any sequence) as 1..12 in float64, NaN for anything else."""
    return checks.positions(_MONTH, names) + 1


# Columns that *are* the outcome: refused whatever the configuration says.
FORBIDDEN = CONTRACT.having("outcome")
# Columns that can change or get filled in after the booking: only by explicit configuration.
KNOWN_LATER = CONTRACT.having("known_later")

# name -> (kind, nullable) as the checks judge them (see contract.Column.kind)
SCHEMA: dict[str, tuple[str, bool]] = {
    name: (column.kind, column.nullable) for name, column in CONTRACT.columns.items()
}
INPUT_COLUMNS = CONTRACT.inputs


def contract_at(path: Path | None) -> Contract:
    """The contract a config names (``data.contract``): the bundled bookings' for None."""
    from innflow.contract import load

    return CONTRACT if path is None else load(path)


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


def event_times(frame: pd.DataFrame, contract: Contract = CONTRACT) -> pd.Series | None:
    """Each row's event time by the contract (the bookings: arrival date from year, month
    name and day); NaT where the parts make no date; None when the contract has none.
    """
    rule = contract.event_time
    if rule is None:
        return None
    if isinstance(rule, str):
        return pd.to_datetime(frame[rule], errors="coerce")
    names = contract.columns[rule.month].categories or ()
    month = frame[rule.month].map({m: i for i, m in enumerate(names, 1)})
    parts = pd.DataFrame({"year": frame[rule.year], "month": month, "day": frame[rule.day]})
    return pd.to_datetime(parts, errors="coerce")


def arrival_dates(frame: pd.DataFrame) -> pd.Series:
    """The bookings' arrival dates (their event time)."""
    times = event_times(frame)
    assert times is not None
    return times


def _where(column: str, contract: Contract) -> str:
    return f"column {column!r}" if column in contract.columns else column


def validate(
    frame: pd.DataFrame, required: tuple[str, ...] | None = None, contract: Contract = CONTRACT
) -> pd.DataFrame:
    """Check columns, types and domains (``required``: default every column of the
    contract); return the frame with canonical dtypes.

    Raises DataValidationError listing every problem on one line, each naming the column
    and how many rows fail.
    """
    required = tuple(contract.columns) if required is None else required
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"missing column(s): {', '.join(missing)} (named by contract {contract.name!r})"
        )
    frame = _dates_as_text(frame, [c for c in required if contract.columns[c].type == "date"])
    problems = [
        f"{_where(column, contract)}: {int(mask.sum())} rows {problem}"
        for column, problem, mask in checks.row_problems(contract, frame, required)
    ]
    if problems:
        raise DataValidationError("; ".join(problems))
    return _canonical(frame, required, contract)


def _dates_as_text(frame: pd.DataFrame, dates: list[str]) -> pd.DataFrame:
    """A parquet file's timestamp columns as the ISO text a date column holds in CSV."""
    stamped = [c for c in dates if pd.api.types.is_datetime64_any_dtype(frame[c])]
    if not stamped:
        return frame
    as_text = {}
    for name in stamped:
        values = frame[name]
        timed = bool((values.dropna() != values.dropna().dt.normalize()).any())
        text = values.dt.strftime("%Y-%m-%dT%H:%M:%S" if timed else "%Y-%m-%d")
        as_text[name] = text.astype(object).where(values.notna(), None)
    return frame.assign(**as_text)


def _canonical(frame: pd.DataFrame, columns: tuple[str, ...], contract: Contract) -> pd.DataFrame:
    """Fixed column order and dtypes, so a CSV and a parquet of the same data agree."""
    out = {}
    for name in columns:
        column = contract.columns[name]
        series = frame[name]
        if column.kind == "str":
            out[name] = series.astype(object).where(series.notna(), None)
        elif column.kind == "float" or column.nullable:
            out[name] = series.astype("float64")
        else:
            out[name] = series.astype("int64")
    return pd.DataFrame(out, index=frame.index)


def load_data(path: Path, contract: Contract = CONTRACT) -> pd.DataFrame:
    """Read a file and validate it against the contract (every column)."""
    return validate(read_table(path), contract=contract).reset_index(drop=True)


def summarize(frame: pd.DataFrame, contract: Contract = CONTRACT) -> dict:
    """Rows, the event-time range, and the target's mean (a binary target's rate) overall
    and per year, for `data check`.
    """
    summary: dict[str, Any] = {"rows": len(frame), "columns": frame.shape[1]}
    times = event_times(frame, contract)
    if times is not None:
        summary["first"] = times.min().date().isoformat()
        summary["last"] = times.max().date().isoformat()
    target = contract.target
    if target is not None:
        summary["target"] = target
        summary["target_mean"] = round(float(frame[target].mean()), 4)
        if times is not None:
            summary["target_mean_by_year"] = {
                str(k): round(float(v), 4)
                for k, v in frame.groupby(times.dt.year)[target].mean().items()
            }
    summary["missing_values"] = {c: int(n) for c, n in frame.isna().sum().items() if n}
    return summary


def excluded(features: FeaturesConfig, contract: Contract = CONTRACT) -> list[str]:
    """The raw columns models leave out: the config's ``features.exclude``, or by default
    the contract's ``exclude`` list.
    """
    return list(features.exclude) if features.exclude is not None else list(contract.exclude)


def input_columns(
    features: FeaturesConfig, available: tuple[str, ...] | None = None,
    contract: Contract = CONTRACT,
) -> list[str]:  # fmt: skip
    """The raw columns the model is given, after the leakage guard.

    Outcome columns (and the target, and identifiers) are refused outright; "known later"
    columns only with ``features.allow_known_later``. Excluded columns are dropped, except
    the event time's parts, which stay as inputs because the date features derive from them.
    """
    inputs = contract.inputs
    known_later = contract.having("known_later")
    requested = list(features.include) if features.include is not None else None
    for name in requested or []:
        role = contract.columns[name].role if name in contract.columns else None
        if role == "outcome":
            raise LeakageError(f"column '{name}' is the outcome and can never be a feature")
        if role == "target":
            raise LeakageError(f"column '{name}' is the label and can never be a feature")
        if role == "identifier":
            raise LeakageError(f"column '{name}' is an identifier and can never be a feature")
        if role == "known_later" and not features.allow_known_later:
            raise LeakageError(
                f"column '{name}' is only known later; set features.allow_known_later: true"
                " to use it (the run is then tagged)"
            )
        if role is None:
            raise LeakageError(f"unknown column '{name}' in features.include")
    exclude = excluded(features, contract)
    for name in exclude:
        if name not in contract.columns:
            raise LeakageError(f"unknown column '{name}' in features.exclude")
    if requested is None:
        requested = [
            c for c in (inputs if available is None else available)
            if features.allow_known_later or c not in known_later
        ]  # fmt: skip
    wanted = (set(requested) - set(exclude)) | set(contract.having("time_part"))
    return [c for c in inputs if c in wanted]


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


def split(
    frame: pd.DataFrame, config: SplitConfig, seed: int, contract: Contract = CONTRACT
) -> Split:
    """Split by event time (default) or, when configured or the contract has no event
    time, at random.
    """
    times = None if config.strategy == "random" else event_times(frame, contract)
    if times is None:
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(frame))
        n_test = int(len(frame) * config.random_test_fraction)
        n_val = int(len(frame) * config.random_validation_fraction)
        test = frame.iloc[np.sort(order[:n_test])]
        validation = frame.iloc[np.sort(order[n_test : n_test + n_val])]
        train = frame.iloc[np.sort(order[n_test + n_val :])]
        strategy = "random"
    else:
        val_start = pd.Timestamp(config.validation_start)
        test_start = pd.Timestamp(config.test_start)
        in_test = times >= test_start
        if config.test_end is not None:
            in_test &= times <= pd.Timestamp(config.test_end)
        train = frame[times < val_start]
        validation = frame[(times >= val_start) & (times < test_start)]
        test = frame[in_test]
        strategy = config.strategy
    parts = Split(train, validation, test, strategy)
    empty = [name for name, size in parts.sizes().items() if size == 0]
    if empty:
        rule = contract.event_time
        when = "" if rule is None else (rule if isinstance(rule, str) else rule.name) + " "
        raise DataValidationError(
            f"split leaves no rows in {', '.join(empty)} (check split dates against the "
            f"data's {when}range)"
        )
    return parts
