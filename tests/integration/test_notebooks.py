"""`innflow notebook run` and `innflow reproduce` of notebook runs, with real kernels."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"

TINY = """# %%
import sys

import mlflow

# %% tags=["parameters"]
alpha = 1
label = "default"

# %%
mlflow.log_metric("doubled", alpha * 2)
print(f"{label}: {type(alpha).__name__}")
print(f"kernel: {sys.executable}")
"""

FAILING = """# %% tags=["parameters"]
rows = 3

# %%
import mlflow

mlflow.log_metric("before_failure", 1.0)

# %%
total = 0
for i in range(rows):
    total += i
ratio = total / (rows - 3)
print("never reached")
"""


READS_DATA = """# %%
import pickle

import mlflow
import pandas as pd

# %% tags=["parameters"]
scale = 2

# %%
rates = pd.read_csv("inputs/rates.csv")
with open("scaler.pkl", "wb") as f:
    pickle.dump(scale, f)
with open("scaler.pkl", "rb") as f:
    scale = pickle.load(f)
mlflow.log_metric("mean_rate", float(rates["rate"].mean()) * scale)
mlflow.log_text("rates look fine", "note.txt")
note = mlflow.artifacts.load_text(mlflow.get_artifact_uri("note.txt"))  # the store: not data

# %%
print("mean rate", rates["rate"].mean())
"""

XGBOOST_AND_NESTED = """# %%
import mlflow
import numpy as np
import xgboost as xgb

# %% tags=["parameters"]
rounds = 5

# %%
mlflow.set_experiment("somewhere else")
mlflow.xgboost.autolog(log_models=False)
rng = np.random.default_rng(0)
X = rng.normal(size=(200, 3))
y = (X[:, 0] > 0).astype(int)
dtrain = xgb.DMatrix(X, label=y)
xgb.train({"objective": "binary:logistic", "nthread": 1}, dtrain, rounds, evals=[(dtrain, "train")])
mlflow.log_metric("after_autolog", 1.0)

# %%
with mlflow.start_run(run_name="outer"):
    mlflow.log_metric("outer_metric", 2.0)
    with mlflow.start_run(run_name="inner", nested=True):
        mlflow.log_metric("inner_metric", 3.0)
