"""The walk-through of docs/tutorials/notebook-to-production.md, "Your notebook to
production", command for command:
a notebook written with plain MLflow (notebooks/03_own_model.py) -> one run tree ->
reproduce -> register -> gate beside innflow's champion -> A/B in the service against
that champion, with the notebook's model answering exactly as MLflow's pyfunc does ->
score -> monitor.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "03_own_model.py"
NAME = "hotel-booking-cancellation"

pytestmark = pytest.mark.slow


def _every_run() -> list:
    import mlflow

    return mlflow.search_runs(search_all_experiments=True, output_format="list")


def test_a_notebook_model_goes_to_production_beside_the_champion(workdir, cli) -> None:
    import mlflow
    from fastapi.testclient import TestClient

    from innflow.serving.settings import ServiceSettings as ServiceOptions
    from innflow.workflows.serve import build_app

    # innflow's own champion on production
    overrides = [arg for o in workdir.overrides() for arg in ("--set", o)]
    trained = cli("train", "--json", *overrides)
    assert trained.code == 0, trained.stderr
    champion_run = json.loads(trained.stdout)["run_id"]
    registered = cli("register", champion_run, "--json")
    assert registered.code == 0, registered.stderr
    champion = json.loads(registered.stdout)["version"]
    moved = cli("promote", champion, "--to", "production", "--approved-by", "ana",
                "--reason", "champion", "--force")  # fmt: skip
    assert moved.code == 0, moved.stderr
    before = {r.info.run_id for r in _every_run()}

    # the data scientist's notebook, as one run tree
    ran = cli("notebook", "run", str(NOTEBOOK), "-p", f"data_path={workdir.data}",
              "-p", "max_iter=20", "--json")  # fmt: skip
    assert ran.code == 0, ran.stderr
    outcome = json.loads(ran.stdout)
    notebook_run = outcome["run_id"]
    assert "2017 ROC AUC" in outcome["output"]
    digest = hashlib.sha256(workdir.data.read_bytes()).hexdigest()
    assert digest in {f["sha256"] for f in outcome["data_files"]}
    new_runs = [r for r in _every_run() if r.info.run_id not in before]
    roots = [r for r in new_runs if "mlflow.parentRunId" not in r.data.tags]
    assert [r.info.run_id for r in roots] == [notebook_run]  # no stray top-level run
    child = next(r for r in new_runs if r.info.run_name == "hgb-raw-columns")
    assert child.data.tags["mlflow.parentRunId"] == notebook_run
    assert "test_roc_auc" in child.data.metrics

    # reproduce: bit-identical, and it says what it compared
    again = cli("reproduce", notebook_run)
    assert again.code == 0, again.stderr
    verdict = " ".join((again.stdout + again.stderr).split())
    assert "bit-identical" in verdict and "predictions of 1 model" in verdict

    # register (idempotent), gate beside the champion
    first = cli("register", notebook_run, "--json")
    assert first.code == 0, first.stderr
    version = json.loads(first.stdout)["version"]
    assert json.loads(cli("register", notebook_run, "--json").stdout)["version"] == version
    gated = cli("gate", version, "--set", f"data.path={workdir.data}")
    assert gated.code in (0, 3), gated.stderr
    staged = cli("promote", version, "--to", "staging", "--approved-by", "ana",
                 "--reason", "A/B against the champion", "--force")  # fmt: skip
    assert staged.code == 0, staged.stderr

    # A/B: innflow's pipeline and the notebook's model behind one service
    options = ServiceOptions(routes=("production=50", "staging=50"), model_name=NAME)
    app, _ = build_app(options)
    bookings = pd.read_parquet(workdir.data).drop(columns=["is_canceled"]).head(40)
    records = json.loads(bookings.to_json(orient="records"))
    seen: dict[str, list] = {}
    with TestClient(app) as client:
        for i, record in enumerate(records):
            response = client.post(
                "/invocations", json={"dataframe_records": [record]},
                headers={"X-Routing-Key": f"booking-{i}"},
            )  # fmt: skip
            assert response.status_code == 200, response.text
            seen.setdefault(response.headers["X-Variant"], []).append(
                (i, response.json()["predictions"][0], response.headers.get("X-Ignored-Columns"))
            )
    assert set(seen) == {"production", "staging"}
    assert all(ignored and "country" in ignored for _, _, ignored in seen["staging"])
    uri = f"models:/{NAME}/{version}"
    pyfunc = mlflow.pyfunc.load_model(uri)
    rows = [i for i, _, _ in seen["staging"]]
    columns = pyfunc.metadata.get_input_schema().input_names()
    expected = np.asarray(pyfunc.predict(bookings.iloc[rows][columns]))
    assert np.array_equal(np.asarray([p for _, p, _ in seen["staging"]]), expected)

    # score and monitor the notebook's model
    scored = cli("score", str(workdir.data), str(workdir.path / "scored.parquet"),
                 "--model-uri", f"models:/{NAME}@staging", "--json")  # fmt: skip
    assert scored.code == 0, scored.stderr
    written = pd.read_parquet(workdir.path / "scored.parquet")
    assert written["probability"].notna().sum() == json.loads(scored.stdout)["scored"] > 0
    watched = cli("monitor", "--batch", str(workdir.data), "--model-uri", f"models:/{NAME}@staging")
    assert watched.code in (0, 4), watched.stderr
    assert "Traceback" not in watched.stderr
