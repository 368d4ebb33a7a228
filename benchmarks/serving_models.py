"""Two models on one platform: the cancellation model and the nightly-rate (ADR) model,
each served by innflow serve and by `mlflow models serve`, all four servers up at once and
measured by wrk in alternating rounds: one booking per request (one connection: p50; eight:
requests/s) and 1,000 bookings as `dataframe_split` (rows/s). Both models are trained and
registered with their shipped configs (configs/default.yaml, configs/adr.yaml) on the
bundled data in a temporary store; the answers of both servers are checked against the
logged pipeline before timing.

The cancellation model answers on its fast path (compiled trees when `innflow compile`
has run; here LightGBM's own predictor, as no compile step is run); the ADR model on
another contract's fast path (serving/contract_path.py: lookup tables, then LightGBM).

Run: uv run python benchmarks/serving_models.py [--rounds 4] [--seconds 4]
Needs wrk (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import publish  # benchmarks/publish.py: the table, printed and kept for the docs
import requests
from rich.table import Table
from serving import _batch_bodies, _free_port, _post, _start, _wrk, _wrk_batch

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "cancellation": ("hotel-booking-cancellation", None),
    "nightly rate (ADR)": ("hotel-booking-adr", ROOT / "configs" / "adr.yaml"),
}


def _register(tmp: str) -> dict[str, tuple[str, pd.DataFrame, np.ndarray]]:
    """Train, register and alias each model: its URI, test inputs and logged answers."""
    from innflow import config
    from innflow.workflows.registry import move_alias, register
    from innflow.workflows.train import prepare, train

    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
    os.chdir(tmp)
    found = {}
    for label, (name, path) in MODELS.items():
        overrides = [f"data.path={ROOT / 'data' / 'hotel_bookings.parquet'}"]
        if path is not None:
            overrides.append(f"data.contract={ROOT / 'configs' / 'contracts' / 'adr.yaml'}")
        cfg = config.load(path, overrides)
        outcome = train(cfg)
        version, _ = register(outcome.run_id, cfg)
        move_alias(cfg, version, "production", "bench", "benchmark", force=True)
        test = prepare(cfg).features("test").reset_index(drop=True)
        import mlflow

        expected = np.asarray(mlflow.pyfunc.load_model(outcome.model_uri).predict(test[:1000]))
        found[label] = (f"models:/{name}@production", test, expected)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0, help="per figure and round")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("needs wrk (apt-get install wrk)")
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="innflow-bench-models-") as tmp:
        models = _register(tmp)
        # mlflow models serve starts uvicorn from the PATH
        env = {
            **os.environ,
            "INNFLOW_CACHE_DIR": f"{tmp}/cache",
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        servers: dict[tuple[str, str], str] = {}
        processes = []
        try:
            for label, (uri, test, expected) in models.items():
                for server in ("innflow serve", "mlflow models serve"):
                    port = _free_port()
                    command = (
                        [str(bin_dir / "innflow"), "serve", "--model-uri", uri,
                         "--port", str(port)]
                        if server == "innflow serve" else
                        [str(bin_dir / "mlflow"), "models", "serve", "-m", uri,
                         "--env-manager", "local", "-p", str(port), "-h", "127.0.0.1"]
                    )  # fmt: skip
                    processes.append(_start(command, env, port)[0])
                    url = f"http://127.0.0.1:{port}/invocations"
                    rows = json.loads(test[:1000].to_json(orient="records"))
                    got = _post(requests.Session(), url, rows)
                    if not np.allclose(got, expected.astype(float), rtol=0, atol=1e-9):
                        raise SystemExit(f"{server} answers {label} differently from its pyfunc")
                    servers[(label, server)] = url
            figures: dict[tuple[str, str], dict[str, list[float]]] = {
                key: {"p50": [], "rps8": [], "rows": []} for key in servers
            }
            for index in range(args.rounds):
                order = list(servers) if index % 2 == 0 else list(reversed(servers))
                for key in order:
                    url, (_, test, _) = servers[key], models[key[0]]
                    rows = json.loads(test[:200].to_json(orient="records"))
                    figures[key]["p50"].append(_wrk(url, rows, args.seconds, connections=1)[1])
                    figures[key]["rps8"].append(_wrk(url, rows, args.seconds)[0])
                    body, kind = _batch_bodies(test[:1000])["split"]
                    figures[key]["rows"].append(1000 * _wrk_batch(url, body, kind, args.seconds))
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)
    table = Table(title=f"two models, four servers up, {args.rounds} alternating rounds of "
                        f"{args.seconds:g} s per figure (wrk), medians")  # fmt: skip
    for title in ("model", "server", "1 row p50 ms", "1 row, 8 clients req/s",
                  "1,000 rows split rows/s", "innflow / mlflow (1 row p50)"):  # fmt: skip
        table.add_column(title, justify="left" if title in ("model", "server") else "right")
    for (label, server), found in figures.items():
        p50 = float(np.median(found["p50"]))
        mlflow_p50 = float(np.median(figures[(label, "mlflow models serve")]["p50"]))
        table.add_row(
            label, server, f"{p50:.2f}", f"{np.median(found['rps8']):,.0f}",
            f"{np.median(found['rows']):,.0f}",
            f"{p50 / mlflow_p50:.3f}" if server == "innflow serve" else "",
        )  # fmt: skip
    publish.show("serving_models", table)


if __name__ == "__main__":
    main()
