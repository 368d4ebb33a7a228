"""Runs left RUNNING by a process that died: the next run of the same host in the experiment
ends them as KILLED with the reason, and `innflow runs cleanup` does so for any experiment
(process gone on this host, or older than --older-than anywhere).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.integration.conftest import workdir  # noqa: F401

INNFLOW = str(Path(sys.executable).parent / "innflow")
EXPERIMENT = "e2e-orphans"


def _set(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def _killed_training(work, client: MlflowClient) -> str:
    """Start `innflow train`, SIGKILL it once its run is open; the run id it left RUNNING."""
    slow = [f"data.path={work.data}", "model.kind=random_forest",
            "model.params.n_estimators=400", f"tracking.experiment={EXPERIMENT}"]  # fmt: skip
    training = subprocess.Popen(
        [INNFLOW, "train", *_set(slow)], cwd=work.path, env=dict(os.environ),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    try:
        while True:
            assert training.poll() is None and time.monotonic() < deadline, "no run opened"
            found = client.get_experiment_by_name(EXPERIMENT)
            running = found and client.search_runs(
                [found.experiment_id],
                f"attributes.status = 'RUNNING' and tags.`innflow.pid` = '{training.pid}'",
            )
            if running:
                break
            time.sleep(0.2)
    finally:
        training.send_signal(signal.SIGKILL)
        training.wait(30)
    run_id = running[0].info.run_id
    assert client.get_run(run_id).info.status == "RUNNING"
    return run_id


def test_runs_left_running_by_a_dead_process_are_ended(workdir, cli) -> None:  # noqa: F811
    client = MlflowClient(workdir.store)
    first = _killed_training(workdir, client)

    # The next training in the experiment finds it and ends it.
    again = cli(
        "train", "--json", *_set(workdir.overrides("logreg", f"tracking.experiment={EXPERIMENT}"))
    )
    assert again.code == 0, again.stderr
    new_run = json.loads(again.stdout)["run_id"]
    ended = client.get_run(first)
    assert "longer than" not in ended.data.tags["innflow.error"]
    assert ended.info.status == "KILLED" and ended.info.end_time
    reason = ended.data.tags["innflow.error"]
    assert reason.startswith("orphaned: process ") and f"found by run {new_run}" in reason
    assert client.get_run(new_run).info.status == "FINISHED"
    assert client.get_run(new_run).data.tags["innflow.pid"] == str(os.getpid())

    # `runs cleanup`: a dead process on this host is ended; a live one, one whose pid now
    # belongs to a later process, and one of another host are judged as such.
    second = _killed_training(workdir, client)
    experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
    sleeper = subprocess.Popen(["sleep", "120"])
    try:
        host = os.uname().nodename
        live = client.create_run(experiment, tags={
            "innflow.host": host, "innflow.pid": str(sleeper.pid),
            "innflow.process_start": _started(sleeper.pid)}).info.run_id  # fmt: skip
        reused = client.create_run(experiment, tags={
            "innflow.host": host, "innflow.pid": str(sleeper.pid),
            "innflow.process_start": "1"}).info.run_id  # fmt: skip
        remote = client.create_run(experiment, tags={
            "innflow.host": "another-host", "innflow.pid": "1"}).info.run_id  # fmt: skip

        cleaned = cli("runs", "cleanup", "--json")
        assert cleaned.code == 0, cleaned.stderr
        assert {r["run_id"] for r in json.loads(cleaned.stdout)["ended"]} == {second, reused}
        assert client.get_run(second).info.status == "KILLED"
        assert client.get_run(reused).info.status == "KILLED"
        assert client.get_run(live).info.status == "RUNNING"
        assert client.get_run(remote).info.status == "RUNNING"

        time.sleep(1.2)
        preview = cli("runs", "cleanup", "--older-than", "1s", "--dry-run", "--json")
        assert {r["run_id"] for r in json.loads(preview.stdout)["ended"]} == {live, remote}
        assert client.get_run(remote).info.status == "RUNNING"
        aged = cli("runs", "cleanup", "--older-than", "1s", "--experiment", EXPERIMENT)
        assert aged.code == 0, aged.stderr
        assert "ended 2 run(s) as KILLED" in aged.stdout
        assert client.get_run(remote).info.status == "KILLED"
        assert client.get_run(live).info.status == "KILLED"
    finally:
        sleeper.kill()
        sleeper.wait()

    bad = cli("runs", "cleanup", "--older-than", "soon")
    assert bad.code == 2 and bad.stderr.startswith("error: --older-than 'soon'")
    missing = cli("runs", "cleanup", "--experiment", "no-such-experiment")
    assert missing.code == 2 and "no experiment named" in missing.stderr


def _started(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rpartition(")")[2].split()[19]


pytestmark = pytest.mark.slow
