"""The tracking server dies in the middle of a command, at every point of it: one line on
stderr, exit 2, and nothing half-written (no alias move without its record, no version of
an unfinished run).

The real server stays up; it is reached through a loopback relay that forwards until the
command's Nth request and then dies as a killed server does (open connections reset, new
ones refused). That makes "mid-command" exact and repeatable for every N, which killing
the server at a moment cannot (test_faults kills the real server mid-pipeline).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import SAMPLE
from tests.e2e.conftest import FAST, free_port

pytestmark = pytest.mark.slow

MODEL = "e2e-store-dies"
EXPERIMENT = "e2e-store-dies"
GATE = [
    "registry.gate.min_roc_auc=0.6", "registry.gate.slice_floor_roc_auc=0.4",
    "registry.gate.max_ece=0.5", "registry.gate.margin=1.0",
]  # fmt: skip
NAMES = [f"registry.model_name={MODEL}", f"tracking.experiment={EXPERIMENT}"]
INNFLOW = str(Path(sys.executable).parent / "innflow")
LINGER_0 = (1).to_bytes(4, "little") + (0).to_bytes(4, "little")  # close = reset


class DyingRelay:
    """Forwards loopback TCP to ``target`` until the ``dies_at``-th HTTP request, which it
    never delivers: then every connection is reset and the port refuses new ones.
    """

    def __init__(self, target: int, dies_at: int | None) -> None:
        self.target, self.dies_at = target, dies_at
        self.port, self.requests, self.dead = free_port(), 0, False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.dead:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, requests: bool) -> None:
        try:
            while data := source.recv(65536):
                if requests:
                    with self._lock:
                        self.requests += data.count(b" HTTP/1.1\r\n")
                        dying = self.dies_at is not None and self.requests >= self.dies_at
                    if dying:
                        self.die()
                        return
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def die(self) -> None:
        self.dead = True
        self._listener.close()
        with self._lock:
            for end in self._sockets:
                with contextlib.suppress(OSError):
                    end.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_0)
                    end.close()


def _set(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def _consistent(client: MlflowClient, settled: bool) -> None:
    """Every alias is where its last confirmed move put it, or (``settled`` False) a record
    of the move that put it there is pending; every registered version's run ended.
    """
    from innflow.tracking import AUDIT_EXPERIMENT

    audit = client.get_experiment_by_name(AUDIT_EXPERIMENT).experiment_id
    records = [r for r in client.search_runs([audit]) if r.data.tags["innflow.model_name"] == MODEL]
    records.sort(key=lambda r: r.data.tags["innflow.move.at"])

    def where(status: str) -> dict[str, str]:
        return {
            r.data.tags["innflow.move.alias"]: r.data.tags["innflow.move.to_version"]
            for r in records if r.info.status == status
        }  # fmt: skip

    aliases = dict(client.get_registered_model(MODEL).aliases)
    confirmed, pending = where("FINISHED"), where("RUNNING")
    for alias, version in aliases.items():
        explained = confirmed.get(alias) == version or (
            not settled and pending.get(alias) == version
        )
        assert explained, (alias, version, confirmed, pending)
    if settled:
        assert not pending, pending
    for version in client.search_model_versions(f"name = '{MODEL}'"):
        assert client.get_run(version.run_id).info.status == "FINISHED", version.version


def _innflow(url: str, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_TRACKING_URI": url}
    return subprocess.run(
        [INNFLOW, *argv], env=env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture
def data_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "bookings.parquet"
    shutil.copy(SAMPLE, data)
    monkeypatch.chdir(tmp_path)
    for name in ("MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                 "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    return data


def test_server_dies_at_every_point_of_a_command(tracking_server, data_file: Path) -> None:
    url, client = tracking_server.url, MlflowClient(tracking_server.url)
    train = _set([f"data.path={data_file}", "model.kind=logreg", *FAST["logreg"], *GATE, *NAMES])
    names = _set(NAMES)
    first = _innflow(url, "pipeline", "--json", *train)
    assert first.returncode == 0, first.stderr
    run_id = json.loads(first.stdout)["run_id"]
    assert _innflow(url, "promote", "1", "--approved-by", "ana", *names).returncode == 0
    second = _innflow(url, "pipeline", *train, "--set", "model.params.C=0.5")
    assert second.returncode == 0, second.stderr
    assert _innflow(url, "promote", "2", "--approved-by", "ana", *names).returncode == 0

    commands = {
        # Each attempt moves the alias somewhere else than the last did.
        "promote": lambda i: ["promote", str(1 + i % 2), "--to", "staging", "--force",
                              "--approved-by", "ana", *names],
        "rollback": lambda i: ["rollback", "--approved-by", "ana", *names],
        "register": lambda i: ["register", run_id, "--name", f"{MODEL}-copy", *names],
        "gate": lambda i: ["gate", "2", *train],
        "models": lambda i: ["models", *names],
        "history": lambda i: ["history", *names],
        "compare": lambda i: ["compare", run_id],
        "monitor": lambda i: ["monitor", "--batch", str(data_file),
                              "--model-uri", f"models:/{MODEL}@production"],
        "train": lambda i: ["train", *train],
        "pipeline": lambda i: ["pipeline", *train, "--set", f"model.params.C=0.{i + 1}"],
        "reproduce": lambda i: ["reproduce", run_id],
    }  # fmt: skip
    for name, argv in commands.items():
        relay = DyingRelay(tracking_server.port, None)
        whole = _innflow(relay.url, *argv(0))
        relay.die()
        assert whole.returncode in (0, 3, 4), f"{name}: {whole.stderr[-2000:]}"
        total = relay.requests
        if name in ("promote", "rollback"):
            points: list[int] = list(range(1, total + 1))
        elif name == "pipeline":  # the middle, and the staging move at its end
            points = sorted({total // 2, total - 4, total - 2, total})
        else:
            points = [max(1, total // 2)]
        for i, dies_at in enumerate(points, start=1):
            relay = DyingRelay(tracking_server.port, dies_at)
            result = _innflow(relay.url, *argv(i))
            relay.die()
            where = f"{name} (server dies at request {dies_at} of {total})"
            if result.returncode != 2:
                assert relay.requests < dies_at, f"{where}: {result.returncode}\n{result.stderr}"
                continue
            assert "Traceback" not in result.stderr, f"{where}:\n{result.stderr[-3000:]}"
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            assert lines[-1].startswith("error:") and "cannot be reached" in lines[-1], where
            assert sum(line.startswith("error:") for line in lines) == 1, (where, lines)
            _consistent(client, settled=False)

    # The next move settles what the dead server left pending.
    assert _innflow(url, "promote", "1", "--to", "staging", "--force", "--approved-by", "ana",
                    *names).returncode == 0  # fmt: skip
    _consistent(client, settled=True)
