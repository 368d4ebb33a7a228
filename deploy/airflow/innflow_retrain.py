"""Scheduled retraining on Airflow: monitor -> (on drift) train -> register -> gate ->
staging -> notify.

Every step is an ``innflow`` command (the same ones people run), so the DAG holds no model
logic and a failed task can be re-run by hand with the command in its log. Production is
never touched here: moving a staged version to production needs a person's approval
(``innflow promote VERSION --to production --approved-by ...``).

Settings come from Airflow Variables or the environment (Variables win):
``INNFLOW_BIN`` (default ``innflow``), ``INNFLOW_CONFIG`` (a YAML config, optional),
``INNFLOW_MONITOR_ARGS`` (what to monitor, default ``--log /var/lib/innflow/predictions``),
``INNFLOW_NOTIFY_URL`` (optional: the summary is POSTed there as JSON, e.g. a chat webhook).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import urllib.request
from datetime import datetime, timedelta
from typing import Any

from airflow.exceptions import AirflowException
from airflow.sdk import DAG, Variable, task

RETRAIN_ON = 4  # `innflow monitor` exit code: drift or decay crossed the thresholds
GATE_REFUSED = 3  # `innflow gate` exit code: the candidate did not pass


def _setting(name: str, default: str) -> str:
    return str(Variable.get(name, default=os.environ.get(name, default)))


def innflow(*args: str, ok: tuple[int, ...] = (0,)) -> tuple[int, dict[str, Any]]:
    """Run ``innflow ARGS --json``; return (exit code, JSON output). Any exit code not in
    ``ok`` fails the task with innflow's own one-line error.
    """
    command = [*shlex.split(_setting("INNFLOW_BIN", "innflow")), *args, "--json"]
    config = _setting("INNFLOW_CONFIG", "")
    if config:  # one file for every step: training settings and the monitoring thresholds
        command += ["--config", config]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    print("$", shlex.join(command), f"-> exit {done.returncode}")
    print(done.stderr[-4000:])
    if done.returncode not in ok:
        raise AirflowException(f"{shlex.join(command)} exited {done.returncode}: "
                               f"{done.stderr.strip()[-500:]}")  # fmt: skip
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}


with DAG(
    dag_id="innflow_retrain",
    description="Monitor the production model; retrain, gate and stage a challenger on drift",
    schedule="@weekly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=10)},
    tags=["innflow", "mlops"],
) as dag:

    @task.branch
    def monitor() -> str:
        """Drift or decay (exit 4) starts a retraining; healthy (exit 0) ends the run."""
        args = shlex.split(_setting("INNFLOW_MONITOR_ARGS", "--log /var/lib/innflow/predictions"))
        code, _ = innflow("monitor", *args, ok=(0, RETRAIN_ON))
        return "train" if code == RETRAIN_ON else "healthy"

    @task
    def healthy() -> str:
        """Nothing to do this time."""
        return "production model healthy: no retraining"

    @task
    def train() -> str:
        """A new challenger, trained on everything known now."""
        _, result = innflow("train")
        return str(result["run_id"])

    @task
    def register(run_id: str) -> str:
        """The challenger as a model version (idempotent on retries)."""
        _, result = innflow("register", run_id)
        return str(result["version"])

    @task.branch
    def gate(version: str) -> list[str]:
        """The champion/challenger gate decides whether the version may be staged."""
        code, _ = innflow("gate", version, ok=(0, GATE_REFUSED))
        return ["stage", "notify"] if code == 0 else ["notify"]

    @task
    def stage(version: str) -> str:
        """Point `staging` at the challenger; production waits for a person."""
        innflow("promote", version, "--to", "staging", "--approved-by", "airflow",
                "--reason", "scheduled retraining after drift")  # fmt: skip
        return f"version {version} passed the gate and is on staging; approve for production"

    @task(trigger_rule="none_failed_min_one_success")
    def notify(version: str) -> str:
        """Say what happened, in the log and (if configured) to a webhook."""
        message = f"innflow retraining: version {version} " + (
            "staged for approval" if _staged(version) else "refused by the gate"
        )
        url = _setting("INNFLOW_NOTIFY_URL", "")
        if url:
            body = json.dumps({"text": message}).encode()
            request = urllib.request.Request(
                url, data=body, headers={"Content-Type": "application/json"}
            )
            urllib.request.urlopen(request, timeout=10).close()
        print(message)
        return message

    def _staged(version: str) -> bool:
        _, result = innflow("models")
        rows = result.get("versions", [])
        return any(str(r.get("version")) == version
                   and "staging" in str(r.get("aliases", "")).split(",") for r in rows)  # fmt: skip

    checked = monitor()
    trained = train()
    checked >> [healthy(), trained]
    version = register(trained)
    staged, told = stage(version), notify(version)
    gate(version) >> [staged, told]
    staged >> told
