"""Serving and scoring models innflow did not train (tests/user_models.py): the general
path answers what MLflow's pyfunc answers, checks requests against the signature, and
every failure is one line (CLI) or a 4xx with a body (HTTP), never a traceback or a 500.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from innflow.serving.app import create_app
from innflow.serving.loading import RegistrySource, load
from innflow.serving.settings import ServiceSettings as Settings
from innflow.workflows.score import score_file
from tests import user_models
from tests.conftest import SAMPLE

# registered name -> (how it is logged, artifact name)
KINDS = {
    "rf-proba": (lambda b: user_models.raw_pipeline(b), "model"),
    "rf-labels": (lambda b: user_models.raw_pipeline(b, proba=False), "model"),
    "onehot": (user_models.onehot_model, "model"),
    "lgb-native": (user_models.lightgbm_booster, "booster"),
    "wine": (lambda b: user_models.wine_model(), "model"),
}


def register(name: str, run_id: str, artifact: str = "model", alias: str = "production") -> str:
    """As a user does it with MLflow itself: register the run's model, set an alias."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        version = mlflow.register_model(f"runs:/{run_id}/{artifact}", name)
    MlflowClient().set_registered_model_alias(name, alias, version.version)
    return str(version.version)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Every user model kind logged and registered once (alias ``production``)."""
    path = tmp_path_factory.mktemp("general")
    shutil.copy(SAMPLE, path / "bookings.parquet")
    bookings = pd.read_parquet(SAMPLE)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(path)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{path / 'mlflow.db'}")
        # An earlier test's set_tracking_uri outranks the environment: name the store.
        mlflow.set_tracking_uri(f"sqlite:///{path / 'mlflow.db'}")
        # ... and its experiment: another store's (set by training there) does not exist here
        mlflow.set_experiment(experiment_id="0")
        for name, (log, artifact) in KINDS.items():
            register(name, log(bookings), artifact)
    return path, bookings


@pytest.fixture
def here(store, monkeypatch: pytest.MonkeyPatch):
    """This test pointed at the module's store."""
    path, bookings = store
    monkeypatch.chdir(path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{path / 'mlflow.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{path / 'mlflow.db'}")
    mlflow.set_experiment(experiment_id="0")
    return path, bookings


def _split(frame: pd.DataFrame) -> dict:
    return json.loads(frame.to_json(orient="split", index=False, date_format="iso"))


def _records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))


