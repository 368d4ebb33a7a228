"""innflow serve vs `mlflow models serve` on the same registered model, same client.

Trains and registers the default model in a temporary store, starts both servers on
loopback, and measures: start to first /ping, one booking per request (sequential p50/p99),
8 concurrent clients (requests/s, p99), batches of 1,000 bookings (rows/s, as
`dataframe_records` and `dataframe_split` JSON to both servers, and as an Arrow IPC stream
to innflow, which MLflow's server does not take), and the maximum absolute difference of
both servers' probabilities from in-process predict_proba.
All traffic goes to 127.0.0.1; every loop is bounded.

Before the servers start, `innflow compile` builds the model's compiled predictor into a
temporary cache (as a deployment would, e.g. when its image is built; needs a C compiler:
`apt-get install gcc`), so innflow serve and innflow score start with it; the table says
which predictor innflow answered with (compiled, or LightGBM's exact one) and the compile
time. Without a compiler everything still runs, on the exact path.

The one-booking latencies (one connection) and the 8-client load come from wrk (`apt-get
install wrk`) when it is installed: a C client that leaves the two cores to the server
(Python `requests` threads took 0.75 of a core for ~850 req/s here, and a sequential
Python client adds ~1.5 ms to every request, so they measured the client as much as the
server). The Python client's sequential latencies are printed too; without wrk they are
the table's. Batches of 1,000 are posted pre-encoded, one at a time, by wrk and by the
Python client (both printed: the Python client's own work is a third of a 1,000-booking
round trip to innflow). Both servers always get the same client.

The machine is shared and its speed moves between sessions (1.5-2x seen), so the script
also times one fixed piece of the servers' work (orjson parsing the split body) before and
after: compare figures across runs only with similar probes, and always against the
MLflow server of the same run.

The general path (models innflow did not train, served through mlflow.pyfunc) is measured
beside `mlflow models serve` on the same notebook-style model (tests/user_models.py's
raw-column scikit-learn Pipeline): one row p50 and batches of 1,000 rows. `--general-only`
runs just that part (no training of innflow's model, ~1 minute).

`--baseline-ref REF` instead compares two builds of innflow serve: the current tree and the
commit REF, checked out into a temporary git worktree and started from its src/ with this
environment (PYTHONPATH), both serving the same registered model with the same compiled
predictor, measured by wrk in alternating rounds: 1,000-booking batches as
`dataframe_split`, `dataframe_records` and `instances` bodies (rows/s, p50) and one booking
per request (p50), with both builds' predictions checked bit for bit against each other.

Run: uv run python benchmarks/serving.py [--requests 300] [--seconds 5] [--general-only]
     [--baseline-ref REF [--rounds 6]]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import publish  # benchmarks/publish.py: the table, printed and kept for the docs
import pyarrow as pa
import requests
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(command: list[str], env: dict, port: int) -> tuple[subprocess.Popen, float]:
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = started + 120
    while time.perf_counter() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                return process, time.perf_counter() - started
        except requests.RequestException:
            time.sleep(0.05)
        if process.poll() is not None:
            raise SystemExit(f"server exited: {process.stderr.read().decode()[-2000:]}")
    process.kill()
    raise SystemExit("server did not become ready in 120 s")


def _post(session: requests.Session, url: str, records: list[dict]) -> np.ndarray:
    response = session.post(url, json={"dataframe_records": records}, timeout=30)
    response.raise_for_status()
    return np.asarray(response.json()["predictions"], dtype=float)


# Each script ends with WRK_DONE, which prints one summary line for _run_wrk to read.
WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %d %d %d %f %f\\n", summary.requests,
           e.status + e.connect + e.read + e.write + e.timeout, summary.duration,
           latency:percentile(50), latency:percentile(99)))
end
"""

ONE_BOOKING_SCRIPT = """
local bodies = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"},
                    bodies[(i %% #bodies) + 1])
end
"""

BATCH_SCRIPT = """
local f = io.open(%s, "rb"); local body = f:read("*a"); f:close()
wrk.method = "POST"; wrk.body = body; wrk.headers["Content-Type"] = %s
"""