mlflow.end_run()  # a habit from scripts: must not end the notebook's run
mlflow.log_metric("at_the_end", 4.0)
"""

ONLY_PRINTS = """# %%
print("hello")
"""


def _runs(kind: str) -> list:
    import mlflow

    return mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.`innflow.kind` = '{kind}'",
        output_format="list",
    )


def _artifacts(run_id: str, path: str) -> set[str]:
    from mlflow import MlflowClient

    return {a.path for a in MlflowClient().list_artifacts(run_id, path)}


def _executed(run_id: str) -> nbformat.NotebookNode:
    import mlflow

    local = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="notebook/executed.ipynb"
    )
    return nbformat.read(local, as_version=4)


def test_tiny_notebook_is_one_run_with_params_artifacts_and_tags(workdir, cli) -> None:
    notebook = workdir.path / "tiny.py"
    notebook.write_text(TINY)
    result = cli("notebook", "run", str(notebook), "-p", "alpha=21", "--json")
    assert result.code == 0, result.stderr
    outcome = json.loads(result.stdout)
    import mlflow

    run = mlflow.get_run(outcome["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params == {"alpha": "21", "label": "default"}
    tags = run.data.tags
    assert tags["innflow.kind"] == "notebook"
    assert tags["innflow.notebook_sha256"] == hashlib.sha256(notebook.read_bytes()).hexdigest()
    assert len(tags["innflow.git_commit"]) == 40
    assert tags["innflow.python"] and tags["innflow.env_sha256"]
    # what a cell logs with plain mlflow lands in the notebook's run, not a new one
    assert run.data.metrics == {"doubled": 42.0}
    assert len(_runs("notebook")) == 1 and len(mlflow.search_runs(search_all_experiments=True)) == 1
    assert _artifacts(run.info.run_id, "notebook") == {
        "notebook/source.ipynb", "notebook/executed.ipynb", "notebook/executed.html",
        "notebook/parameters.json",
    }  # fmt: skip
    executed = _executed(run.info.run_id)
    printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "default: int" in printed  # -p alpha=21 reached the kernel as an int
    assert f"kernel: {sys.executable}" in printed  # this venv's interpreter


def test_failing_cell_fails_the_run_and_prints_the_cell(workdir, cli) -> None:
    notebook = workdir.path / "failing.py"
    notebook.write_text(FAILING)
    result = cli("notebook", "run", str(notebook))
    assert result.code == 1
    assert "Traceback" not in result.stderr
    assert "ratio = total / (rows - 3)" in result.stderr
    assert "ZeroDivisionError: division by zero" in result.stderr
    assert "never reached" not in result.stderr  # the lines after the failing one are not shown
    (run,) = _runs("notebook")
    assert run.info.status == "FAILED"  # not FINISHED, although the kernel had resumed the run
    assert run.data.tags["innflow.error"].startswith("NotebookFailed")
    assert run.data.metrics["before_failure"] == 1.0
    assert "notebook/executed.html" in _artifacts(run.info.run_id, "notebook")


def test_bad_input_is_one_line_and_opens_no_run(workdir, cli) -> None:
    notebook = workdir.path / "tiny.py"
    notebook.write_text(TINY)
    cases = [
        (("notebook", "run", str(notebook), "-p", "beta=2"), "has no parameter beta"),
        (("notebook", "run", str(notebook), "-p", "alpha"), "not of the form name=value"),
        (("notebook", "run", str(workdir.path / "absent.py")), "notebook not found"),
        (("notebook", "run", str(workdir.data)), "a notebook is a jupytext .py file"),
    ]
    for args, message in cases:
        result = cli(*args)
        assert result.code == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr
    broken = workdir.path / "broken.ipynb"
    broken.write_text("{ not json")
    result = cli("notebook", "run", str(broken))
    assert result.code == 2 and "is not a readable notebook" in result.stderr
    assert _runs("notebook") == []


@pytest.mark.slow
def test_explore_notebook_executes_on_the_sample(workdir, cli) -> None:
    result = cli(
        "notebook", "run", str(NOTEBOOKS / "01_explore.py"), "--json",
        "-p", f"data_path={workdir.data}", "-p", "audit_min_support=30",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    run_id = json.loads(result.stdout)["run_id"]
    outputs = [o for c in _executed(run_id).cells for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the monthly plot
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "required_car_parking_spaces &gt; 0" in html or "required_car_parking_spaces > 0" in html


@pytest.mark.slow
def test_train_notebook_is_tracked_and_reproduced(workdir, cli) -> None:
    """The one expensive test: 02_train runs three times (run, reproduce, reproduce after
    the data changed)."""
    result = cli(
        "notebook", "run", str(NOTEBOOKS / "02_train.py"), "--json",
        "-p", f"data_path={workdir.data}", "-p", "n_estimators=40",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    outcome = json.loads(result.stdout)
    import mlflow

    notebook_run = mlflow.get_run(outcome["run_id"])
    trained = mlflow.get_run(outcome["train_run_id"])
    assert trained.data.tags["mlflow.parentRunId"] == notebook_run.info.run_id
    assert trained.data.params["model.params.n_estimators"] == "40"
    assert trained.data.params["data.path"] == str(workdir.data)
    assert notebook_run.data.metrics == trained.data.metrics
    assert notebook_run.data.metrics["test_roc_auc"] > 0.7
    sha = trained.data.tags["innflow.predictions_sha256"]
    assert (
        notebook_run.data.tags["innflow.predictions_sha256"] == sha == outcome["predictions_sha256"]
    )
    outputs = [o for c in _executed(notebook_run.info.run_id).cells for o in c.get("outputs", [])]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4  # the logged plots

    again = cli("reproduce", notebook_run.info.run_id, "--json")
    assert again.code == 0, again.stderr
    report = json.loads(again.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["test predictions sha256"]["same"] and checks["metric test_roc_auc"]["same"]
    assert checks["logged model predictions sha256"]["same"]
    new_run = mlflow.get_run(report["new_run_id"])
    assert new_run.data.tags["innflow.reproduces"] == notebook_run.info.run_id
    assert new_run.data.tags["innflow.kind"] == "notebook"

    frame = pd.read_parquet(workdir.data)
    frame.loc[frame.index[::5], "lead_time"] += 30
    frame.to_parquet(workdir.data, index=False)
    changed = cli("reproduce", notebook_run.info.run_id, "--json")
    assert changed.code == 1
    checks = {c["name"]: c for c in json.loads(changed.stdout)["checks"]}
    assert checks["data sha256"]["same"] is False
    assert checks["test predictions sha256"]["same"] is False
    assert "not reproduced" in changed.stderr and "Traceback" not in changed.stderr


def test_a_notebook_run_records_the_data_it_read_its_environment_and_last_output(
    workdir, cli
) -> None:
    (workdir.path / "inputs").mkdir()
    (workdir.path / "inputs" / "rates.csv").write_text("rate\n1.5\n2.5\n")
    notebook = workdir.path / "reads.py"
    notebook.write_text(READS_DATA)
    import mlflow

    mlflow.set_tracking_uri(workdir.store)
    mlflow.create_experiment("team-a", artifact_location=str(workdir.path / "store-files"))
    result = cli("notebook", "run", str(notebook), "--json", "--experiment", "team-a")
    assert result.code == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert mlflow.get_experiment(outcome["experiment_id"]).name == "team-a"
    # found by the kernel's watch on open(): no parameter names it; the pickle it wrote
    # and read back is not input data
    assert [f["path"] for f in outcome["data_files"]] == ["inputs/rates.csv"]
    expected = hashlib.sha256(b"rate\n1.5\n2.5\n").hexdigest()
    assert outcome["data_files"][0]["sha256"] == expected
    assert outcome["output"] == "mean rate 2.0"
    assert "mean rate 2.0" in result.stderr  # the summary shows the notebook's last print
    run = mlflow.get_run(outcome["run_id"])
    assert run.data.tags["innflow.data_sha256"] == expected
    assert run.data.tags["innflow.data_path"] == "inputs/rates.csv"
    assert _artifacts(run.info.run_id, "environment") == {
        "environment/installed.txt", "environment/uv.lock",
    }  # fmt: skip
    assert _artifacts(run.info.run_id, "data") == {"data/files.json"}
    assert run.data.metrics == {"mean_rate": 4.0}


def test_reproduce_refuses_what_it_cannot_re_execute_and_stores_nothing(workdir, cli) -> None:
    import mlflow

    mlflow.set_tracking_uri(workdir.store)  # a script of the user's, on this store
    mlflow.set_experiment("script")
    with mlflow.start_run(run_name="by a script") as plain:
        mlflow.log_metric("x", 1.0)
    failing = workdir.path / "failing.py"
    failing.write_text(FAILING)
    assert cli("notebook", "run", str(failing)).code == 1
    (failed,) = _runs("notebook")
    before = len(mlflow.search_runs(search_all_experiments=True))
    cases = [
        (plain.info.run_id, "cannot be reproduced: it is not an innflow run"),
        (failed.info.run_id, "is FAILED: only a FINISHED run can be reproduced"),
        ("0123456789abcdef0123456789abcdef", "no run with id"),
    ]
    for run_id, message in cases:
        result = cli("reproduce", run_id)
        assert result.code == 2, result.stderr
        assert message in " ".join(result.stderr.split()) and "Traceback" not in result.stderr
    assert len(mlflow.search_runs(search_all_experiments=True)) == before


def test_a_notebook_that_records_nothing_is_not_called_reproduced(workdir, cli) -> None:
    notebook = workdir.path / "prints.py"
    notebook.write_text(ONLY_PRINTS)
    run_id = json.loads(cli("notebook", "run", str(notebook), "--json").stdout)["run_id"]
    result = cli("reproduce", run_id)
    assert result.code == 1
    assert "recorded nothing a re-execution could be compared with" in result.stderr
    assert "bit-identical" not in result.stderr


def test_xgboost_autolog_nested_runs_and_end_run_stay_in_one_tree(workdir, cli) -> None:
    notebook = workdir.path / "xgb.py"
    notebook.write_text(XGBOOST_AND_NESTED)
    result = cli("notebook", "run", str(notebook), "--json")
    assert result.code == 0, result.stderr
    root_id = json.loads(result.stdout)["run_id"]
    import mlflow

    runs = {r.info.run_name: r for r in mlflow.search_runs(search_all_experiments=True,
                                                            output_format="list")}  # fmt: skip
    root = mlflow.get_run(root_id)
    assert set(runs) == {root.info.run_name, "outer", "inner"}
    assert runs["outer"].data.tags["mlflow.parentRunId"] == root_id
    assert runs["inner"].data.tags["mlflow.parentRunId"] == runs["outer"].info.run_id
    assert {r.info.experiment_id for r in runs.values()} == {root.info.experiment_id}
    assert {"train-logloss", "after_autolog", "at_the_end"} <= set(root.data.metrics)
    assert runs["inner"].data.metrics == {"inner_metric": 3.0}
    assert root.info.status == "FINISHED"
    assert root.data.tags["innflow.notebook.requested_experiment"] == "somewhere else"
