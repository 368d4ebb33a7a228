"""Rolling-origin windows: each test month trained exactly as `innflow train` trains, with
validation = the month before and a refit on every arrival before it. Shared by `innflow
backtest` and `innflow simulate`'s replay; pure (no runs).
"""

from __future__ import annotations

import re
from datetime import date

import pandas as pd

from innflow import data as bookings
from innflow.config import Config, from_dict
from innflow.errors import ConfigError
from innflow.steps.training import Fitted, Prepared, fit


def months(start: str, end: str) -> list[date]:
    """First days of the months from ``start`` to ``end`` inclusive (``YYYY-MM``)."""
    pattern = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
    if not (pattern.fullmatch(start) and pattern.fullmatch(end)):
        raise ConfigError(f"months must look like 2016-07: got {start!r}..{end!r}")
    first, last = pd.Period(start, "M"), pd.Period(end, "M")
    if last < first:
        raise ConfigError(f"--end {end} is before --start {start}")
    return [p.to_timestamp().date() for p in pd.period_range(first, last, freq="M")]


def month_config(config: Config, month: date) -> Config:
    """The config with its split set to test ``month``, validation the month before."""
    tree = config.to_dict()
    previous = (pd.Timestamp(month) - pd.offsets.MonthBegin(1)).date()
    last_day = (pd.Timestamp(month) + pd.offsets.MonthEnd(0)).date()
    tree["split"].update(
        strategy="time",
        validation_start=str(previous),
        test_start=str(month),
        test_end=str(last_day),
    )
    return from_dict(tree)


def fit_month(
    frame: pd.DataFrame, config: Config, month: date, data_sha: str, threads: int
) -> tuple[Prepared, Fitted]:
    """Train for test month ``month`` exactly as `innflow train` does: validation = the
    month before (a binary model's threshold chosen there), refit on every arrival before
    ``month``.
    """
    contract = bookings.contract_at(config.data.contract)
    windowed = month_config(config, month)
    split = bookings.split(frame, windowed.split, config.seed, contract)
    columns = bookings.input_columns(config.features, contract=contract)
    prepared = Prepared(windowed, data_sha, split, columns, contract)
    return prepared, fit(prepared, threads)
