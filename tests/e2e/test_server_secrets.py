"""`innflow server` keeps the database password off every command line (which any local user
reads in `ps`) and removes its temp files (the basic-auth config) however it is stopped.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import S3_SECRETS, Postgres, free_port, stop_group, wait_http

pytestmark = pytest.mark.slow

INNFLOW = str(Path(sys.executable).parent / "innflow")


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from /proc's parent links."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT])
def test_no_password_in_any_command_line_and_no_temp_files_left(
    postgres: Postgres, s3, tmp_path: Path, stop_with: signal.Signals
) -> None:
    backend = postgres.create_database(f"mlflow_secrets_{stop_with.name.lower()}")
    temp = tmp_path / "tmp"
    temp.mkdir()
    port, log = free_port(), tmp_path / "server.log"
    env = {
        **os.environ, **S3_SECRETS, "MLFLOW_S3_ENDPOINT_URL": s3.endpoint, "TMPDIR": str(temp),
        "INNFLOW_BACKEND_STORE_URI": backend, "MLFLOW_AUTH_ADMIN_USERNAME": "admin",
        "MLFLOW_AUTH_ADMIN_PASSWORD": secrets.token_urlsafe(16),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
    }  # fmt: skip
    argv = [
        INNFLOW, "server", "--auth", "--artifacts-destination", f"s3://{s3.bucket}/secrets",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
    ]  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv, env=env, cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/health", process, log)
        below = _descendants(process.pid)
        lines = {pid: _cmdline(pid) for pid in [process.pid, *below]}
        assert any(" mlflow server" in line for line in lines.values()), lines
        assert any("uvicorn" in line for line in lines.values()), lines
        leaks = [line for line in lines.values() if postgres.password in line]
        assert leaks == []
        configs = list(temp.glob("innflow-server-*/basic_auth.ini"))
        assert len(configs) == 1 and configs[0].stat().st_mode & 0o777 == 0o600

        os.kill(process.pid, stop_with)  # the innflow process alone, as `kill` or systemd would
        process.wait(timeout=60)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in below) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [pid for pid in below if _alive(pid)] == []
        assert list(temp.glob("innflow-server-*")) == []  # (MLflow leaves its own lock file)
        assert "Traceback" not in log.read_text(errors="replace")
    finally:
        stop_group(process, signal.SIGKILL)
