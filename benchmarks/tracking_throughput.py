"""Logging throughput: the embedded SQLite store vs `innflow server` on PostgreSQL + S3.

With 1, 4 and 8 client processes at once, each client logs RUNS runs shaped like a
training run's bookkeeping (40 params, 40 metrics, 10 tags in batches, one small
artifact), then one run with METRICS metric values logged one call each. Clients import
MLflow before a common start time, so only logging is timed. The servers are started here
as the e2e tests start them (PostgreSQL as the postgres user when run as root, moto's S3).
Then `innflow compare --top 5` and `innflow models` run over an experiment of --compare-runs
runs through the server.

Run: uv run python benchmarks/tracking_throughput.py [--runs 10] [--metrics 200]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import publish  # benchmarks/publish.py: the table, printed and kept for the docs
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _client(uri: str, runs: int, metrics: int, start_at: float, queue) -> None:
    os.environ.pop("AWS_ACCESS_KEY_ID", None)
    import mlflow
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("throughput").experiment_id
    time.sleep(max(0.0, start_at - time.time()))
    began = time.perf_counter()
    for i in range(runs):
        run = client.create_run(experiment, tags={"bench": "runs"})
        rid = run.info.run_id
        now = int(time.time() * 1000)
        client.log_batch(
            rid,
            metrics=[Metric(f"m{k}", k * 0.5 + i, now, 0) for k in range(40)],
            params=[Param(f"p{k}", str(k)) for k in range(40)],
            tags=[RunTag(f"t{k}", "x" * 20) for k in range(10)],
        )
        client.log_text(rid, "config: value\n" * 20, "config/resolved.yaml")
        client.set_terminated(rid, "FINISHED")
    runs_seconds = time.perf_counter() - began
    run = client.create_run(experiment, tags={"bench": "metrics"})
    began = time.perf_counter()
    for step in range(metrics):
        client.log_metric(run.info.run_id, "loss", 1.0 / (step + 1), step=step)
    metric_seconds = time.perf_counter() - began
    client.set_terminated(run.info.run_id, "FINISHED")
    queue.put((runs_seconds, metric_seconds))


def measure(uri: str, clients: int, runs: int, metrics: int) -> tuple[float, float]:
    """(runs per second, metric calls per second) over all clients."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    start_at = time.time() + 8 + clients  # imports finish before anyone starts
    workers = [
        context.Process(target=_client, args=(uri, runs, metrics, start_at, queue))
        for _ in range(clients)
    ]
    for w in workers:
        w.start()
    results = [queue.get(timeout=1800) for _ in workers]
    for w in workers:
        w.join()
    return clients * runs / max(r for r, _ in results), clients * metrics / max(
        m for _, m in results
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--metrics", type=int, default=200)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--compare-runs", type=int, default=1000)
    args = parser.parse_args()
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    from mlflow.tracking import MlflowClient
    from tests.e2e.conftest import TrackingServer, running_postgres, running_s3

    console = Console()
    table = Table(title=f"logging throughput ({args.runs} runs + {args.metrics} metric calls "
                        "per client)")  # fmt: skip
    for column in ("store", "clients", "runs/s", "metric calls/s"):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as tmp, running_postgres() as pg, running_s3() as s3:
        server = TrackingServer(pg.create_database("bench"), s3, Path(tmp), "bench").start()
        try:
            for clients in args.clients:
                sqlite = f"sqlite:///{tmp}/embedded-{clients}.db"
                for name, uri in (("SQLite embedded", sqlite), ("server (PostgreSQL)", server.url)):
                    client = MlflowClient(uri)
                    if client.get_experiment_by_name("throughput") is None:
                        client.create_experiment(
                            "throughput",
                            artifact_location=f"{tmp}/artifacts" if uri == sqlite else None,
                        )
                    runs_per_s, metrics_per_s = measure(uri, clients, args.runs, args.metrics)
                    table.add_row(name, str(clients), f"{runs_per_s:.2f}", f"{metrics_per_s:.1f}")
                    console.print(f"{name} x{clients}: {runs_per_s:.2f} runs/s", style="dim")
            listing = _listing_through_server(server.url, args.compare_runs)
            publish.show("tracking_throughput", table, listing, console=console)
        finally:
            server.stop()


def _listing_through_server(url: str, runs: int) -> Table:
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(url)
    experiment = client.create_experiment("compare-scale")
    client.create_registered_model("hotel-booking-cancellation")
    now = int(time.time() * 1000)
    for i in range(runs):
        run = client.create_run(experiment)
        if i % 10 == 0:  # a version for every tenth run: `innflow models` lists them
            client.create_model_version(
                "hotel-booking-cancellation", f"runs:/{run.info.run_id}/model", run.info.run_id
            )
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("test_roc_auc", 0.8 + i / (10 * runs), now, 0)]
            + [Metric(f"m{k}", float(k), now, 0) for k in range(39)],
            params=[Param(f"p{k}", str(k)) for k in range(60)],
            tags=[RunTag("innflow.kind", "train")] + [RunTag(f"t{k}", "x") for k in range(29)],
        )
        client.set_terminated(run.info.run_id, "FINISHED")
    env = {**os.environ, "MLFLOW_TRACKING_URI": url}
    innflow = str(Path(sys.executable).parent / "innflow")
    timings = Table(
        title=f"through the server: {runs} runs, {runs // 10} versions (process startup included)"
    )
    timings.add_column("command")
    timings.add_column("seconds", justify="right")
    timings.add_column("exit", justify="right")
    for argv in (["compare", "--experiment", "compare-scale", "--top", "5", "--json"],
                 ["models", "--json"], ["--version"]):  # fmt: skip
        began = time.perf_counter()
        done = subprocess.run([innflow, *argv], env=env, capture_output=True)
        seconds = f"{time.perf_counter() - began:.2f}"
        timings.add_row(f"innflow {' '.join(argv)}", seconds, str(done.returncode))
    return timings


if __name__ == "__main__":
    main()
