"""Compare every model kind on the default split: validation and test quality, fit time.

The default `model.kind` is the one that wins on *validation* (never chosen on test).
Run: uv run python benchmarks/model_kinds.py [--threads N]
"""

from __future__ import annotations

import argparse
import time

import publish  # benchmarks/publish.py: the table, printed and kept for the docs
from rich.table import Table

from innflow import config as config_module
from innflow.config import MODEL_KINDS
from innflow.steps.training import fit_and_evaluate, prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--kinds", nargs="*", default=list(MODEL_KINDS))
    args = parser.parse_args()
    table = Table(title="model kinds on the default split (test = 2017 arrivals)")
    for column in (
        "kind",
        "val ROC AUC",
        "test ROC AUC",
        "test PR AUC",
        "test Brier",
        "fit+eval s",
    ):
        table.add_column(column, justify="right")
    for kind in args.kinds:
        prepared = prepare(config_module.load(None, [f"model.kind={kind}"]))
        started = time.perf_counter()
        trained = fit_and_evaluate(prepared, args.threads)
        seconds = time.perf_counter() - started
        m = trained.metrics
        table.add_row(
            kind, f"{m['val_roc_auc']:.4f}", f"{m['test_roc_auc']:.4f}", f"{m['test_pr_auc']:.4f}",
            f"{m['test_brier']:.4f}", f"{seconds:.1f}",
        )  # fmt: skip
    publish.show("model_kinds", table)


if __name__ == "__main__":
    main()
