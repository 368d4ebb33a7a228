"""innflow in a DVC project, driven by the real `dvc`: examples/dvc's dvc.yaml and params.yaml
in a fresh git + DVC repository with a local remote, the way a team adds innflow to theirs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from tests.conftest import SAMPLE

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dvc"
BIN = Path(sys.executable).parent
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (BIN / "dvc").exists(), reason="dvc is not installed (dev group)"),
]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dvc-project")
    for name in ("dvc.yaml", "params.yaml", ".gitignore"):
        shutil.copy(EXAMPLE / name, root / name)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["registry"]["gate"] = {"max_ece": 0.12}  # the 8,000-booking sample calibrates worse
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / "data").mkdir()
    shutil.copy(SAMPLE, root / "data" / "hotel_bookings.parquet")
    for command in (
        ["git", "init", "-q"],
        ["git", "config", "user.email", "ds@example.com"],
        ["git", "config", "user.name", "A data scientist"],
        ["dvc", "init", "-q"],
        ["dvc", "config", "core.analytics", "false"],
        ["dvc", "remote", "add", "-d", "local", str(_remote(root))],
        ["dvc", "add", "-q", "data/hotel_bookings.parquet"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "innflow's stages"],
    ):
        _run(root, *command)
    return root


def _remote(root: Path) -> Path:
    return root.parent / f"{root.name}-remote"


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    return env | {
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(root.parent / f"{root.name}-site-cache"),
    }


def _run(root: Path, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        command, cwd=root, env=_env(root), capture_output=True, text=True, timeout=600
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done


def _runs(root: Path) -> list:
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    return mlflow.search_runs(
        experiment_names=["hotel-cancellation"],
        filter_string="tags.`innflow.kind` = 'train'",
        order_by=["attributes.start_time ASC"],
        output_format="list",
    )


def _tracked_md5(root: Path) -> str:
    return yaml.safe_load((root / "data" / "hotel_bookings.parquet.dvc").read_text())["outs"][0][
        "md5"
    ]


def test_dvc_runs_innflow_stages_and_each_experiment_is_a_tagged_mlflow_run(project: Path) -> None:
    # dvc repro from clean: check, train and register (gate + staging) all run
    done = _run(project, "dvc", "repro")
    for stage in ("check", "train", "register"):
        assert f"Running stage '{stage}'" in done.stdout
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert set(lock["stages"]) == {"check", "train", "register"}
    (first,) = _runs(project)
    tags = first.data.tags
    assert tags["innflow.dvc.data_md5"] == _tracked_md5(project)
    assert tags["innflow.dvc.data_source"] == "data/hotel_bookings.parquet.dvc"
    assert tags["innflow.dvc.stage"] == "train"
    assert "innflow.dvc.experiment" not in tags  # dvc repro is no experiment
    release = json.loads((project / "reports" / "register" / "release.json").read_text())
    assert release["run_id"] == first.info.run_id and release["staged"] is True
    version = mlflow.MlflowClient().get_model_version_by_alias(release["name"], "staging")
    assert str(version.version) == str(release["version"])
    assert version.tags["innflow.dvc.data_md5"] == _tracked_md5(project)

    # what DVC reads: metrics, plots, and the outputs it caches and pushes
    metrics = json.loads(_run(project, "dvc", "metrics", "show", "--json").stdout)
    shown = metrics[""]["data"]["reports/train/metrics.json"]["data"]
    assert shown["test_roc_auc"] == pytest.approx(first.data.metrics["test_roc_auc"])
    plots = json.loads(_run(project, "dvc", "plots", "show", "--json").stdout)
    assert "reports/train/plots/roc.png" in plots["data"]
    _run(project, "dvc", "push", "-q")
    pushed = sum(1 for p in _remote(project).rglob("*") if p.is_file())
    assert pushed >= 3  # the data, check.json and run.json
    _run(project, "git", "add", "-A")
    _run(project, "git", "commit", "-qm", "first model")

    # a registry param re-runs only the register stage: no retraining, no new MLflow run
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["registry"]["gate"]["margin"] = 0.01
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    done = _run(project, "dvc", "repro")
    assert "Stage 'check' didn't change, skipping" in done.stdout
    assert "Stage 'train' didn't change, skipping" in done.stdout
    assert "Running stage 'register'" in done.stdout
    assert len(_runs(project)) == 1
    _run(project, "git", "add", "-A")
    _run(project, "git", "commit", "-qm", "gate margin")

    # dvc exp run -S: a new MLflow run per experiment, named after it
    done = _run(project, "dvc", "exp", "run", "-n", "leaves-63", "-S", "model.params.num_leaves=63")
    assert "Stage 'check' didn't change, skipping" in done.stdout
    runs = _runs(project)
    assert len(runs) == 2
    exp = runs[-1]
    assert exp.data.tags["innflow.dvc.experiment"] == "leaves-63"
    assert exp.data.params["model.params.num_leaves"] == "63"
    assert (
        exp.data.tags["innflow.dvc.baseline_rev"]
        == _run(project, "git", "rev-parse", "HEAD").stdout.strip()
    )
    shown = json.loads(_run(project, "dvc", "exp", "show", "--json").stdout)
    assert "leaves-63" in json.dumps(shown)

    # a param innflow's config does not know: one line, exit 2, nothing recorded
    bad = _run(project, "dvc", "exp", "run", "-S", "+model.bogus=1", check=False)
    assert bad.returncode != 0
    assert "error: invalid config: unknown key 'model.bogus'" in bad.stderr + bad.stdout
    assert "Traceback" not in bad.stderr + bad.stdout
    assert len(_runs(project)) == 2
    _run(project, "git", "checkout", "-q", ".")
    _run(project, "dvc", "checkout", "-q")

    # reproduce says whether the DVC data version still matches
    again = _run(project, "innflow", "reproduce", first.info.run_id, "--json")
    report = json.loads(again.stdout)
    assert report["identical"]
    (check,) = [c for c in report["checks"] if c["name"].startswith("DVC data version")]
    assert check["same"] and check["original"] == _tracked_md5(project)

    data = project / "data" / "hotel_bookings.parquet"
    pd.read_parquet(data).iloc[:-500].to_parquet(data)  # a new version of the data, dvc-added
    _run(project, "dvc", "add", "-q", str(data.relative_to(project)))
    assert _tracked_md5(project) == hashlib.md5(data.read_bytes()).hexdigest()
    moved = _run(project, "innflow", "reproduce", first.info.run_id, "--json", check=False)
    assert moved.returncode == 1
    (check,) = [c for c in json.loads(moved.stdout)["checks"] if c["name"].startswith("DVC")]
    assert not check["same"]
    assert (check["original"], check["now"]) == (first.data.tags["innflow.dvc.data_md5"],
                                                 _tracked_md5(project))  # fmt: skip
