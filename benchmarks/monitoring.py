"""What one monitoring check costs on the full data, without MLflow: building the
reference profile of the 2015-07..2016-12 window, then checking each 2017 month (a few
thousand bookings) for drift and performance, with and without the per-variant bootstrap.

The issue's goal: monitoring one month takes under a second.

Run: uv run python benchmarks/monitoring.py
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pandas as pd
import publish  # benchmarks/publish.py: the table, printed and kept for the docs
from rich.table import Table


def main() -> None:
    from innflow import config
    from innflow import data as bookings
    from innflow.monitoring import profile
    from innflow.monitoring.check import check
    from innflow.monitoring.settings import MonitoringConfig

    cfg = config.load(None)
    frame = bookings.load_data(cfg.data.path)
    columns = bookings.input_columns(cfg.features)
    arrival = bookings.arrival_dates(frame)
    window = frame[arrival < "2017-01-01"]
    rng = np.random.default_rng(0)
    # scores stand in for a model's: the statistics do not depend on where they come from
    scores = np.clip(frame["is_canceled"] * 0.4 + rng.uniform(0, 0.6, len(frame)), 0, 1)
    started = time.perf_counter()
    reference = profile.build(
        window[columns], scores[: len(window)].to_numpy(), window["is_canceled"].to_numpy()
    )
    build_seconds = time.perf_counter() - started
    thresholds = MonitoringConfig()
    table = Table(title="monitoring one month against the 2015-07..2016-12 reference")
    for column in ("month", "bookings", "drift + performance s", "+ 2-variant bootstrap s"):
        table.add_column(column, justify="right")
    plain, with_variants = [], []
    for month in pd.period_range("2017-01", "2017-08", freq="M"):
        rows = frame[(arrival.dt.to_period("M") == month).to_numpy()]
        p = scores[rows.index].to_numpy()
        y = rows["is_canceled"].to_numpy(dtype="float64")
        started = time.perf_counter()
        check(reference, rows[columns], p, thresholds, y)
        plain.append(time.perf_counter() - started)
        log = pd.DataFrame(
            {
                "variant": np.where(np.arange(len(rows)) % 2, "a", "b"),
                "model_version": "1",
                "is_canceled": y,
                "probability": p,
            }
        )
        started = time.perf_counter()
        check(reference, rows[columns], p, thresholds, y, log)
        with_variants.append(time.perf_counter() - started)
        table.add_row(str(month), f"{len(rows):,}", f"{plain[-1]:.3f}", f"{with_variants[-1]:.3f}")
    table.add_row(
        "median", "", f"{statistics.median(plain):.3f}", f"{statistics.median(with_variants):.3f}"
    )
    publish.show(
        "monitoring", table,
        notes=(f"reference profile of {len(window):,} bookings: {build_seconds:.2f} s",),
    )  # fmt: skip


if __name__ == "__main__":
    main()
