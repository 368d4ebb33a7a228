"""register, gate, promote and monitor on models innflow did not train (tests/user_models.py),
beside an innflow champion, in one SQLite store; every refusal is one line and exit 2.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from innflow import config
from innflow import data as bookings
from innflow.workflows.registry import move_alias, register
from innflow.workflows.train import train
from tests import user_models
from tests.conftest import SAMPLE
from tests.integration.conftest import FAST

NAME = "hotel-booking-cancellation"
GATE = ["registry.gate.min_roc_auc=0.7", "registry.gate.slice_floor_roc_auc=0.5"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """An innflow LightGBM champion on production and every kind of user model, logged
    once for the module; yields (directory, store URI, run ids by kind, bookings).
    """
    path = tmp_path_factory.mktemp("any-model")
    shutil.copy(SAMPLE, path / "bookings.parquet")
    uri = f"sqlite:///{path / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(path)
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        cfg = config.load(None, [f"data.path={path / 'bookings.parquet'}", *FAST["lightgbm"]])
        version, _ = register(train(cfg, 1).run_id, cfg)
        move_alias(cfg, version, "production", "tester", "champion", force=True)
        frame = bookings.load_data(path / "bookings.parquet")
        runs = {
            "raw": user_models.raw_pipeline(frame),
            "labels": user_models.raw_pipeline(frame, proba=False, run_name="rf-labels"),
            "onehot": user_models.onehot_model(frame),
            "booster": user_models.lightgbm_booster(frame),
            "wine": user_models.wine_model(),
            "two": user_models.two_models(frame),
            "none": user_models.no_model(),
            "integer": user_models.integer_counts(frame),
            "unsigned": user_models.unsigned_pipeline(frame),
        }
        yield path, uri, runs, frame


@pytest.fixture
def env(store, monkeypatch):
    path, uri, *_ = store
    monkeypatch.chdir(path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return store


def _args(path: Path) -> list[str]:
    return [a for o in (f"data.path={path / 'bookings.parquet'}", *GATE) for a in ("--set", o)]


def _refused(result, *needles: str) -> None:
    """Exit 2, one line on stderr, no traceback, naming what is wrong."""
    assert result.code == 2, (result.code, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


def _register(cli, *args: str) -> dict:
    result = cli("register", *args, "--json")
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def _versions(uri: str) -> list[tuple[str, str]]:
    client = MlflowClient(uri)
    found = []
    for model in client.search_registered_models():
        found += [
            (v.name, v.version) for v in client.search_model_versions(f"name = '{model.name}'")
        ]
    return sorted(found)


def test_a_script_run_registers_once_with_where_it_came_from(env, cli) -> None:
    _, uri, runs, _ = env
    first = _register(cli, runs["raw"])
    assert first["name"] == NAME and first["created"] and first["run_id"] == runs["raw"]
    assert first["model_uri"].startswith("models:/m-") and first["origin"] == "script run"
    assert first["flavor"] == "sklearn" and first["task"] == "cancellation"
    again = _register(cli, first["model_uri"])
    assert again["version"] == first["version"] and not again["created"]
    assert _register(cli, runs["raw"])["version"] == first["version"]
    tags = MlflowClient(uri).get_model_version(NAME, first["version"]).tags
    assert tags["innflow.origin"] == "script run" and tags["innflow.flavor"] == "sklearn"
    assert float(tags["innflow.metric.test_roc_auc"]) > 0.5
    assert tags["innflow.test_roc_auc"] == tags["innflow.metric.test_roc_auc"]
    assert tags["innflow.gate"] == "pending"
    plain = cli("register", runs["raw"])
    assert plain.code == 0 and f"already registered as {NAME} version" in plain.stdout


def test_a_run_with_two_models_lists_them_and_each_is_its_own_version(env, cli) -> None:
    _, uri, runs, _ = env
    several = cli("register", runs["two"])
    assert several.code == 2 and "Traceback" not in several.stderr
    assert "candidate_a" in several.stderr and "candidate_b" in several.stderr
    listed = [line.split() for line in several.stderr.splitlines()[1:]]
    assert "--model NAME" in several.stderr and len(listed) == 2
    assert all(line[-1].startswith("models:/m-") and runs["two"] in line for line in listed)
    before = _versions(uri)
    a = _register(cli, runs["two"], "--model", "candidate_a")
    uri_b = next(line.split()[-1] for line in several.stderr.splitlines() if "candidate_b" in line)
    b = _register(cli, uri_b)
    assert a["version"] != b["version"] and a["run_id"] == b["run_id"] == runs["two"]
    assert _register(cli, a["model_uri"])["version"] == a["version"]
    assert len(_versions(uri)) == len(before) + 2
    _refused(cli("register", runs["two"], "--model", "nope"), "candidate_a", "'nope'")


def test_another_task_needs_its_own_name_and_cannot_be_gated(env, cli) -> None:
    path, uri, runs, _ = env
    before = _versions(uri)
    _refused(cli("register", runs["wine"]), "not a cancellation model", "--name")
    _refused(cli("register", runs["wine"], "--name", NAME), "--name")
    assert _versions(uri) == before
    wine = _register(cli, runs["wine"], "--name", "wine-classifier")
    assert wine["name"] == "wine-classifier" and wine["task"] == "other" and wine["notes"]
    _refused(
        cli("gate", wine["version"], "--name", "wine-classifier", *_args(path)),
        "not a cancellation model",
    )
    tags = MlflowClient(uri).get_model_version("wine-classifier", wine["version"]).tags
    assert tags["innflow.gate"] == "pending"
    refused = cli("promote", wine["version"], "--name", "wine-classifier", "--approved-by", "ana")
    assert refused.code == 3 and "--force" in refused.stderr
    forced = cli("promote", wine["version"], "--name", "wine-classifier", "--approved-by", "ana",
                 "--force", "--reason", "its own registry")  # fmt: skip
    assert forced.code == 0, forced.stderr
    listed = json.loads(cli("models", "--name", "wine-classifier", "--json").stdout)["versions"]
    assert [(v["version"], v["aliases"]) for v in listed] == [(wine["version"], "production")]
    # --name puts a cancellation model in a registered model of its own too
    own = _register(cli, runs["raw"], "--name", "rf-experiments")
    assert own["name"] == "rf-experiments" and own["version"] == "1"


@pytest.mark.slow
def test_gate_scores_a_challenger_beside_the_innflow_champion(env, cli) -> None:
    path, uri, runs, _ = env
    for kind in ("raw", "booster"):
        version = _register(cli, runs[kind])["version"]
        result = cli("gate", version, "--json", *_args(path))
        assert result.code in (0, 3), result.stderr
        report = json.loads(result.stdout)
        assert report["champion_version"] == "1" and report["champion"]["roc_auc"] > 0.7
        assert 0.5 < report["candidate"]["roc_auc"] <= 1
        assert {c["check"] for c in report["checks"]} >= {"roc_auc", "brier", "ece"}
        tags = MlflowClient(uri).get_model_version(NAME, version).tags
        assert tags["innflow.gate"] == ("passed" if result.code == 0 else "failed")
        assert tags["innflow.reference_profile"].startswith(f"runs:/{runs[kind]}/")
    table = cli("gate", version, *_args(path))
    assert table.code in (0, 3) and "roc_auc" in table.stdout and "Traceback" not in table.stderr


def test_a_signature_type_the_data_can_take_is_cast_and_one_it_cannot_is_one_line(env, cli) -> None:
    path, uri, runs, frame = env
    version = _register(cli, runs["integer"])["version"]
    # children is a float column in the bookings, long in the signature: whole values cast.
    assert cli("gate", version, *_args(path)).code in (0, 3)
    with_gaps = frame.copy()
    with_gaps.loc[with_gaps.index[-5:], "children"] = None
    with_gaps.to_parquet(path / "gaps.parquet")
    gaps = ["--set", f"data.path={path / 'gaps.parquet'}", *_args(path)[2:]]
    _refused(cli("gate", version, *gaps), "'children'", "long", "missing values")
    assert MlflowClient(uri).get_model_version(NAME, version).tags["innflow.gate"] != "pending"


def test_a_model_without_a_signature_goes_only_under_its_own_name(env, cli) -> None:
    _, uri, runs, _ = env
    before = _versions(uri)
    _refused(cli("register", runs["unsigned"]), "no signature", "input example", "--name")
    assert _versions(uri) == before
    done = _register(cli, runs["unsigned"], "--name", "unsigned-rf")
    assert done["task"] == "unknown" and "no signature" in done["notes"][0]


def test_gate_refuses_a_model_it_cannot_score_on_bookings(env, cli) -> None:
    path, uri, runs, _ = env
    registered = _register(cli, runs["onehot"])
    assert "made outside the model" in registered["notes"][0]
    onehot = registered["version"]
    labels = _register(cli, runs["labels"])["version"]
    client = MlflowClient(uri)
    _refused(cli("gate", onehot, *_args(path)), "'hotel_City Hotel'", "Pipeline")
    _refused(cli("gate", labels, *_args(path)), 'pyfunc_predict_fn="predict_proba"')
    for version in (onehot, labels):
        assert client.get_model_version(NAME, version).tags["innflow.gate"] == "pending"
    _refused(cli("gate", "99", *_args(path)), "99")
    _refused(cli("promote", "99", "--approved-by", "ana"), "99")


def test_bad_references_are_one_line_and_change_nothing(env, cli) -> None:
    _, uri, runs, frame = env
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with mlflow.start_run(run_name="crashed") as failed:
            mlflow.sklearn.log_model(
                user_models._raw_pipeline().fit(
                    frame[user_models.NUMERIC + user_models.CATEGORICAL], frame["is_canceled"]
                ),
                name="model",
                serialization_format="cloudpickle",
            )
        MlflowClient(uri).set_terminated(failed.info.run_id, "FAILED")
    before = _versions(uri)
    _refused(cli("register", runs["none"]), "logged no model", "log_model")
    _refused(cli("register", failed.info.run_id), "FAILED")
    _refused(cli("register", "0123456789abcdef0123456789abcdef"), "no run")
    _refused(cli("register", "models:/m-0123456789abcdef0123456789abcdef"), "no logged model")
    _refused(cli("register", f"runs:/{runs['raw']}/elsewhere"), "no logged model")
    _refused(cli("register", f"models:/{NAME}/1"), "registered version already")
    assert _versions(uri) == before


def test_a_corrupt_model_is_refused_by_register_and_gate(env, cli) -> None:
    path, uri, _, frame = env
    client = MlflowClient(uri)
    run_id = user_models.raw_pipeline(frame, run_name="to-corrupt")
    logged = mlflow.search_logged_models(output_format="list")
    model = next(m for m in logged if m.source_run_id == run_id)
    files = Path(model.artifact_location.removeprefix("file://"))
    registered = _register(cli, run_id)
    pickled = next(files.glob("model.pkl"))
    pickled.write_bytes(b"not a pickle")
    before = _versions(uri)
    _refused(cli("gate", registered["version"], *_args(path)), "could not load model")
    tags = client.get_model_version(NAME, registered["version"]).tags
    assert tags["innflow.gate"] == "pending"
    (files / "MLmodel").unlink()
    again = cli("register", f"models:/{model.model_id}", "--name", "corrupt")
    assert again.code == 2 and "Traceback" not in again.stderr, again.stderr
    assert _versions(uri) == before


@pytest.mark.slow
def test_monitor_a_registered_user_model_that_takes_booking_columns(env, cli) -> None:
    path, uri, runs, frame = env
    version = _register(cli, runs["booster"])["version"]
    model = f"models:/{NAME}/{version}"
    window = frame[bookings.arrival_dates(frame) < "2017-01-01"]
    window.to_parquet(path / "window.parquet")
    batch = ["--batch", str(path / "window.parquet"), "--model-uri", model]
    if "innflow.reference_profile" not in MlflowClient(uri).get_model_version(NAME, version).tags:
        before_gate = cli("monitor", *batch, *_args(path)[:2])
        _refused(before_gate, "no reference profile", "innflow gate")
        assert cli("gate", version, *_args(path)).code in (0, 3)
    result = cli("monitor", *batch, "--json", *_args(path)[:2])
    assert result.code in (0, 4), result.stderr
    report = json.loads(result.stdout)
    assert report["model"]["version"] == version and report["rows"] == len(window)
    assert {f["feature"] for f in report["features"]} >= {"lead_time", "adr"}
    staged = cli("promote", version, "--to", "staging", "--approved-by", "ana", "--force")
    assert staged.code == 0, staged.stderr
    on_staging = cli("monitor", "--batch", str(path / "window.parquet"), "--model-uri",
                     f"models:/{NAME}@staging", "--json")  # fmt: skip
    assert on_staging.code in (0, 4) and json.loads(on_staging.stdout)["rows"] == len(window)
    onehot = _register(cli, runs["onehot"])["version"]
    _refused(
        cli("monitor", "--batch", str(path / "window.parquet"), "--model-uri",
            f"models:/{NAME}/{onehot}"),
        "no reference profile",
    )  # fmt: skip
    wine = _register(cli, runs["wine"], "--name", "wine-classifier")["version"]
    _refused(
        cli("monitor", "--batch", str(path / "window.parquet"), "--model-uri",
            f"models:/wine-classifier/{wine}"),
        "no reference profile",
    )  # fmt: skip


def test_a_model_logged_from_a_notebook_says_so(env, cli) -> None:
    _, uri, _, frame = env
    run_id = user_models.raw_pipeline(frame, run_name="in-a-notebook")
    # what MLflow records for a run started from a Jupyter kernel
    MlflowClient(uri).set_tag(run_id, "mlflow.source.name", "/home/ds/cancellations.ipynb")
    done = _register(cli, run_id, "--name", "notebook-models")
    assert done["origin"] == "notebook run"
    tags = MlflowClient(uri).get_model_version("notebook-models", done["version"]).tags
    assert tags["innflow.origin"] == "notebook run"
    assert "notebook run" in MlflowClient(uri).get_model_version("notebook-models", "1").description
