"""Real servers started by the tests: PostgreSQL 15 (initdb + pg_ctl in a temp dir, as a
non-root user), an S3 endpoint (moto's server), and `innflow server` (= `mlflow server`)
over both. Clients get only MLFLOW_TRACKING_URI (and credentials), never the S3 secrets.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import SAMPLE
from tests.integration.conftest import FAST, Workdir, _no_stray_runs, cli  # noqa: F401

BIN = Path(sys.executable).parent
BUCKET = "innflow-artifacts"
S3_SECRETS = {
    "AWS_ACCESS_KEY_ID": "innflow-test-key",
    "AWS_SECRET_ACCESS_KEY": "innflow-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    """A loopback port the OS says is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, process: subprocess.Popen, log: Path, seconds: float = 120) -> None:
    """Wait until ``url`` answers 200; fail with the log's tail if the process dies."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[:3]} exited {process.returncode}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not up after {seconds}s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


def stop_group(process: subprocess.Popen, sig: int = signal.SIGTERM, grace: float = 15) -> None:
    """Stop a process started in its own session, and everything it spawned."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
            process.wait(grace)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(grace)
    else:  # the leader is gone, its workers may not be
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


@dataclass
class Postgres:
    """A PostgreSQL 15 cluster on loopback, password authentication."""

    port: int
    user: str = "innflow"
    password: str = "innflow-pg-secret"

    def uri(self, database: str) -> str:
        return f"postgresql+psycopg2://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg2

        connection = psycopg2.connect(self.uri("postgres").replace("+psycopg2", ""))
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return self.uri(name)


def _as_postgres_user(root: Path) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the `postgres` system user then."""
    if os.geteuid() != 0:
        return []
    account = pwd.getpwnam(os.environ.get("INNFLOW_TEST_PG_USER", "postgres"))
    for path in (root, *root.rglob("*")):
        os.chown(path, account.pw_uid, account.pw_gid)
    return ["runuser", "-u", account.pw_name, "--"]


@contextmanager
def running_postgres() -> Iterator[Postgres]:
    """initdb + pg_ctl into a temp dir on a free loopback port; removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="innflow-pg-"))
    server = Postgres(free_port())
    (root / "pwfile").write_text(server.password + "\n")
    as_user = _as_postgres_user(root)
    data, log = root / "data", root / "postgres.log"
    subprocess.run(
        [*as_user, "initdb", "-D", str(data), "-U", server.user, "--auth=scram-sha-256",
         f"--pwfile={root / 'pwfile'}", "-E", "UTF8", "--no-sync"],
        check=True, capture_output=True,
    )  # fmt: skip
    options = (
        f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    subprocess.run(
        [*as_user, "pg_ctl", "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options,
         "start"],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield server
    finally:
        subprocess.run(
            [*as_user, "pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not on PATH")
    with running_postgres() as server:
        yield server


@dataclass
class S3:
    """moto's S3 server on loopback with one bucket."""

    endpoint: str
    bucket: str = BUCKET

    def client(self):
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=S3_SECRETS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_SECRETS["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1",
        )  # fmt: skip

    def keys(self, prefix: str = "") -> list[str]:
        pages = (
            self.client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=prefix)
        )
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


@contextmanager
def running_s3() -> Iterator[S3]:
    """moto's S3 server on a free loopback port, with the bucket created."""
    root = Path(tempfile.mkdtemp(prefix="innflow-s3-"))
    port, log = free_port(), root / "moto.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        endpoint = f"http://127.0.0.1:{port}"
        wait_http(f"{endpoint}/moto-api/", process, log, seconds=60)
        store = S3(endpoint)
        store.client().create_bucket(Bucket=store.bucket)
        yield store
    finally:
        stop_group(process)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def s3() -> Iterator[S3]:
    with running_s3() as store:
        yield store


@dataclass
class TrackingServer:
    """`innflow server` over a PostgreSQL database and the S3 bucket, in its own session."""

    backend: str
    s3: S3
    root: Path
    prefix: str
    auth: bool = False
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.root / f"server-{self.port}.log"

    def start(self) -> TrackingServer:
        env = {
            **os.environ, **S3_SECRETS, **self.extra_env,
            "MLFLOW_S3_ENDPOINT_URL": self.s3.endpoint,
        }  # fmt: skip
        argv = [
            str(BIN / "innflow"), "server", "--backend-store-uri", self.backend,
            "--artifacts-destination", f"s3://{self.s3.bucket}/{self.prefix}",
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "2",
        ]  # fmt: skip
        if self.auth:
            argv.append("--auth")
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                argv, env=env, cwd=self.root, stdout=sink, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        wait_http(f"{self.url}/health", self.process, self.log)
        return self

    def kill(self) -> None:
        """Die abruptly, as a crashed host would."""
        assert self.process is not None
        stop_group(self.process, signal.SIGKILL)

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process, grace=5)  # its workers can take 15 s to drain


def _client_environment(monkeypatch: pytest.MonkeyPatch, server: TrackingServer) -> None:
    """What a team member sets: the server's URL. No S3 endpoint, no cloud credentials."""
    for name in (*S3_SECRETS, "MLFLOW_S3_ENDPOINT_URL", "MLFLOW_TRACKING_USERNAME",
                 "MLFLOW_TRACKING_PASSWORD"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)


@pytest.fixture(scope="session")
def tracking_server(postgres: Postgres, s3: S3) -> Iterator[TrackingServer]:
    """One shared server (no auth) for the tests that only need a working team setup."""
    root = Path(tempfile.mkdtemp(prefix="innflow-mlflow-"))
    server = TrackingServer(postgres.create_database("mlflow_shared"), s3, root, "shared")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def server_factory(postgres: Postgres, s3: S3, tmp_path: Path) -> Iterator:
    """Start a server of one's own (auth on, or one to kill) on a fresh database."""
    started: list[TrackingServer] = []

    def start(name: str, auth: bool = False, **env: str) -> TrackingServer:
        server = TrackingServer(
            postgres.create_database(name), s3, tmp_path, name, auth=auth, extra_env=env
        )
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def team_workdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tracking_server: TrackingServer
) -> Workdir:
    """A fresh directory with the sample data, pointed at the shared tracking server only."""
    data = tmp_path / "data" / "bookings.parquet"
    data.parent.mkdir()
    shutil.copy(SAMPLE, data)
    monkeypatch.chdir(tmp_path)
    _client_environment(monkeypatch, tracking_server)
    return Workdir(tmp_path, data, tracking_server.url)


def point_at(monkeypatch: pytest.MonkeyPatch, server: TrackingServer, tmp_path: Path) -> Workdir:
    """Like team_workdir, for a server of one's own."""
    data = tmp_path / "data" / "bookings.parquet"
    data.parent.mkdir(exist_ok=True)
    shutil.copy(SAMPLE, data)
    monkeypatch.chdir(tmp_path)
    _client_environment(monkeypatch, server)
    return Workdir(tmp_path, data, server.url)


__all__ = [
    "FAST", "S3", "Postgres", "TrackingServer", "free_port", "point_at", "running_postgres",
    "running_s3", "stop_group", "wait_http",
]  # fmt: skip
