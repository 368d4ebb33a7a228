"""The scale path for tuning: `innflow tune` workers sharing one Optuna study on the team's
PostgreSQL, each recording its search on the central tracking server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow

INNFLOW = str(Path(sys.executable).parent / "innflow")
SMALL_SPACE = [
    "tuning.search_space={n_estimators: {type: int, low: 20, high: 60}, "
    "num_leaves: {type: int, low: 4, high: 32, log: true}, "
    "learning_rate: {type: float, low: 0.05, high: 0.2}}",
    "tuning.report_every=10",
    "tuning.pruning=false",
    "tracking.experiment=e2e-tune",
]


def test_two_tune_workers_share_a_postgresql_study(team_workdir, postgres) -> None:
    storage = postgres.create_database("optuna")
    sets = [a for o in team_workdir.overrides("lightgbm", *SMALL_SPACE) for a in ("--set", o)]
    argv = [INNFLOW, "tune", "--trials", "2", "--storage", storage, "--study", "shared",
            "--json", "--threads", "1", *sets]  # fmt: skip
    workers = [
        subprocess.Popen(argv, env=dict(os.environ), cwd=team_workdir.path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    outputs = [w.communicate(timeout=900) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [o[1][-2000:] for o in outputs]
    reports = [json.loads(stdout) for stdout, _ in outputs]

    study = optuna.load_study(study_name="shared", storage=storage)
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(study.trials) == 4 and len(finished) == 4
    # Seeded per worker: the two workers did not draw the same configurations.
    assert len({tuple(sorted(t.params.items())) for t in finished}) == 4
    # Both workers see the whole study's best at the end of their own search or later.
    assert max(r["best_value"] for r in reports) == pytest.approx(study.best_value)

    client = MlflowClient(team_workdir.store)
    for report in reports:
        parent = client.get_run(report["parent_run_id"])
        assert parent.info.status == "FINISHED"
        children = client.search_runs(
            [parent.info.experiment_id],
            filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
        )
        assert len(children) >= 2 and {c.info.status for c in children} == {"FINISHED"}
