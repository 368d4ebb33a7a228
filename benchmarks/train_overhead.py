"""What tracking costs: plain fit+predict vs `mlflow.sklearn.autolog()` vs `innflow train`.

All variants fit the same pipeline on the same split the same way (fit on train, predict
validation, refit on train+validation, predict test), each in a fresh process, against a
temporary SQLite store that already exists (creating a store costs ~2 s once). Times are
wall-clock from after `import pandas, sklearn, lightgbm`, so importing MLflow counts
against the two tracked variants. "fit + innflow evaluation" adds innflow's evaluation
(metrics, cost, slices, audit, TreeSHAP, plots, HTML) without MLflow, separating the cost of
that work from the cost of tracking. Prints one table with ratios to the plain fit.

Run: uv run python benchmarks/train_overhead.py [--repeat 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import median

import publish  # benchmarks/publish.py: the table, printed and kept for the docs
from rich.table import Table

PRELUDE = """
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas, sklearn, lightgbm, numpy as np
from innflow import config as C
from innflow.modeling import models
from innflow.steps.training import prepare
THREADS = int(sys.argv[1]); STORE = sys.argv[2]
start = time.perf_counter()
"""

PLAIN = (
    PRELUDE
    + """
p = prepare(C.load())
def fit(X, y):
    return models.fit(models.build_pipeline(p.config, p.input_columns, THREADS), X, y, THREADS)
m = fit(p.features("train"), p.labels("train")); m.predict_proba(p.features("validation"))
both = pandas.concat([p.features("train"), p.features("validation")])
m = fit(both, np.concatenate([p.labels("train"), p.labels("validation")]))
m.predict_proba(p.features("test"))
print(json.dumps({"seconds": time.perf_counter() - start}))
"""
)

AUTOLOG = (
    PRELUDE
    + """
import mlflow
mlflow.set_tracking_uri(STORE); mlflow.set_experiment("bench-autolog")
mlflow.sklearn.autolog()
p = prepare(C.load())
def fit(X, y):
    return models.fit(models.build_pipeline(p.config, p.input_columns, THREADS), X, y, THREADS)
with mlflow.start_run():
    m = fit(p.features("train"), p.labels("train")); m.predict_proba(p.features("validation"))
with mlflow.start_run():
    both = pandas.concat([p.features("train"), p.features("validation")])
    m = fit(both, np.concatenate([p.labels("train"), p.labels("validation")]))
    m.predict_proba(p.features("test"))
print(json.dumps({"seconds": time.perf_counter() - start}))
"""
)

EVALUATED = (
    PRELUDE
    + """
import tempfile, pathlib
from innflow.steps.training import fit
from innflow.workflows.train import _write_evaluation
p = prepare(C.load())
with tempfile.TemporaryDirectory() as d:
    _write_evaluation(p, fit(p, THREADS), pathlib.Path(d))
print(json.dumps({"seconds": time.perf_counter() - start}))
"""
)

INNFLOW = (
    PRELUDE
    + """
from innflow.workflows.train import train
import os; os.environ["MLFLOW_TRACKING_URI"] = STORE
train(C.load(), threads=THREADS)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""
)


def _run(script: str, threads: int, store: str, cwd: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", script, str(threads), store],
        capture_output=True, text=True, cwd=cwd, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"benchmark step failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    data = Path(__file__).resolve().parents[1] / "data"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "data").symlink_to(data)
        store = f"sqlite:///{tmp}/mlflow.db"
        _run(INNFLOW, args.threads, store, tmp)  # create the store and warm the disk cache
        results = {}
        variants = (
            ("plain fit+predict", PLAIN),
            ("fit + innflow evaluation, no MLflow", EVALUATED),
            ("mlflow.sklearn.autolog()", AUTOLOG),
            ("innflow train", INNFLOW),
        )
        for name, script in variants:
            results[name] = median(
                _run(script, args.threads, store, tmp) for _ in range(args.repeat)
            )
    base = results["plain fit+predict"]
    table = Table(
        title=f"train overhead (LightGBM default, {args.threads} threads, median of {args.repeat})"
    )
    table.add_column("variant")
    table.add_column("seconds", justify="right")
    table.add_column("x plain", justify="right")
    for name, seconds in results.items():
        table.add_row(name, f"{seconds:.2f}", f"{seconds / base:.2f}")
    publish.show("train_overhead", table)


if __name__ == "__main__":
    main()
