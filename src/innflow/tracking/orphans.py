"""Runs left RUNNING by a process that died before it could end them (a tracking server
that was down when the run failed, SIGKILL, an out-of-memory kill, a lost host).

Every run innflow opens is tagged with the host and process that own it. A run whose
host is this one and whose process no longer exists can never end by itself: it is marked
KILLED with the reason. A run owned by another host cannot be judged from here; only an
age limit (`innflow runs cleanup --older-than`) ends those.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from innflow.errors import RunNotFoundError

HOST_TAG = "innflow.host"
PID_TAG = "innflow.pid"
# The process's start time (clock ticks since boot): a pid reused by a later process is
# then not taken for the run's owner.
PROCESS_START_TAG = "innflow.process_start"
REASON_TAG = "innflow.error"
MOVE_TAG = "innflow.move.alias"


def process_tags() -> dict[str, str]:
    """The tags naming the process that owns a run being opened here."""
    pid = os.getpid()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), PROCESS_START_TAG: _started(pid)}


def _started(pid: int) -> str:
    """A process's start time from /proc (Linux); empty where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return ""


def owner_gone(tags: dict[str, str]) -> bool:
    """True when the run's owning process was on this host and exists no more; False when
    it is alive, or when this host cannot tell (another host, no tags).
    """
    pid = tags.get(PID_TAG, "")
    if tags.get(HOST_TAG) != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # exists, owned by another user
    recorded, now = tags.get(PROCESS_START_TAG, ""), _started(int(pid))
    return bool(recorded and now) and recorded != now


def orphan_reason(
    tags: dict[str, str], start_ms: int, now_ms: int, older_than_seconds: float | None
) -> str | None:
    """Why a RUNNING run can be ended, or None when it may still be going."""
    if owner_gone(tags):
        return f"process {tags[PID_TAG]} on {tags[HOST_TAG]} ended without ending the run"
    age = (now_ms - start_ms) / 1000
    if older_than_seconds is not None and age > older_than_seconds:
        limit = _duration(older_than_seconds)
        return f"RUNNING for {_duration(age)}, longer than the limit of {limit}"
    return None


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def experiment_ids(names: list[str]) -> list[str]:
    """The ids of named experiments; a one-line error for a name that does not exist."""
    import mlflow

    found = []
    for name in names:
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            raise RunNotFoundError(f"no experiment named {name!r} in {mlflow.get_tracking_uri()}")
        found.append(experiment.experiment_id)
    return found


def end_orphans(
    experiment_ids: list[str] | None,
    older_than_seconds: float | None = None,
    ended_by: str = "innflow runs cleanup",
    dry_run: bool = False,
) -> list[dict[str, Any]]:
    """Mark KILLED every RUNNING run of these experiments (all when None) whose owner is
    gone or, with ``older_than_seconds``, that started longer ago; return what was ended.

    Only this host's runs can be judged by their process, so without an age limit the
    search asks for them alone.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    conditions = ["attributes.status = 'RUNNING'"]
    if older_than_seconds is None:
        conditions.append(f"tags.`{HOST_TAG}` = '{socket.gethostname()}'")
    runs = mlflow.search_runs(
        experiment_ids=experiment_ids or None,
        search_all_experiments=experiment_ids is None,
        filter_string=" and ".join(conditions),
        order_by=["attributes.start_time ASC"],
        output_format="list",
    )
    client, now, ended = MlflowClient(), int(time.time() * 1000), []
    for found in runs:
        if MOVE_TAG in found.data.tags:
            continue  # a pending alias-move record: settled by the registry, which checks the alias
        reason = orphan_reason(found.data.tags, found.info.start_time, now, older_than_seconds)
        if reason is None:
            continue
        if not dry_run:
            client.set_tag(found.info.run_id, REASON_TAG, f"orphaned: {reason} ({ended_by})")
            client.set_terminated(found.info.run_id, "KILLED", end_time=now)
        ended.append(
            {
                "run_id": found.info.run_id,
                "experiment_id": found.info.experiment_id,
                "run_name": found.info.run_name or "",
                "started": found.info.start_time,
                "host": found.data.tags.get(HOST_TAG, ""),
                "reason": reason,
            }
        )
    return ended
