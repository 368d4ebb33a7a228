"""`innflow compare --top 5` over an experiment of N runs vs MLflow's plain search of it.

Creates N runs shaped like innflow training runs (about 60 params, 40 metrics, 30 tags)
in a temporary SQLite store, then times: `mlflow.search_runs` over the whole experiment
(what a notebook comparing runs does), and innflow's ranked, limited query plus comparison.

Run: uv run python benchmarks/compare_scale.py [--runs 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import publish  # benchmarks/publish.py: the table, printed and kept for the docs
from rich.table import Table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    import os

    import mlflow
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    from innflow.reproducibility import comparison
    from innflow.workflows.compare import collect

    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        os.environ["MLFLOW_TRACKING_URI"] = uri
        mlflow.set_tracking_uri(uri)
        client = MlflowClient()
        experiment = client.create_experiment("scale", artifact_location=f"{tmp}/artifacts")
        started = time.perf_counter()
        for i in range(args.runs):
            run = client.create_run(experiment, run_name=f"run-{i}")
            now = int(time.time() * 1000)
            client.log_batch(
                run.info.run_id,
                metrics=[
                    Metric(f"test_metric_{m}", (i * 7919 + m) % 1000 / 1000, now, 0)
                    for m in range(39)
                ]
                + [Metric("test_roc_auc", (i * 7919) % 1000 / 1000, now, 0)],
                params=[Param(f"model.params.p{p}", str((i + p) % 17)) for p in range(60)],
                tags=[RunTag("innflow.kind", "train")]
                + [RunTag(f"innflow.t{t}", str(i % 5)) for t in range(29)],
            )
            client.set_terminated(run.info.run_id)
        created = time.perf_counter() - started
        started = time.perf_counter()
        frame = mlflow.search_runs([experiment])
        plain = time.perf_counter() - started
        started = time.perf_counter()
        result = comparison.compare(collect([], "scale", 5, "test_roc_auc"))
        ours = time.perf_counter() - started
    table = Table(title=f"comparing runs of an experiment with {args.runs:,} runs (SQLite)")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    table.add_row(f"create {args.runs} runs (log_batch)", f"{created:.1f}")
    table.add_row(f"mlflow.search_runs, whole experiment ({len(frame)} rows)", f"{plain:.2f}")
    table.add_row(f"innflow compare --top 5 ({len(result.run_ids)} runs)", f"{ours:.2f}")
    publish.show("compare_scale", table)


if __name__ == "__main__":
    main()
