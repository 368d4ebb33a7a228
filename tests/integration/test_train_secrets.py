"""A training run on a checkout whose uncommitted change holds a secret logs the change
redacted, says so in a tag, and never logs a credential file.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from innflow.reproducibility import provenance

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def test_train_logs_the_diff_redacted_and_tags_the_file(workdir, cli, tmp_path, monkeypatch):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    _git(checkout, "init", "-q")
    _git(checkout, "config", "user.email", "t@example.com")
    _git(checkout, "config", "user.name", "t")
    (checkout / "run.sh").write_text("innflow train\n")
    (checkout / "features.py").write_text("LAGS = 1\n")
    _git(checkout, "add", ".")
    _git(checkout, "commit", "-q", "-m", "start")
    (checkout / "run.sh").write_text(f"export AWS_SECRET_ACCESS_KEY={AWS_SECRET}\ninnflow train\n")
    (checkout / "features.py").write_text("LAGS = 2\n")
    (checkout / ".env").write_text("MLFLOW_TRACKING_PASSWORD=hunter2-hunter2\n")
    monkeypatch.setattr(provenance, "source_root", lambda: checkout)

    result = cli("train", "--json", *[a for o in workdir.overrides("logreg") for a in ("--set", o)])
    assert result.code == 0, result.stderr
    run = MlflowClient(workdir.store).get_run(json.loads(result.stdout)["run_id"])
    assert run.data.tags["innflow.diff_redacted"] == "run.sh"
    logged = Path(
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="code/uncommitted.diff", dst_path=str(tmp_path)
        )
    ).read_text()
    assert AWS_SECRET not in logged and "hunter2" not in logged and ".env" not in logged
    assert "+LAGS = 2" in logged  # a clean file is logged as it is
    assert "# innflow redacted this file's changes: " in logged
