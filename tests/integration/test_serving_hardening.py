"""The scoring service under an attacker's requests and an operator's bad day: bodies
bounded while they are read, malformed admin credentials refused with a 401, and every
quiet failure (an unconfirmable snapshot, a failed reload, a broken prediction log) said
on stderr, on /health and in the metrics.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from innflow.serving import parsing
from innflow.serving.app import create_app
from innflow.serving.degradation import Degradation
from innflow.serving.limits import BodyBudget, bounded_body
from innflow.serving.metrics import ServiceMetrics
from innflow.serving.settings import ServiceSettings as Settings

ARROW = {"Content-Type": parsing.ARROW_STREAM}


def _records(frame: pd.DataFrame) -> dict:
    return {"dataframe_records": json.loads(frame.to_json(orient="records"))}


def _arrow(frame: pd.DataFrame) -> bytes:
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _chunked(body: bytes, size: int = 4096):
    """A body sent without Content-Length (httpx sends an iterator chunked)."""
    return (body[i : i + size] for i in range(0, len(body), size))


# --- bounded requests -------------------------------------------------------------------


def _stream_request(chunks: list[bytes], pulled: list[int]) -> Request:
    """A Starlette request whose body arrives in ``chunks`` (counted as they are pulled),
    with no Content-Length: what uvicorn hands over for a chunked body.
    """
    messages = iter(chunks)

    async def receive() -> dict:
        chunk = next(messages, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled.append(len(chunk))
        return {"type": "http.request", "body": chunk, "more_body": True}

    scope = {"type": "http", "method": "POST", "path": "/invocations", "headers": []}
    return Request(scope, receive)


def test_a_chunked_body_is_refused_as_soon_as_it_crosses_the_limit() -> None:
    pulled: list[int] = []
    request = _stream_request([b"x" * 1000] * 10_000, pulled)  # 10 MB offered

    async def read() -> None:
        async with bounded_body(request, 5_500, BodyBudget(10**9)):
            raise AssertionError("a body over the limit was read")

    with pytest.raises(parsing.RequestError) as refused:
        asyncio.run(read())
    assert refused.value.status == 413
    assert sum(pulled) == 6_000  # the chunk that crossed the limit, and nothing after it


def test_bodies_in_flight_are_capped_across_requests() -> None:
    budget = BodyBudget(3_000)

    async def both() -> None:
        first = _stream_request([b"a" * 1000] * 2, [])
        async with bounded_body(first, 5_000, budget) as body:
            assert len(body) == 2_000 and budget.held == 2_000
            second = _stream_request([b"b" * 1000] * 2, [])
            with pytest.raises(parsing.RequestError) as busy:
                async with bounded_body(second, 5_000, budget):
                    pass
            assert busy.value.status == 503 and busy.value.headers == {"Retry-After": "1"}
            assert budget.held == 2_000  # the refused body's bytes were given back
        assert budget.held == 0

    asyncio.run(both())


def test_chunked_bodies_over_the_limit_are_413_in_every_content_type(registered) -> None:
    model, bookings, _, _ = registered
    many = pd.concat([bookings] * 40, ignore_index=True)  # ~ 200 KB in each format
    bodies = {
        "application/json": json.dumps(_records(many)).encode(),
        "text/csv": many.to_csv(index=False).encode(),
        parsing.ARROW_STREAM: _arrow(many),
    }
    limit = min(map(len, bodies.values())) - 1
    with TestClient(create_app(model, Settings(max_body_bytes=limit))) as client:
        for kind, body in bodies.items():
            refused = client.post(
                "/invocations", content=_chunked(body), headers={"Content-Type": kind}
            )
            assert refused.status_code == 413, (kind, refused.text)
            assert refused.json() == {"error": f"body over {limit} bytes"}
            small = {
                "application/json": json.dumps(_records(bookings.head(3))).encode(),
                "text/csv": bookings.head(3).to_csv(index=False).encode(),
                parsing.ARROW_STREAM: _arrow(bookings.head(3)),
            }[kind]
            answered = client.post(
                "/invocations", content=_chunked(small, 100), headers={"Content-Type": kind}
            )
            assert answered.status_code == 200, (kind, answered.text)
        refused = client.post(
            "/invocations", content=bodies["text/csv"], headers={"Content-Type": "text/csv"}
        )
        assert refused.status_code == 413  # declared by Content-Length: refused before reading
        metrics = client.get("/metrics").text
        assert 'innflow_requests_total{endpoint="invocations",status="413"} 4.0' in metrics
        assert "innflow_request_body_bytes_in_flight 0.0" in metrics


def test_a_busy_service_answers_503_with_retry_after(registered) -> None:
    model, bookings, _, _ = registered
    body = json.dumps(_records(bookings.head(5))).encode()
    settings = Settings(max_body_bytes=200_000, max_inflight_bytes=len(body) - 1)
    with TestClient(create_app(model, settings)) as client:
        busy = client.post(
            "/invocations", content=body, headers={"Content-Type": "application/json"}
        )
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
        assert "retry" in busy.json()["error"]
        assert client.post("/invocations", json=_records(bookings.head(1))).status_code == 200


# --- admin token --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        b"Bearer \xff\xfe",
        b"\xff\xfe",
        b"Bearer",
        b"Bearer ",
        b"Basic czNjcmV0",
        b"s3cret",
        b"Bearer s3cret extra",
        b"Bearer s3cre",
        "Bearer s3cret\u00e9".encode(),
    ],
)
def test_a_malformed_or_wrong_authorization_header_is_a_401(registered, header: bytes) -> None:
    model = registered[0]
    client = TestClient(create_app(model, Settings(admin_token="s3cret")))
    refused = client.post("/admin/reload", headers={"Authorization": header})
    assert refused.status_code == 401, refused.text
    assert refused.json() == {"error": "wrong, missing or malformed bearer token"}
    assert refused.headers["WWW-Authenticate"] == "Bearer"


def test_two_authorization_headers_are_a_401_and_the_token_compares_as_bytes(registered) -> None:
    model = registered[0]
    client = TestClient(create_app(model, Settings(admin_token="päss-wörd")))
    twice = [("Authorization", "Bearer x"), ("Authorization", "Bearer y")]
    assert client.post("/admin/reload", headers=twice).status_code == 401
    right = "Bearer päss-wörd".encode()  # the token's UTF-8 bytes, as a client sends them
    answered = client.post("/admin/reload", headers={"Authorization": right})
    assert answered.status_code == 409  # authorized: this app has no source to reload from
    assert "without a model source" in answered.json()["error"]


@pytest.mark.parametrize("token", ["", " ", " \t\n"])
def test_an_empty_or_blank_admin_token_disables_the_endpoint(registered, token: str) -> None:
    model = registered[0]
    app = create_app(model, Settings(admin_token=token))
    assert app.state.notes == [
        "POST /admin/reload is disabled: the admin token is empty or whitespace"
    ]
    client = TestClient(app)
    for header in (f"Bearer {token}", "Bearer", "Bearer  "):
        assert client.post("/admin/reload", headers={"Authorization": header}).status_code == 403


def test_serve_reads_a_blank_token_as_disabled(registry, monkeypatch) -> None:
    from innflow.serving.settings import ServiceSettings as ServiceOptions
    from innflow.workflows.serve import build_app

    monkeypatch.setenv("INNFLOW_ADMIN_TOKEN", "   ")
    app, _ = build_app(ServiceOptions(reload_seconds=0))
    assert app.state.notes == [
        "POST /admin/reload is disabled: the admin token is empty or whitespace"
    ]
    refused = TestClient(app).post("/admin/reload", headers={"Authorization": "Bearer    "})
    assert refused.status_code == 403
    monkeypatch.setenv("INNFLOW_ADMIN_TOKEN", " s3cret ")  # surrounding blanks are not the token
    app, _ = build_app(ServiceOptions(reload_seconds=0))
    assert app.state.notes == []
    client = TestClient(app)
    assert (
        client.post("/admin/reload", headers={"Authorization": "Bearer s3cret"}).json()["outcome"]
        == "unchanged"
    )


# --- loud degradation ---------------------------------------------------------------------


def test_the_same_problem_is_said_once_a_minute_with_what_was_not_said() -> None:
    said: list[str] = []
    now = [0.0]
    metrics = ServiceMetrics()
    degradation = Degradation(metrics, said.append, clock=lambda: now[0])
    for second in range(0, 50, 10):
        now[0] = second
        degradation.report("reload", "registry down")
    degradation.report("prediction_log", "disk full")
    assert said == [
        "innflow serve: registry down",
        "innflow serve: disk full",
    ]
    now[0] = 61.0
    degradation.report("reload", "registry down")
    assert said[-1] == ("innflow serve: registry down (4 more like it in the last 61 s not shown)")
    degradation.report("reload", "registry down", asked=True)  # an operator's: said
    assert said[-1] == "innflow serve: registry down"
    degradation.report("reload", "another error")  # a different problem is said at once
    assert said[-1] == "innflow serve: another error"
    assert degradation.reasons() == {"reload": "another error", "prediction_log": "disk full"}
    degradation.clear("reload", "serving v3")
    degradation.clear("reload", "serving v3")  # said once
    assert said[-1] == "innflow serve: reload recovered: serving v3" and len(said) == 6
    assert degradation.reasons() == {"prediction_log": "disk full"}
    sample = metrics.registry.get_sample_value
    assert sample("innflow_degraded", {"kind": "reload"}) == 0
    assert sample("innflow_degraded", {"kind": "prediction_log"}) == 1
    assert sample("innflow_degradation_events_total", {"kind": "reload"}) == 8


def _health(client: TestClient, ready, seconds: float = 30) -> dict:
    import time

    deadline = time.monotonic() + seconds
    while not ready(health := client.get("/health").json()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return health


def test_a_broken_prediction_log_is_degraded_and_said(registered, tmp_path, capsys) -> None:
    model, bookings, _, _ = registered
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the log directory should be")
    app = create_app(model, Settings(prediction_log=blocker))
    with TestClient(app) as client:
        assert client.get("/health").json()["status"] == "ready"
        for _ in range(3):
            assert client.post("/invocations", json=_records(bookings.head(2))).status_code == 200
        health = _health(client, lambda h: h["status"] == "degraded")  # the writer flushes in 5 s
        assert health["status"] == "degraded"
        assert "cannot write to" in health["degraded"]["prediction_log"]
        assert client.post("/invocations", json=_records(bookings.head(2))).status_code == 200
        assert 'innflow_degraded{kind="prediction_log"} 1.0' in client.get("/metrics").text
    lines = [line for line in capsys.readouterr().err.splitlines() if "prediction log" in line]
    assert len(lines) == 1, lines  # the flush at stop failed too: rate-limited
    assert lines[0].startswith(f"innflow serve: prediction log: cannot write to {blocker}")


def test_an_unwritable_prediction_log_is_refused_at_start(registry, tmp_path, cli) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    done = cli("serve", "--prediction-log", str(blocker / "log"), "--port", "1")
    assert done.code == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"--prediction-log {blocker / 'log'}: cannot write there" in lines[0]
    assert "Traceback" not in done.stderr


def test_a_failed_reload_is_degraded_until_a_reload_succeeds(reloadable, capsys) -> None:
    http, registry, bookings, version = reloadable
    auth = {"Authorization": "Bearer s3cret"}
    broken = registry.create_model_version(
        "hotel-booking-cancellation", source="file:///nonexistent/model", run_id=None
    )
    registry.set_registered_model_alias("hotel-booking-cancellation", "production", broken.version)
    for _ in range(3):
        assert http.post("/admin/reload", headers=auth).status_code == 409
    health = http.get("/health").json()
    assert health["status"] == "degraded" and list(health["degraded"]) == ["reload"]
    assert health["degraded"]["reload"].startswith(
        f"reload failed, still serving production v{version}"
    )
    assert http.post("/invocations", json=_records(bookings.head(1))).status_code == 200
    assert 'innflow_degraded{kind="reload"} 1.0' in http.get("/metrics").text
    said = [line for line in capsys.readouterr().err.splitlines() if "innflow serve" in line]
    assert len(said) == 3  # an operator's own reload is always answered on stderr too
    assert said[0].startswith("innflow serve: reload failed")
    registry.set_registered_model_alias("hotel-booking-cancellation", "production", version)
    assert http.post("/admin/reload", headers=auth).json()["outcome"] == "unchanged"
    health = http.get("/health").json()
    assert health["status"] == "ready" and health["degraded"] == {}
    assert capsys.readouterr().err.strip() == (
        f"innflow serve: reload recovered: serving production v{version} as the registry has them"
    )


# --- a start-up snapshot whose registered model no longer loads ---------------------------

COPY = "hardening-copy"


@pytest.fixture
def corrupted_snapshot(registry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """A registered model (a copy of production's artifact) with a start-up snapshot,
    whose artifact is then corrupted: (model URI, bookings file, production model).
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    from innflow.serving.loading import load
    from innflow.workflows.score import score_file

    monkeypatch.setenv("INNFLOW_COMPILE", "1")
    monkeypatch.setenv("INNFLOW_CACHE_DIR", str(tmp_path / "cache"))
    production, bookings, version, _ = registry
    client = MlflowClient()
    source = client.get_model_version("hotel-booking-cancellation", version).source
    artifact = tmp_path / "artifact"
    shutil.copytree(mlflow.artifacts.download_artifacts(artifact_uri=source), artifact)
    client.create_registered_model(COPY)
    run_id = production.description["run_id"]
    copied = client.create_model_version(COPY, source=artifact.as_uri(), run_id=run_id)
    client.set_registered_model_alias(COPY, "production", copied.version)
    uri = f"models:/{COPY}@production"
    model = load(uri, compile="build")
    assert model.predictor["state"] == "compiled", model.predictor
    bookings_file = tmp_path / "bookings.parquet"
    bookings.to_parquet(bookings_file, index=False)
    sound = score_file(uri, bookings_file, tmp_path / "sound.parquet")
    assert (sound.origin, sound.source_checked, sound.source_error) == ("snapshot", True, None)
    weights = [p for p in artifact.rglob("*") if p.is_file() and p.suffix in (".skops", ".pkl")]
    assert weights, sorted(artifact.rglob("*"))
    for path in weights:
        path.write_bytes(b"\x00 corrupted \x00" * 64)
    yield uri, bookings_file, production
    client.delete_registered_model(COPY)  # the store is shared by the package's tests


@pytest.mark.needs_cc
def test_score_says_when_the_snapshot_s_registered_model_does_not_load(
    corrupted_snapshot, cli, tmp_path
) -> None:
    uri, bookings_file, _ = corrupted_snapshot
    done = cli(
        "score", str(bookings_file), str(tmp_path / "out.parquet"), "--model-uri", uri, "--json"
    )
    assert done.code == 0, done.stderr  # the scores stand: the registry confirmed this version
    reported = json.loads(done.stdout)
    assert reported["model_origin"] == "snapshot"
    assert "could not load model" in reported["source_error"]
    lines = [line for line in done.stderr.splitlines() if line.startswith("innflow score")]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(
        f"innflow score: warning: scored with the start-up snapshot of {uri}"
    )
    assert reported["source_error"] in lines[0]
    assert reported["source_checked"] is True
    fast = cli(
        "score", str(bookings_file), str(tmp_path / "fast.parquet"), "--model-uri", uri,
        "--json", "--no-check-source",
    )  # fmt: skip
    assert fast.code == 0, fast.stderr
    unchecked = json.loads(fast.stdout)
    assert unchecked["model_origin"] == "snapshot" and unchecked["source_checked"] is False
    assert unchecked["source_error"] is None and "innflow score" not in fast.stderr


@pytest.mark.needs_cc
def test_serve_from_a_snapshot_whose_model_does_not_load_is_degraded(
    corrupted_snapshot, capsys
) -> None:
    from innflow.serving.loading import RegistrySource

    _, _, production = corrupted_snapshot
    bookings = pd.read_parquet(corrupted_snapshot[1])
    source = RegistrySource(COPY, ["production=100"], [])
    router = source.start()
    assert router.live[0].model.origin == "snapshot"
    with TestClient(create_app(router, Settings(), source)) as http:
        health = _health(http, lambda h: h["last_reload"] is not None)
        assert health["status"] == "degraded" and not health["confirmed"]
        reason = health["degraded"]["confirmation"]
        assert reason.startswith("serving the start-up snapshot of production")
        assert "could not load model" in reason
        answer = http.post("/invocations", json=_records(bookings.head(3)))
        assert answer.status_code == 200  # still answering, from the snapshot
        assert (
            answer.json()["predictions"]
            == production.pipeline.predict_proba(bookings.head(3)).tolist()
        )
        assert 'innflow_degraded{kind="confirmation"} 1.0' in http.get("/metrics").text
    said = [line for line in capsys.readouterr().err.splitlines() if "innflow serve" in line]
    assert len(said) == 1 and said[0].startswith(
        "innflow serve: serving the start-up snapshot of production"
    )


# --- a real server under chunked bodies over the limit ------------------------------------

ATTACKERS = 6  # at once, each offering BODY_OFFERED bytes chunked
BODY_OFFERED = 60_000_000
PEAK_BOUND = 100_000_000  # the service's peak RSS may grow by at most this much


def _peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")


def _send_chunked(port: int, results: list) -> None:
    """POST a JSON body chunked until the server answers (or BODY_OFFERED is sent);
    append (status or None, bytes sent).
    """
    import select
    import socket

    chunk = b"[" + b"1," * 32_767 + b"1]"
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        sock.settimeout(2)
        while sent < BODY_OFFERED and not select.select([sock], [], [], 0)[0]:
            try:
                sock.sendall(framed)
            except (TimeoutError, OSError):  # the server stopped reading, or closed
                break
            sent += len(chunk)
        if sent >= BODY_OFFERED:  # the whole body was taken: end it
            sock.sendall(b"0\r\n\r\n")
        sock.settimeout(60)
        answer = b""
        try:
            while b"\r\n" not in answer:
                part = sock.recv(4096)
                if not part:
                    break
                answer += part
        except OSError:
            pass
    status = int(answer.split()[1]) if answer.startswith(b"HTTP/1.1 ") else None
    results.append((status, sent))


@pytest.mark.slow
def test_chunked_bodies_over_the_limit_keep_a_real_server_s_memory_bounded(
    registered, tmp_path
) -> None:
    import os
    import subprocess
    import sys
    import threading
    import urllib.request

    from tests.e2e.conftest import free_port, stop_group, wait_http

    _, bookings, version, path = registered
    port, log = free_port(), tmp_path / "serve.log"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{path / 'mlflow.db'}",
           "INNFLOW_ADMIN_TOKEN": " "}  # fmt: skip
    command = [str(Path(sys.executable).parent / "innflow"), "serve", "--port", str(port),
               "--reload-seconds", "0"]  # fmt: skip
    with log.open("wb") as sink:
        server = subprocess.Popen(
            command, env=env, cwd=path, stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    good = json.dumps(_records(bookings.head(5))).encode()

    def score() -> int:
        request = urllib.request.Request(
            f"{base}/invocations", data=good, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.headers["X-Model-Version"] == version
            return answer.status

    try:
        wait_http(f"{base}/ping", server, log)
        for _ in range(20):  # warm: the first requests allocate what every request reuses
            assert score() == 200
        before = _peak_rss(server.pid)
        results: list[tuple[int | None, int]] = []
        attackers = [
            threading.Thread(target=_send_chunked, args=(port, results)) for _ in range(ATTACKERS)
        ]
        for attacker in attackers:
            attacker.start()
        for attacker in attackers:
            attacker.join(120)
        grown = _peak_rss(server.pid) - before
        print(f"peak RSS {before / 1e6:.0f} MB before, +{grown / 1e6:.1f} MB after: {results}")
        assert grown < PEAK_BOUND, f"peak RSS grew by {grown / 1e6:.0f} MB"
        with urllib.request.urlopen(f"{base}/ping", timeout=10) as pong:
            assert pong.status == 200
        assert score() == 200  # still answering
        assert len(results) == ATTACKERS
        statuses = sorted(str(status) for status, _ in results)
        assert set(statuses) <= {"413", "503"}, (statuses, _tail(log))
        assert "413" in statuses
        assert max(sent for _, sent in results) < BODY_OFFERED  # stopped before the end
    finally:
        stop_group(server)
    said = log.read_text()
    assert "POST /admin/reload is disabled: the admin token is empty or whitespace" in said
    assert "Traceback" not in said


def _tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-20:])
