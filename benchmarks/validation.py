"""The contract's checks against pandera's, on the bundled file and on requests.

innflow checks files and requests with one vectorised checker derived from the data
contract (innflow/contract/checks.py). This measures it where it runs: the 119,390-row
bundled file (as `innflow data check` and `innflow score` validate it), and a 1,000-row
and a one-row request as the service holds them (columns as float64 and object arrays).
With pandera installed (`uv run --with 'pandera[pandas]' python benchmarks/validation.py`)
the same rules, translated from the same contract into a pandera DataFrameSchema, are
timed beside them (a request then needs a DataFrame first, which is timed too).

Run: uv run python benchmarks/validation.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from innflow import data
from innflow.contract import Contract, checks
from innflow.contract.columns import INTEGER_LIMIT

ROOT = Path(__file__).resolve().parents[1]


def _best(run: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """(fastest, median) milliseconds of ``run``."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return 1000 * min(times), 1000 * float(np.median(times))


def pandera_schema(contract: Contract, columns: tuple[str, ...]) -> Any:
    """The contract's rules for ``columns`` as a pandera schema (lazy validation reports
    every failure, as innflow's checks do). Numbers are checked as floats: a request's
    numbers arrive as float64, a file's as whatever its columns hold.
    """
    import pandera.pandas as pa

    def whole(series: pd.Series) -> pd.Series:
        return (series == np.floor(series)) & (series.abs() <= INTEGER_LIMIT)

    fields = {}
    for name in columns:
        column = contract.columns[name]
        if column.kind == "str":
            check = [pa.Check.isin(list(column.categories))] if column.categories else []
            fields[name] = pa.Column(str, nullable=column.nullable, checks=check)
            continue
        rules = [pa.Check(whole, name="whole")] if column.kind != "float" else []
        if column.kind == "float":
            rules.append(pa.Check(np.isfinite, name="finite"))
        if column.categories is not None:
            rules.append(pa.Check.isin(list(column.categories)))
        if column.minimum is not None:
            rules.append(pa.Check.ge(column.minimum))
        if column.maximum is not None:
            rules.append(pa.Check.le(column.maximum))
        fields[name] = pa.Column(nullable=column.nullable, checks=rules, coerce=False)

    def dates(frame: pd.DataFrame) -> pd.Series:
        rule = contract.dates[0]
        months = checks.positions(contract.columns[rule.month], frame[rule.month].to_numpy(object))
        invalid = checks.impossible_dates(frame[rule.year].to_numpy(float), months + 1,
                                          frame[rule.day].to_numpy(float), rule.years)  # fmt: skip
        return pd.Series(~invalid, index=frame.index)

    return pa.DataFrameSchema(fields, checks=[pa.Check(dates, name="dates")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # pandera's imports warn about pyspark and pandas 3
    bookings = data.read_table(ROOT / "data" / "hotel_bookings.parquet")
    every, inputs = tuple(data.SCHEMA), data.INPUT_COLUMNS
    numbers = [c for c in inputs if data.SCHEMA[c][0] != "str"]

    def request(rows: int) -> dict[str, np.ndarray]:
        part = bookings.iloc[:rows]
        return {c: part[c].to_numpy("float64" if c in numbers else object) for c in inputs}

    requests = {1000: request(1000), 1: request(1)}

    def innflow(frame: Any, columns: tuple[str, ...]) -> Callable[[], Any]:
        return lambda: checks.row_problems(data.CONTRACT, frame, columns)

    cases: dict[str, dict[str, Callable[[], Any]]] = {
        "file, 119,390 rows": {"innflow": innflow(bookings, every)},
        **{f"request, {n:,} rows": {"innflow": innflow(a, inputs)} for n, a in requests.items()},
    }
    try:
        import pandera  # noqa: F401
    except ImportError:
        pandera_here = False
    else:
        pandera_here = True
        whole_file = pandera_schema(data.CONTRACT, every)
        request_schema = pandera_schema(data.CONTRACT, inputs)
        cases["file, 119,390 rows"]["pandera"] = lambda: whole_file.validate(bookings, lazy=True)
        for n, arrays in requests.items():
            case = cases[f"request, {n:,} rows"]
            case["pandera"] = lambda a=arrays: request_schema.validate(pd.DataFrame(a), lazy=True)
            case["pandera's DataFrame alone"] = lambda a=arrays: pd.DataFrame(a)
    table = Table(title=f"validation, fastest / median of {args.repeats} (ms); load "
                        + " / ".join(f"{x:.1f}" for x in os.getloadavg()))  # fmt: skip
    table.add_column("what")
    table.add_column("checker")
    table.add_column("ms", justify="right")
    for what, checkers in cases.items():
        for checker, run in checkers.items():
            run()  # warm
            fastest, median = _best(run, args.repeats)
            table.add_row(what, checker, f"{fastest:.2f} / {median:.2f}")
    Console(width=120).print(table)
    if not pandera_here:
        print("pandera is not installed: uv run --with 'pandera[pandas]' python " + __file__)


if __name__ == "__main__":
    main()
