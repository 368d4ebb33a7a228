"""Tracking overhead of `innflow tune`: time spent in MLflow calls for the trials vs total.

Runs a tune of N trials (default 50, LightGBM, pruning on) on the bundled data against a
temporary SQLite store and prints the totals the parent run records.

Run: uv run python benchmarks/tune_overhead.py [--trials 50] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile

import publish  # benchmarks/publish.py: the table, printed and kept for the docs
from rich.table import Table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", default="data/hotel_bookings.parquet")
    args = parser.parse_args()
    from innflow import config
    from innflow.workflows.tune import tune

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        cfg = config.load(None, [f"data.path={os.path.abspath(args.data)}"])
        outcome = tune(cfg, trials=args.trials, threads=args.threads)
    table = Table(title=f"innflow tune, {args.trials} trials (LightGBM, {args.threads} threads)")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row(
        "trials complete / pruned", f"{outcome.trials['COMPLETE']} / {outcome.trials['PRUNED']}"
    )
    table.add_row("total seconds (incl. refit)", f"{outcome.total_seconds:.1f}")
    table.add_row("seconds in MLflow calls for trials", f"{outcome.tracking_seconds:.2f}")
    table.add_row("share of total", f"{outcome.tracking_seconds / outcome.total_seconds:.2%}")
    table.add_row("best validation ROC AUC", f"{outcome.best_value:.4f}")
    table.add_row("refit test ROC AUC", f"{outcome.refit.metrics['test_roc_auc']:.4f}")
    publish.show("tune_overhead", table)


if __name__ == "__main__":
    main()
