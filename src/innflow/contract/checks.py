"""A contract's rules as vectorised checks: which rows of which column break which rule.

One checker for files (a DataFrame, whose errors count rows) and for the service (columns
as numpy arrays, whose errors name rows), so the two cannot disagree. Works on one numpy
array per column: a request of one booking must not pay for a dozen pandas Series per
column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd

from innflow.contract.columns import INTEGER_LIMIT, Column, Contract

Problems = list[tuple[str, str, np.ndarray]]  # (column, problem, mask of failing rows)
Frame = pd.DataFrame | Mapping[str, Any]  # a file, or the service's columns as arrays


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


def column_checks(series: Any, kind: str, nullable: bool) -> list[tuple[str, np.ndarray]]:
    """(problem, mask of failing rows) of a column's type and nullability (a Series or a
    numpy array; ``kind`` as ``Column.kind``); each row fails at most once.
    """
    if isinstance(series, pd.Series):  # extension dtypes (nullable ints, booleans) included
        if kind == "str" and isinstance(series.dtype, pd.StringDtype):
            # text by its dtype: only nulls to find, without an object array of its strings
            # (building one was most of `innflow score`'s validation)
            return [] if nullable else [("are null", np.asarray(series.isna(), dtype=bool))]
        values = series.to_numpy()
        is_bool = pd.api.types.is_bool_dtype(series)
        is_numeric = pd.api.types.is_numeric_dtype(series)
    else:  # the service's arrays: the dtype's kind says it, without pandas' dtype machinery
        values = np.asarray(series)
        is_bool, is_numeric = values.dtype.kind == "b", values.dtype.kind in "iuf"
    floats = values.dtype.kind == "f"
    if plainly_valid(values, kind, nullable):
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
            beyond = numeric & whole & (np.abs(numbers) > INTEGER_LIMIT)
            checks.append((f"are beyond +-{INTEGER_LIMIT}", beyond))
        if kind == "count":
            checks.append(("are negative", numeric & (numbers < 0)))
        if kind == "binary":
            checks.append(("are not 0 or 1", numeric & (numbers != 0) & (numbers != 1)))
        if kind == "float":
            checks.append(("are infinite", numeric & np.isinf(numbers)))
    return checks


_WHOLE_RANGE = {"int": (-INTEGER_LIMIT, INTEGER_LIMIT), "count": (0, INTEGER_LIMIT),
                "binary": (0, 1)}  # fmt: skip


def plainly_valid_together(contract: Contract, frame: Frame, columns: tuple[str, ...]) -> set[str]:
    """The service's float64 number columns accepted a few at a time: those of one kind
    and nullability stacked and judged in one ``plainly_valid`` pass (for a request of one
    booking, two dozen per-column passes cost more than the values). A group with any
    problem is left to the per-column checks, which say where. A file's columns (Series)
    are judged one by one.
    """
    groups: dict[tuple[str, bool], list[str]] = {}  # (kind, nullable) -> its columns
    for name in columns:
        values, column = frame[name], contract.columns[name]
        if column.kind != "str" and isinstance(values, np.ndarray) and values.dtype == np.float64:
            groups.setdefault((column.kind, column.nullable), []).append(name)
    return {
        name
        for (kind, nullable), names in groups.items()
        if len(names) > 1 and plainly_valid(np.stack([frame[n] for n in names]), kind, nullable)
        for name in names
    }


SMALL = 32  # up to this many values, a set of their types beats infer_dtype's set-up


def plainly_valid(values: np.ndarray, kind: str, nullable: bool) -> bool:
    """One cheap pass that accepts a column with nothing wrong (the usual case), so the
    per-problem masks are built only for a column that has a problem. False means "look
    closer", never "invalid". Any shape (``plainly_valid_together`` passes 2-D blocks).
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


def positions(column: Column, values: Any) -> np.ndarray:
    """Each value's position in the column's categories as float64, NaN for any other
    value (one pass in C, no list of Python floats).
    """
    found = column.ranks.get
    return np.fromiter(map(found, values, repeat(np.nan)), "float64", len(values))


