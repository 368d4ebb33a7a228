"""Several innflow processes on one embedded SQLite store.

What broke: processes that open a *new* store at the same moment all run MLflow's schema
migrations together; the losers died with tracebacks and left the store half-migrated
(`table _alembic_tmp_tags already exists`) for every later command. Writers on an existing
store are fine (MLflow's SQLite sessions wait up to 20 s for the write lock).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

INNFLOW = str(Path(sys.executable).parent / "innflow")


@pytest.mark.slow
def test_processes_opening_a_new_store_together_leave_it_usable(workdir) -> None:
    env = {**os.environ, "MLFLOW_TRACKING_URI": workdir.store}
    processes = [
        subprocess.Popen([INNFLOW, "history", "--json"], env=env, cwd=workdir.path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]  # fmt: skip
    results = [(p.wait(120), *p.communicate()) for p in processes]
    assert [code for code, _, _ in results] == [0] * 4, [err[-400:] for _, _, err in results]
    assert all(json.loads(stdout)["moves"] == [] for _, stdout, _ in results)
    assert not any("Traceback" in err for _, _, err in results)
    client = MlflowClient(workdir.store)
    client.create_experiment("after-the-race")
    assert client.get_experiment_by_name("after-the-race") is not None


def test_a_broken_store_is_one_line_and_exit_2(workdir, cli) -> None:
    (workdir.path / "mlflow.db").write_bytes(b"this is not an SQLite database" * 100)
    result = cli("history")
    assert result.code == 2
    assert "cannot be opened" in result.stderr and "Traceback" not in result.stderr