def _expected(uri: str, example: pd.DataFrame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = mlflow.pyfunc.load_model(uri).predict(example)
    return np.asarray(raw).tolist()


@pytest.mark.parametrize("name", list(KINDS))
def test_serve_answers_as_mlflow_pyfunc_does(here, name) -> None:
    uri = f"models:/{name}@production"
    model = load(uri)
    example = model.example
    assert example is not None
    expected = _expected(uri, example)
    client = TestClient(create_app(model))
    bodies = [
        {"dataframe_split": _split(example)},
        {"dataframe_records": _records(example)},
        {"instances": _records(example)},
        {"inputs": _records(example)},
    ]
    for body in bodies:
        response = client.post("/invocations", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["predictions"] == expected, body.keys()
    csv = client.post(
        "/invocations", content=example.to_csv(index=False), headers={"Content-Type": "text/csv"}
    )
    assert csv.status_code == 200, csv.text
    assert np.allclose(np.asarray(csv.json()["predictions"]), np.asarray(expected))
    predicted = client.post("/predict", json={"dataframe_records": _records(example)}).json()
    rows = predicted["predictions"]
    assert len(rows) == len(example) and rows[0]["variant"] == "main"
    if model.general is not None and model.general.probabilities:
        assert [r["probability"] for r in rows] == [p[1] for p in expected]
        assert [r["likely_cancel"] for r in rows] == [p[1] >= 0.5 for p in expected]
    else:
        assert [r["prediction"] for r in rows] == expected
    health = client.get("/health").json()
    assert health["predictors"]["main"]["path"] == "general"
    assert client.get("/metadata").json()["predictors"]["main"]["state"] == "general"
    assert 'state="general"' in client.get("/metrics").text
    record = client.get("/openapi.json").json()["paths"]["/invocations"]["post"]["requestBody"]
    items = record["content"]["application/json"]["schema"]["properties"]["instances"]["items"]
    assert list(items["properties"]) == model.columns


@pytest.mark.parametrize("name", list(KINDS))
def test_score_writes_the_pyfunc_numbers_and_keeps_bad_rows(here, name, tmp_path) -> None:
    uri = f"models:/{name}@production"
    model = load(uri)
    assert model.example is not None
    source = pd.concat([model.example] * 2, ignore_index=True)
    first = model.columns[0]
    source[first] = source[first].astype(object)
    source.loc[1, first] = "oops"  # text where the signature wants a number
    source.to_csv(tmp_path / "in.csv", index=False)  # (parquet would refuse the text)
    outcome = score_file(uri, tmp_path / "in.csv", tmp_path / "out.parquet")
    written = pd.read_parquet(tmp_path / "out.parquet")
    assert outcome.rows == len(source) == len(written) and outcome.rejected == 1
    assert written.loc[1, "error"] == f"{first}: value not a number"
    good = written["error"] == ""
    expected = _expected(uri, model.example)
    expected = (expected * 2)[: len(source)]
    expected = [e for e, ok in zip(expected, good, strict=True) if ok]
    if "probability" in written:
        assert written.loc[good, "probability"].tolist() == [p[1] for p in expected]
        assert pd.isna(written.loc[1, "probability"])
    else:
        assert written.loc[good, "prediction"].tolist() == expected
        assert pd.isna(written.loc[1, "prediction"])


def test_score_keeps_every_row_when_none_can_be_scored(here, tmp_path) -> None:
    _, bookings = here
    source = bookings.head(4).copy()
    source["hotel"] = 7.0  # a number where the signature wants text, in every row
    source.to_parquet(tmp_path / "in.parquet")
    outcome = score_file("models:/rf-proba@production", tmp_path / "in.parquet",
                         tmp_path / "out.parquet")  # fmt: skip
    written = pd.read_parquet(tmp_path / "out.parquet")
    assert outcome.scored == 0 and outcome.rejected == len(written) == 4
    assert set(written["error"]) == {"hotel: value not text"}
    assert written["probability"].isna().all() and written["likely_cancel"].isna().all()


def test_compile_of_a_general_model_says_there_is_nothing_to_compile(here, cli) -> None:
    result = cli("compile", "--model-uri", "models:/rf-proba@production")
    assert result.code == 0 and result.stdout.startswith("general: mlflow.pyfunc model")


def test_a_booking_record_is_answered_its_unused_columns_ignored(here) -> None:
    _, bookings = here
    model = load("models:/rf-proba@production")
    client = TestClient(create_app(model))
    records = _records(bookings.head(3))  # every booking column, the label included
    response = client.post("/invocations", json={"dataframe_records": records})
    assert response.status_code == 200, response.text
    ignored = response.headers["X-Ignored-Columns"].split(",")
    assert "country" in ignored and "booking_changes" in ignored and "lead_time" not in ignored
    expected = _expected("models:/rf-proba@production", bookings.head(3)[model.columns])
    assert response.json()["predictions"] == expected


@pytest.mark.parametrize(
    ("name", "mutate", "field", "problem"),
    [
        ("rf-proba", lambda r: r.pop("lead_time"), "lead_time", "value null"),  # absent: null
        ("rf-proba", lambda r: r.update(lead_tmie=3), "lead_tmie", "unknown column"),
        ("rf-proba", lambda r: r.update(lead_time="soon"), "lead_time", "value not a number"),
        ("rf-proba", lambda r: r.update(lead_time=None), "lead_time", "value null"),
        ("rf-proba", lambda r: r.update(lead_time=2.5), "lead_time", "value not a whole"),
        ("rf-proba", lambda r: r.update(hotel=7), "hotel", "value not text"),
        ("wine", lambda r: r.update(colour="red"), "colour", "unknown column"),
        ("wine", lambda r: r.update(alcohol=True), "alcohol", "value not a number"),
        ("lgb-native", lambda r: r.update(adr=[1]), "adr", "value not a number"),
    ],
)
def test_bad_input_is_a_400_naming_field_and_row(here, name, mutate, field, problem) -> None:
    model = load(f"models:/{name}@production")
    assert model.example is not None
    client = TestClient(create_app(model))
    records = _records(model.example.head(3))
    mutate(records[2])
    response = client.post("/invocations", json={"dataframe_records": records})
    assert response.status_code == 400, response.text
    errors = response.json()["errors"]
    hit = [e for e in errors if e["field"] == field and e["problem"].startswith(problem)]
    assert hit, errors
    assert hit[0]["row"] in (2, None)


def test_malformed_bodies_and_explain_are_4xx(here) -> None:
    client = TestClient(create_app(load("models:/wine@production")))
    bodies = [(b"{", "application/json"), (b"[]", "application/json"), (b"a,b\n1", "text/plain"),
              (b'{"inputs": [[1, 2]]}', "application/json")]  # fmt: skip
    for body, kind in bodies:
        response = client.post("/invocations", content=body, headers={"Content-Type": kind})
        assert 400 <= response.status_code < 500 and "error" in response.json(), body
    explain = client.post("/predict?explain=true", json={"inputs": [{"alcohol": 1.0}]})
    assert explain.status_code == 400
    missing = client.post("/invocations", json={"inputs": [{"alcohol": 1.0}]}).json()["errors"]
    assert {"row": None, "field": "proline", "problem": "missing column"} in missing


def test_cli_errors_are_one_line_with_exit_2(here, cli) -> None:
    spark = ("score", "bookings.parquet", "o", "--model-uri", "models:/rf-proba@production",
             "--engine", "spark")  # fmt: skip
    checks = {
        ("serve", "--model-uri", "models:/rf-proba@staging"): "its aliases: @production",
        ("serve", "--model-uri", "models:/nobody@production"): "no registered model 'nobody'",
        ("serve", "--model-uri", "models:/wine/9"): "has no version 9 (its versions: 1)",
        ("score", "bookings.parquet", "out.parquet", "--model-uri", "models:/wine/9"): "version 9",
        ("score", "bookings.parquet", "out.parquet", "--model-uri", "models:/wine@production"): (
            "missing column"
        ),
        spark: "--engine local",
    }
    for args, said in checks.items():
        result = cli(*args)
        assert result.code == 2, (args, result)
        assert said in result.stderr.replace("\n", " "), (args, result.stderr)
        assert "Traceback" not in result.stderr
    staging = cli("serve", "--model-uri", "models:/rf-proba@staging")
    assert "innflow promote VERSION --to staging" in staging.stderr.replace("\n", " ")


def _logged_model_dir(name: str) -> Path:
    version = MlflowClient().get_model_version(name, "1")
    model_id = version.model_id or version.source.removeprefix("models:/")
    location = mlflow.get_logged_model(model_id).artifact_location
    return Path(location.removeprefix("file://"))


def test_corrupt_and_unsigned_models_are_refused_in_one_line(here, cli) -> None:
    _, bookings = here
    garbled = register("garbled", user_models.raw_pipeline(bookings, run_name="garbled"))
    deleted = register("deleted", user_models.raw_pipeline(bookings, run_name="deleted"))
    (_logged_model_dir("garbled") / "model.pkl").write_bytes(b"not a pickle")
    (_logged_model_dir("deleted") / "MLmodel").unlink()
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings(), mlflow.start_run() as run:
        warnings.simplefilter("ignore")
        model = LogisticRegression().fit(bookings[["lead_time"]], bookings["is_canceled"])
        mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
    register("unsigned", run.info.run_id)
    assert garbled == deleted == "1"
    for name, said in [("garbled", "could not load"), ("deleted", "unsigned"),
                       ("unsigned", "no signature")]:  # fmt: skip
        for args in (("serve",), ("score", "bookings.parquet", "out.parquet")):
            result = cli(*args, "--model-uri", f"models:/{name}@production")
            assert result.code == 2, (name, args, result)
            assert "Traceback" not in result.stderr and result.stderr.count("error:") == 1
            if name != "deleted":
                assert said in result.stderr.replace("\n", " "), result.stderr


def test_a_failing_reload_says_so_on_stderr_and_the_old_version_serves(here, capsys) -> None:
    _, bookings = here
    client = MlflowClient()
    run_id = user_models.raw_pipeline(bookings, run_name="reloaded")
    first = register("reloaded", run_id)
    source = RegistrySource("reloaded", ["production=100"], [])
    http = TestClient(create_app(source.load(), Settings(admin_token="t"), source))
    broken = client.create_model_version("reloaded", source="file:///nonexistent/model")
    client.set_registered_model_alias("reloaded", "production", broken.version)
    capsys.readouterr()
    for _ in range(2):  # every retry says it again
        answer = http.post("/admin/reload", headers={"Authorization": "Bearer t"})
        assert answer.status_code == 409
    lines = [line for line in capsys.readouterr().err.splitlines() if "reload" in line]
    assert len(lines) == 2
    assert lines[0].startswith(
        f"innflow serve: reload failed, still serving production v1 (not production "
        f"v{broken.version}): "
    )
    example = _records(bookings[user_models.NUMERIC + user_models.CATEGORICAL].head(2))
    response = http.post("/invocations", json={"dataframe_records": example})
    assert response.status_code == 200 and response.headers["X-Model-Version"] == first
    assert http.get("/health").json()["last_reload"]["outcome"] == "failed"