def _run_wrk(
    url: str, script: str, seconds: float, connections: int = 1
) -> tuple[float, float, float]:
    """Run wrk with a Lua script (on up to 2 threads): (requests/s, p50 ms, p99 ms)."""
    threads = min(2, connections)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "script.lua"
        path.write_text(script + WRK_DONE)
        done = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
             "-s", str(path), url],
            capture_output=True, text=True, check=True, timeout=seconds + 60,
        )  # fmt: skip
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRK "))
    count, errors, micros, p50, p99 = line.split()[1:]
    if int(errors):
        raise SystemExit(f"wrk saw {errors} failed requests against {url}")
    return int(count) / (int(micros) / 1e6), float(p50) / 1000, float(p99) / 1000


def _wrk_batch(url: str, body: bytes, content_type: str, seconds: float) -> float:
    """Batches posted one at a time by wrk (one connection): requests/s."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "body"
        path.write_bytes(body)
        script = BATCH_SCRIPT % (json.dumps(str(path)), json.dumps(content_type))
        return _run_wrk(url, script, seconds)[0]


def _machine_probe(body: bytes, repeats: int = 200) -> float:
    """Milliseconds of one fixed piece of the servers' own work (orjson parsing a
    1,000-booking body), median: this shared machine's speed moves by 1.5-2x between
    sessions, and every other figure with it.
    """
    import orjson

    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        orjson.loads(body)
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def _batch_bodies(test: pd.DataFrame) -> dict[str, tuple[bytes, str]]:
    """1,000 bookings in each format, encoded once (the client's encoding is not timed)."""
    part = test.iloc[:1000]
    sink = pa.BufferOutputStream()
    table = pa.Table.from_pandas(part, preserve_index=False)
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    split = json.loads(part.to_json(orient="split", index=False))
    return {
        "records": (
            json.dumps({"dataframe_records": json.loads(part.to_json(orient="records"))}).encode(),
            "application/json",
        ),
        "split": (json.dumps({"dataframe_split": split}).encode(), "application/json"),
        "arrow": (sink.getvalue().to_pybytes(), "application/vnd.apache.arrow.stream"),
    }


def _batches(
    url: str, bodies: dict[str, tuple[bytes, str]], seconds: float
) -> dict[str, dict[str, float]]:
    """Rows/s of 1,000-booking batches, one request at a time, per format and client."""
    session, found = requests.Session(), {}
    for name, (body, content_type) in bodies.items():
        headers = {"Content-Type": content_type}
        probe = session.post(url, data=body, headers=headers, timeout=60)
        if probe.status_code != 200:  # MLflow's server takes no Arrow
            continue
        count, started = 0, time.perf_counter()
        while count < 3 or time.perf_counter() - started < seconds / 2:
            session.post(url, data=body, headers=headers, timeout=60).raise_for_status()
            count += 1
        figures = {"python": count * 1000 / (time.perf_counter() - started)}
        if shutil.which("wrk"):
            figures["wrk"] = 1000 * _wrk_batch(url, body, content_type, seconds / 2)
        found[name] = figures
    return found


def _wrk(
    url: str, rows: list[dict], seconds: float, connections: int = 8
) -> tuple[float, float, float]:
    """One booking per request over ``connections``: (requests/s, p50 ms, p99 ms)."""
    bodies = ", ".join(json.dumps(json.dumps({"dataframe_records": [r]})) for r in rows[:200])
    return _run_wrk(url, ONE_BOOKING_SCRIPT % bodies, seconds, connections)


def _measure(url: str, rows: list[dict], n_requests: int, seconds: float) -> dict[str, float]:
    session = requests.Session()
    latencies = []
    for i in range(n_requests):
        t = time.perf_counter()
        _post(session, url, [rows[i % len(rows)]])
        latencies.append(time.perf_counter() - t)

    def client(index: int) -> list[float]:
        own, times, stop = requests.Session(), [], time.perf_counter() + seconds
        while time.perf_counter() < stop:
            t = time.perf_counter()
            _post(own, url, [rows[(index * 7 + len(times)) % len(rows)]])
            times.append(time.perf_counter() - t)
        return times

    python_p50 = 1000 * float(np.percentile(latencies, 50))
    python_p99 = 1000 * float(np.percentile(latencies, 99))
    p50, p99 = python_p50, python_p99
    if shutil.which("wrk"):
        _, p50, p99 = _wrk(url, rows, seconds, connections=1)
        rps_8, _, p99_8 = _wrk(url, rows, seconds)
    else:
        with ThreadPoolExecutor(8) as pool:
            concurrent = [t for times in pool.map(client, range(8)) for t in times]
        rps_8, p99_8 = len(concurrent) / seconds, 1000 * float(np.percentile(concurrent, 99))
    return {
        "p50_ms": p50,
        "p99_ms": p99,
        "python_p50_ms": python_p50,
        "python_p99_ms": python_p99,
        "rps_8": rps_8,
        "p99_8_ms": p99_8,
    }


def _score(
    bin_dir: str, env: dict, data: Path, target: str, uri: str, runs: int = 3
) -> tuple[list[float], dict]:
    """`innflow score` of the data set, each run a fresh process: (wall seconds of each run,
    the fastest run's --json). The first run may meet a cold page cache.
    """
    walls, outputs = [], []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [f"{bin_dir}/innflow", "score", str(data), target, "--model-uri", uri, "--json"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        walls.append(time.perf_counter() - started)
        outputs.append(json.loads(done.stdout))
    return walls, outputs[walls.index(min(walls))]


def _walls(walls: list[float]) -> str:
    return (
        f"{walls[0]:.2f} s wall on the first run, then "
        + ", ".join(f"{w:.2f}" for w in walls[1:])
        + " s"
    )


def _confirmed(port: int) -> float | None:
    """Seconds from ready until innflow's /health says the registry confirmed the model (it
    answers from its start-up snapshot meanwhile) and the logged model's compiled predictor
    is verified again; waited for before the load starts, so no start-up work is measured.
    """
    started = time.perf_counter()
    deadline = started + 120
    while time.perf_counter() < deadline:
        try:
            health = requests.get(f"http://127.0.0.1:{port}/health", timeout=5).json()
        except (ValueError, requests.RequestException):
            return None
        states = {p["state"] for p in health.get("predictors", {}).values()}
        if health.get("confirmed") and "compiling" not in states:
            return time.perf_counter() - started
        time.sleep(0.05)
    return None


def _predictor(port: int) -> str:
    """The predictor(s) innflow's /health names; MLflow's /health has none."""
    try:
        predictors = requests.get(f"http://127.0.0.1:{port}/health", timeout=5).json()
        return ",".join(p["state"] for p in predictors["predictors"].values())
    except (ValueError, KeyError, TypeError, AttributeError, requests.RequestException):
        return "pyfunc"


SCORE_ROUNDS = 4  # innflow score of each build in --baseline-ref
ROUNDS = 6  # the general path's figures: rounds alternating between the two servers


def _cpu_ms(pid: int) -> float:
    """CPU milliseconds a server process and its children (MLflow's starts uvicorn as one)
    have used (Linux /proc; NaN elsewhere): on a shared machine, where wall latency swings
    with other jobs, the work each server does per request is the comparable figure.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return float("nan")
    own = (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")
    return own + sum(_cpu_ms(int(child)) for child in children)


def _one_row_round(url: str, rows: list[dict], offset: int, count: int) -> list[float]:
    """Sequential one-row requests: their latencies in ms."""
    session, latencies = requests.Session(), []
    for i in range(offset, offset + count):
        started = time.perf_counter()
        _post(session, url, [rows[i % len(rows)]])
        latencies.append(1000 * (time.perf_counter() - started))
    return latencies


def _batch_round(url: str, body: bytes, content_type: str, seconds: float) -> tuple[int, float]:
    """1,000-row batches one at a time for about ``seconds``: (requests, seconds taken)."""
    session, count, started = requests.Session(), 0, time.perf_counter()
    while count < 2 or time.perf_counter() - started < seconds:
        response = session.post(url, data=body, headers={"Content-Type": content_type},
                                timeout=60)  # fmt: skip
        response.raise_for_status()
        count += 1
    return count, time.perf_counter() - started


def general_path(env: dict, n_requests: int, seconds: float) -> Table:
    """The general path of innflow serve vs `mlflow models serve` on one notebook model.

    Both servers run side by side and are measured in alternating rounds (a Python client,
    one request at a time): the shared machine's speed moves within a run, and
    measuring one server after the other measured the machine as much as the servers.
    The server CPU per one-row request is printed beside the wall latencies: it does
    not swing with other jobs on the machine.
    """
    import mlflow

    sys.path.insert(0, str(ROOT))
    from tests import user_models

    bookings = pd.read_parquet(ROOT / "data" / "hotel_bookings.parquet")
    run_id = user_models.raw_pipeline(bookings)
    version = mlflow.register_model(f"runs:/{run_id}/model", "notebook-model")
    mlflow.MlflowClient().set_registered_model_alias("notebook-model", "production",
                                                     version.version)  # fmt: skip
    uri = "models:/notebook-model@production"
    columns = user_models.NUMERIC + user_models.CATEGORICAL
    test = bookings[columns].iloc[-5000:].reset_index(drop=True)
    rows = json.loads(test.to_json(orient="records"))
    bodies = {k: v for k, v in _batch_bodies(test).items() if k != "arrow"}
    expected = mlflow.pyfunc.load_model(uri).predict(test.iloc[:1000])
    bin_dir = str(Path(sys.executable).parent)
    commands = {
        "mlflow models serve": lambda p: [
            f"{bin_dir}/mlflow", "models", "serve", "-m", uri, "--env-manager", "local",
            "-p", str(p), "-h", "127.0.0.1",
        ],
        "innflow serve (general path)": lambda p: [
            f"{bin_dir}/innflow", "serve", "--model-uri", uri, "--port", str(p)],
    }  # fmt: skip
    urls, processes = {}, []
    try:
        for name, command in commands.items():
            port = _free_port()
            processes.append(_start(command(port), env, port)[0])
            urls[name] = f"http://127.0.0.1:{port}/invocations"
        pids = dict(zip(urls, (process.pid for process in processes), strict=True))
        latencies: dict[str, list[float]] = {name: [] for name in urls}
        cpu = dict.fromkeys(urls, 0.0)
        batches = {name: {form: [0, 0.0] for form in bodies} for name in urls}
        for url in urls.values():  # warm-up: first requests import and allocate
            _one_row_round(url, rows, 0, 20)
            for body, content_type in bodies.values():
                _batch_round(url, body, content_type, 0)
        per_round = max(1, n_requests // ROUNDS)
        for index in range(ROUNDS):
            order = list(urls) if index % 2 == 0 else list(reversed(urls))
            for name in order:
                offset = index * per_round
                before = _cpu_ms(pids[name])
                latencies[name] += _one_row_round(urls[name], rows, offset, per_round)
                cpu[name] += _cpu_ms(pids[name]) - before
                for form, (body, content_type) in bodies.items():
                    count, took = _batch_round(urls[name], body, content_type,
                                               seconds / ROUNDS / 2)  # fmt: skip
                    batches[name][form][0] += count
                    batches[name][form][1] += took
        table = Table(title="general path: the same notebook-style model (raw-column sklearn "
                            f"Pipeline, 30 trees), both servers up, {ROUNDS} alternating "
                            "rounds, Python client")  # fmt: skip
        for title in ("server", "1 row server CPU ms", "1 row p50 ms", "1 row p99 ms",
                      "1,000 rows records rows/s",
                      "1,000 rows split rows/s", "max |diff| vs pyfunc", "predictor"):  # fmt: skip
            table.add_column(title, justify="left" if title == "server" else "right")
        for name, url in urls.items():
            got = _post(requests.Session(), url, rows[:1000])
            port = int(url.split(":")[2].split("/")[0])
            table.add_row(
                name, f"{cpu[name] / len(latencies[name]):.1f}",
                f"{np.percentile(latencies[name], 50):.1f}",
                f"{np.percentile(latencies[name], 99):.1f}",
                *[f"{1000 * batches[name][form][0] / batches[name][form][1]:,.0f}"
                  for form in ("records", "split")],
                f"{float(np.abs(got - expected).max()):.1e}", _predictor(port),
            )  # fmt: skip
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
    return table


def _registered_model(
    tmp: str, name: str = "hotel-booking-cancellation"
) -> tuple[str, str, pd.DataFrame]:
    """Train and register the default model as ``name`` in a store under ``tmp``, aliased
    production: its URI, its version and the test bookings.
    """
    from innflow import config
    from innflow.workflows.registry import move_alias, register
    from innflow.workflows.train import prepare, train

    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
    os.chdir(tmp)
    overrides = [f"data.path={ROOT / 'data' / 'hotel_bookings.parquet'}",
                 f"registry.model_name={name}"]  # fmt: skip
    cfg = config.load(None, overrides)
    version, _ = register(train(cfg).run_id, cfg)
    move_alias(cfg, version, "production", "bench", "benchmark", force=True)
    return f"models:/{name}@production", str(version), prepare(cfg).features("test")


def _reads_json(port: int) -> str:
    """How a started service reads JSON rows (its /health ``json_rows``), once settled:
    an older build loaded its compiled reader in the background.
    """
    deadline = time.perf_counter() + 120
    state = "unknown"
    while time.perf_counter() < deadline:
        state = (
            requests.get(f"http://127.0.0.1:{port}/health", timeout=5).json().get("json_rows", "-")
        )
        if state != "python (starting)":
            return state
        time.sleep(0.1)
    return state


def _batch_script(directory: str, body: bytes, content_type: str) -> str:
    """The wrk script posting ``body`` (written under ``directory``)."""
    path = Path(directory) / f"body-{abs(hash(body))}"
    path.write_bytes(body)
    return BATCH_SCRIPT % (json.dumps(str(path)), json.dumps(content_type))


def side_by_side(ref: str, rounds: int, seconds: float) -> None:
    """The current build of innflow serve beside the build at ``ref``, alternating rounds.

    Both run at once on the same model (one store, one compiled predictor in one cache),
    so a shared machine's changing speed falls on both alike; each round measures every
    figure of one build, then of the other, the order swapped every round. Beside wall
    figures, each server's CPU per request: it does not swing with other jobs.
    """
    if not shutil.which("wrk"):
        raise SystemExit("--baseline-ref needs wrk (apt-get install wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        baseline = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(baseline),
                        ref], check=True, capture_output=True)  # fmt: skip
        processes: list[subprocess.Popen] = []
        try:
            uri, _, test = _registered_model(tmp)
            test = test.reset_index(drop=True)
            bin_dir = str(Path(sys.executable).parent)
            # The baseline trains its own copy (a model pickles its classes' module paths,
            # which a restructuring moves): training is bit-identical, and the answers of
            # both builds are checked bit for bit below.
            registered = subprocess.run(
                [sys.executable, __file__, "--register-only", tmp],
                env={**os.environ, "PYTHONPATH": f"{baseline}/src"}, capture_output=True,
                text=True, check=False,
            )  # fmt: skip
            if registered.returncode:
                raise SystemExit(f"the baseline could not train: {registered.stderr[-2000:]}")
            baseline_uri = registered.stdout.strip().splitlines()[-1]
            env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                   "INNFLOW_CACHE_DIR": f"{tmp}/cache", "INNFLOW_COMPILE": "1"}  # fmt: skip
            label = subprocess.run(
                ["git", "-C", str(ROOT), "log", "-1", "--format=%h", ref],
                capture_output=True, text=True, check=True,
            ).stdout.strip()  # fmt: skip
            builds = {"current": env, f"baseline {label}": {**env, "PYTHONPATH": f"{baseline}/src"}}
            uris = dict(zip(builds, (uri, baseline_uri), strict=True))
            servers: dict[str, dict[str, Any]] = {}
            for name, build_env in builds.items():  # each builds what it needs (the trees: once)
                built = subprocess.run([f"{bin_dir}/innflow", "compile", "--model-uri", uris[name]],
                                       env=build_env, capture_output=True, text=True)  # fmt: skip
                if built.returncode:
                    raise SystemExit(f"{name}: innflow compile failed: {built.stderr.strip()}")
                port = _free_port()
                command = [f"{bin_dir}/innflow", "serve", "--model-uri", uris[name],
                           "--port", str(port)]  # fmt: skip
                processes.append(_start(command, build_env, port)[0])
                _confirmed(port)
                servers[name] = {"url": f"http://127.0.0.1:{port}/invocations",
                                 "pid": processes[-1].pid, "json": _reads_json(port),
                                 "predictor": _predictor(port)}  # fmt: skip
            bodies = {k: v for k, v in _batch_bodies(test).items() if k != "arrow"}
            records = json.loads(test.iloc[:1000].to_json(orient="records"))
            bodies["instances"] = (json.dumps({"instances": records}).encode(), "application/json")
            for form, (body, content_type) in bodies.items():  # the same answers, bit for bit
                answers = {
                    requests.post(server["url"], data=body, timeout=60,
                                  headers={"Content-Type": content_type}).content
                    for server in servers.values()
                }  # fmt: skip
                if len(answers) != 1:
                    raise SystemExit(f"the two builds answer a {form} body differently")
            rows = json.loads(test.to_json(orient="records"))
            scripts = {form: _batch_script(tmp, *body) for form, body in bodies.items()}
            figures: dict[str, dict[str, list[float]]] = {name: {} for name in builds}
            load_before = os.getloadavg()
            for index in range(rounds):
                order = list(builds) if index % 2 == 0 else list(reversed(builds))
                for name in order:
                    url, pid, measured = servers[name]["url"], servers[name]["pid"], figures[name]
                    runs = {
                        "one": lambda url=url: _wrk(url, rows, seconds, connections=1),
                        "eight": lambda url=url: _wrk(url, rows, seconds, connections=8),
                    }
                    runs.update({form: lambda url=url, script=script: _run_wrk(url, script, seconds)
                                 for form, script in scripts.items()})  # fmt: skip
                    for form, run in runs.items():
                        before = _cpu_ms(pid)
                        rps, p50, _ = run()
                        cpu = (_cpu_ms(pid) - before) / max(1.0, rps * max(1, round(seconds)))
                        measured.setdefault(f"{form} p50", []).append(p50)
                        measured.setdefault(f"{form} cpu", []).append(cpu)
                        if form == "eight":
                            measured.setdefault(f"{form} req/s", []).append(rps)
                        elif form != "one":
                            measured.setdefault(f"{form} rows/s", []).append(1000 * rps)
            data = ROOT / "data" / "hotel_bookings.parquet"
            for index in range(SCORE_ROUNDS):  # fresh processes, the order swapped each round
                order = list(builds) if index % 2 == 0 else list(reversed(builds))
                for name in order:
                    walls, _ = _score(bin_dir, builds[name], data, f"{tmp}/scored.parquet",
                                      uris[name], runs=1)  # fmt: skip
                    figures[name].setdefault("score s", []).extend(walls)
            load_after = os.getloadavg()
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(baseline)], check=False, capture_output=True)  # fmt: skip
    loads = " -> ".join(" / ".join(f"{x:.1f}" for x in load) for load in (load_before, load_after))
    table = Table(title=f"innflow serve, two builds side by side, {rounds} alternating rounds "
                        f"of {seconds:.0f} s per figure (wrk, one connection), medians over "
                        f"rounds; load (1/5/15 min) {loads}")  # fmt: skip
    forms = [*bodies, "one", "eight"]
    keys = [f"{form} {what}" for form in bodies for what in ("rows/s", "p50")]
    keys += ["one p50", "eight req/s", "eight p50", "score s"]
    keys += [f"{form} cpu" for form in forms]
    table.add_column("build")
    table.add_column("JSON rows, predictor")
    names = {"records": "dataframe_records", "split": "dataframe_split", "one": "1 row",
             "eight": "1 row, 8 clients", "score": "innflow score"}  # fmt: skip
    units = {"rows/s": "rows/s", "req/s": "req/s", "p50": "p50 ms",
             "cpu": "server CPU ms/request", "s": "wall s"}  # fmt: skip
    for key in keys:
        form, what = key.split(" ")
        unit = units[what]
        table.add_column(f"{names.get(form, form)} {unit}", justify="right")
    medians = {name: {k: float(np.median(v)) for k, v in measured.items()}
               for name, measured in figures.items()}  # fmt: skip

    def shown(key: str, value: float) -> str:
        return f"{value:,.0f}" if key.endswith(("rows/s", "req/s")) else f"{value:.2f}"

    for name, server in servers.items():
        table.add_row(name, f"{server['json'][:30]}, {server['predictor']}",
                      *[shown(k, medians[name][k]) for k in keys])  # fmt: skip
    current, old = (medians[name] for name in builds)
    table.add_row("current / baseline", "", *[f"{current[k] / old[k]:.2f}" for k in keys])
    notes = tuple(
        f"{name}, round by round: "
        + "; ".join(f"{k} " + " ".join(shown(k, v) for v in vs) for k, vs in figures[name].items())
        for name in builds
    )
    publish.show("serving_before_after", table, notes=notes, console=Console(width=250))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--general-only", action="store_true",
                        help="only the general path against mlflow models serve")  # fmt: skip
    parser.add_argument("--baseline-ref", metavar="REF",
                        help="compare innflow serve with the build at this git commit")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=6,
                        help="alternating rounds of --baseline-ref")  # fmt: skip
    parser.add_argument("--register-only", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.register_only:  # --baseline-ref's baseline build trains its copy of the model
        print(_registered_model(args.register_only, "hotel-booking-cancellation-baseline")[0])
        return
    if args.baseline_ref:
        side_by_side(args.baseline_ref, args.rounds, args.seconds)
        return
    if args.general_only:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
            os.chdir(tmp)
            bin_dir = str(Path(sys.executable).parent)
            env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
            Console(width=150).print(general_path(env, args.requests, args.seconds))
        return
    from innflow.serving.loading import load

    with tempfile.TemporaryDirectory() as tmp:
        uri, version, test = _registered_model(tmp)
        test = test.reset_index(drop=True)
        rows = json.loads(test.to_json(orient="records"))
        bodies = _batch_bodies(test)
        probe_before = _machine_probe(bodies["split"][0])
        expected = load(uri).pipeline.predict_proba(test)
        bin_dir = str(Path(sys.executable).parent)
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
               "INNFLOW_CACHE_DIR": f"{tmp}/cache", "INNFLOW_COMPILE": "1"}  # fmt: skip
        started = time.perf_counter()
        compiled = subprocess.run(
            [f"{bin_dir}/innflow", "compile", "--model-uri", uri, "--json"],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        compile_s = time.perf_counter() - started
        compile_state = json.loads(compiled.stdout)["state"] if compiled.stdout else "failed"
        servers = {
            "mlflow models serve": lambda p: [
                f"{bin_dir}/mlflow", "models", "serve", "-m", uri, "--env-manager", "local",
                "-p", str(p), "-h", "127.0.0.1",
            ],
            "innflow serve": lambda p: [f"{bin_dir}/innflow", "serve", "--model-uri", uri,
                                        "--port", str(p)],
        }  # fmt: skip
        results = {}
        for name, command in servers.items():
            port = _free_port()
            process, ready = _start(command(port), env, port)
            waited = _confirmed(port) if name == "innflow serve" else None
            confirmed_s = None if waited is None else ready + waited
            try:
                url = f"http://127.0.0.1:{port}/invocations"
                figures: dict[str, Any] = _measure(url, rows, args.requests, args.seconds)
                figures["batches"] = _batches(url, bodies, args.seconds)
                got = np.vstack(
                    [
                        _post(requests.Session(), url, rows[i : i + 2000])
                        for i in range(0, len(rows), 2000)
                    ]
                )
                figures["max_abs_diff"] = float(np.abs(got - expected).max())
                figures["ready_s"] = ready
                figures["confirmed_s"] = confirmed_s
                figures["predictor"] = _predictor(port)
                results[name] = figures
            finally:
                process.terminate()
                process.wait(timeout=30)
        data = ROOT / "data" / "hotel_bookings.parquet"
        score_wall, scored = _score(bin_dir, env, data, f"{tmp}/scored.parquet", uri)
        score_inner, score_model = scored["seconds"], scored.get("model_seconds", 0.0)
        score_predictor = scored.get("predictor", "-")
        # The same model pinned by its logged-model id: immutable, so its snapshot needs no
        # registry check (no MLflow import, no store) once `innflow compile` wrote it.
        from mlflow import MlflowClient

        pinned = MlflowClient().get_model_version("hotel-booking-cancellation", version).source
        subprocess.run([f"{bin_dir}/innflow", "compile", "--model-uri", pinned], env=env,
                       capture_output=True, check=True)  # fmt: skip
        pinned_wall, pinned_scored = _score(bin_dir, env, data, f"{tmp}/pinned.parquet", pinned)
        pinned_inner = pinned_scored["seconds"]
        general = general_path(env, args.requests, args.seconds)
    probe_after = _machine_probe(bodies["split"][0])
    busy = " / ".join(f"{x:.1f}" for x in os.getloadavg())  # 1, 5, 15 min: the machine is shared
    table = Table(title=f"serving: same model, same client, 127.0.0.1, 2 cores, load {busy}")
    columns = [
        ("ready_s", "start to /ping s", "{:.1f}"), ("p50_ms", "1 row p50 ms", "{:.1f}"),
        ("p99_ms", "1 row p99 ms", "{:.1f}"), ("rps_8", "8 clients req/s", "{:.0f}"),
        ("p99_8_ms", "8 clients p99 ms", "{:.0f}"),
        ("max_abs_diff", "max |diff| vs in-process", "{:.1e}"),
        ("predictor", "predictor", "{}"),
    ]  # fmt: skip
    table.add_column("server")
    for _, title, _ in columns:
        table.add_column(title, justify="right")
    for name, figures in results.items():
        table.add_row(name, *[fmt.format(figures[key]) for key, _, fmt in columns])
    batch = Table(title="batches of 1,000 bookings, one request at a time: rows/s")
    clients = ["wrk", "python"] if shutil.which("wrk") else ["python"]
    batch.add_column("server")
    for form in bodies:
        for client in clients:
            batch.add_column(f"{form} ({client})", justify="right")
    for name, figures in results.items():
        cells = [
            f"{figures['batches'][form][client]:,.0f}" if form in figures["batches"] else "-"
            for form in bodies
            for client in clients
        ]
        batch.add_row(name, *cells)
    notes: list[str] = []
    notes.append(
        "1 row and 8 clients: "
        + ("wrk (1 connection; 2 threads, 8 connections)" if shutil.which("wrk")
           else "Python requests (apt-get install wrk for a client that does not "
                "compete with the server for the 2 cores)")
    )  # fmt: skip
    for name, figures in results.items():
        notes.append(
            f"{name}, 1 row through a Python requests client: p50 "
            f"{figures['python_p50_ms']:.1f} ms, p99 {figures['python_p99_ms']:.1f} ms"
        )
    notes.append(
        f"innflow score, all 119,390 bookings, parquet in and out: {_walls(score_wall)} "
        f"(process start, imports, model load, read, validate, score, write); fastest run: "
        f"{score_inner:.2f} s from model load to written file, of which resolving and loading "
        f"the model {score_model:.2f} s and reading, validating, scoring and writing "
        f"{score_inner - score_model:.2f} s (predictor: {score_predictor})"
    )
    notes.append(
        f"innflow score with the model pinned as {pinned}: {_walls(pinned_wall)}; fastest "
        f"run {pinned_inner:.2f} s from model load to written file"
    )
    confirmed = results.get("innflow serve", {}).get("confirmed_s")
    if confirmed is not None:
        notes.append(
            f"innflow serve started from its snapshot; the registry confirmed it (logged "
            f"model loaded and its compiled predictor verified) {confirmed:.1f} s after start"
        )
    notes.append(f"innflow compile (build + verify, once per model): {compile_s:.1f} s, "
                  f"{compile_state}")  # fmt: skip
    notes.append(
        f"machine speed (orjson parse of the 1,000-booking split body, median of 200, one "
        f"core): {probe_before:.2f} ms before the servers ran, {probe_after:.2f} ms after; "
        f"figures from runs with different probes are not comparable"
    )

    publish.show("serving", table, batch, general, notes=tuple(notes),
                 console=Console(width=150))  # fmt: skip


if __name__ == "__main__":
    main()