_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def impossible_dates(
    years: np.ndarray, months: np.ndarray, days: np.ndarray, span: tuple[int, int]
) -> np.ndarray:
    """Rows whose (year, month 1..12, day) is no calendar date with a year in ``span``
    (Feb 29 only in leap years). Plain numpy, so a one-booking request does not build a
    DataFrame.
    """
    # (np.where, not nan_to_num, whose set-up outweighs a one-booking request's values)
    month_index = np.clip(np.where(np.isnan(months), 1, months).astype(int), 1, 12) - 1
    y = np.where(np.isfinite(years), years, 0).astype(int)  # not finite: refused below
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    last_day = _MONTH_DAYS[month_index] + (leap & (month_index == 1))
    return (
        np.isnan(years) | np.isnan(months) | np.isnan(days)
        | (y < span[0]) | (y > span[1]) | (days < 1) | (days > last_day)
    )  # fmt: skip


def _either(values: tuple[Any, ...]) -> str:
    shown = [str(v) for v in values]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


def _unknown(column: Column, values: np.ndarray, ranks: np.ndarray) -> Problems:
    """A closed text column's values outside its categories (``ranks``: their positions)."""
    unknown = np.isnan(ranks)
    if not unknown.any():
        return []
    examples = ", ".join(repr(v) for v in pd.unique(values[unknown])[:3])
    what = column.categories_are or f"one of {_either(column.categories or ())}"
    return [(column.name, f"are not {what} ({examples})", unknown)]


def _outside(column: Column, numbers: np.ndarray) -> Problems:
    """A number column's values outside its categories or its range."""
    found: Problems = []
    if column.categories is not None and column.kind != "binary":  # (binary: its type's)
        found.append((column.name, f"are not {_either(column.categories)}",
                      ~np.isin(numbers, column.categories)))  # fmt: skip
    if column.bounds is not None:
        low, high, problem = column.bounds  # (NaN is neither below nor over: judged as null)
        if low is not None and high is not None:
            found.append((column.name, problem, (numbers < low) | (numbers > high)))
        else:
            found.append(
                (column.name, problem, numbers < low if low is not None else numbers > high)
            )
    return [(c, p, m) for c, p, m in found if m.any()]


def row_problems(contract: Contract, frame: Frame, columns: tuple[str, ...]) -> Problems:
    """Every (column, problem, failing-rows mask) in ``frame`` (a DataFrame, or columns as
    numpy arrays as the service parses them): types, nulls, domains, dates.

    A domain check runs on its column once that column's types are right, whatever other
    columns hold, so one request hears of every problem at once; a date rule runs on the
    rows whose year, month and day are each valid.
    """
    found: Problems = []
    typed = plainly_valid_together(contract, frame, columns)  # columns whose types are right
    for name in columns:
        if name in typed:
            continue
        column = contract.columns[name]
        failing = [(p, m) for p, m in column_checks(frame[name], column.kind, column.nullable)
                   if m.any()]  # fmt: skip
        found.extend((name, problem, mask) for problem, mask in failing)
        if not failing:
            typed.add(name)

    def numbers(name: str) -> np.ndarray:
        return np.asarray(frame[name], dtype="float64")

    failed: dict[str, np.ndarray] = {}
    ranks: dict[str, np.ndarray] = {}  # a closed text column's positions in its categories
    for column in contract.ranged:
        name = column.name
        if name not in typed:
            continue
        if column.kind == "str":
            values = np.asarray(frame[name], dtype=object)
            ranks[name] = positions(column, values)
            problems = _unknown(column, values, ranks[name])
        else:
            problems = _outside(column, numbers(name))
        found.extend(problems)
        for _, _, mask in problems:
            failed[name] = failed.get(name, np.zeros(len(mask), dtype=bool)) | mask
    for name in columns:
        if name in typed and contract.columns[name].type == "date":
            text = pd.Series(np.asarray(frame[name], dtype=object))
            unparsed = pd.to_datetime(text, errors="coerce", format="mixed").isna()
            mask = (unparsed & text.notna()).to_numpy()
            if mask.any():
                found.append((name, "are not dates", mask))
    for rule in contract.dates:
        parts = (rule.year, rule.month, rule.day)
        if not set(parts) <= typed:
            continue
        months = ranks[rule.month] + 1  # (typed, so checked against its names above)
        rows = len(months)
        judged = ~np.logical_or.reduce([failed.get(p, np.zeros(rows, dtype=bool)) for p in parts])
        invalid = impossible_dates(numbers(rule.year), months, numbers(rule.day), rule.years)
        if (judged & invalid).any():
            found.append((rule.name, "do not form a valid date", judged & invalid))
    return found
