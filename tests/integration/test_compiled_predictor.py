"""The compiled tree predictor: built ahead by `innflow compile`, loaded by services only
when installed read-only, bit-identical to the pipeline or refused, and never in the way of
the exact path (no compiler, no library, a broken or writable one)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from innflow.serving import accelerate, compiled, core
from innflow.serving.app import create_app
from innflow.serving.fastpath import FastScorer

pytestmark = pytest.mark.needs_cc

DATA = Path(__file__).resolve().parents[2] / "data" / "hotel_bookings.parquet"


@pytest.fixture
def scorer(registered, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """A fresh scorer of the served LightGBM model, compiling on, own cache directory."""
    monkeypatch.setenv("INNFLOW_COMPILE", "1")
    monkeypatch.setenv("INNFLOW_CACHE_DIR", str(tmp_path))
    model = registered[0]
    return FastScorer.from_pipeline(model.pipeline), model


@pytest.fixture(scope="module")
def library(registered, tmp_path_factory) -> Path:
    """The served model compiled once for the module (in a cache of its own)."""
    booster = registered[0].fast.booster
    text = booster.model_to_string()
    return compiled.build(text, compiled.cache_path(text, tmp_path_factory.mktemp("cache")))


def _install(library: Path | bytes, text: str) -> Path:
    """Put a library (or bytes) where the cache looks for ``text``'s (INNFLOW_CACHE_DIR),
    installed as `innflow compile` does (read-only, its sha256 beside it), as a new file:
    overwriting a loaded library in place would crash the process.
    """
    target = compiled.cache_path(text)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_suffix(".staged")
    staged.write_bytes(library if isinstance(library, bytes) else library.read_bytes())
    os.replace(staged, target)
    return compiled.install(target)


def test_compiled_predictor_is_bit_identical_to_predict_proba_on_every_booking(
    scorer, library: Path
) -> None:
    fast, model = scorer
    _install(library, fast.booster.model_to_string())
    accelerate.accelerate(fast, [])
    assert fast.status.state == "compiled", fast.status
    frame = pd.read_parquet(DATA)[model.columns]
    frame = frame[core.row_errors(frame, model.columns) == ""]
    expected = model.pipeline.predict_proba(frame)
    for threads in (1, 2):  # 2 threads split the rows: the same numbers
        fast.threads = threads
        got = fast.predict_proba(core.columns_of(frame, model.columns))
        assert got.tobytes() == expected.tobytes()
    fast.threads = 1
    one = fast.predict_proba(core.columns_of(frame.head(1), model.columns))
    assert one.tobytes() == expected[:1].tobytes()


def test_split_boundaries_nan_and_unseen_codes_match_lightgbm(scorer, library: Path) -> None:
    fast, _ = scorer
    forest = compiled.parse(fast.booster.model_to_string())
    trees = compiled.CompiledTrees(library, forest.features)
    probe = compiled.probe_rows(forest, rows=20_000, seed=7)
    assert np.isnan(probe).any() and (probe < 0).any()
    raw = fast.booster.predict(probe, raw_score=True, num_threads=1)
    assert trees.predict(probe, raw=True).tobytes() == raw.tobytes()
    assert compiled.verify(trees, fast.booster, [probe]) is None


def test_a_library_that_differs_is_refused_and_the_exact_path_serves(
    scorer, library: Path, registered
) -> None:
    fast, model = scorer
    other = fast.booster.model_to_string()
    # the library of a model with one tree less, filed under this model's key
    fewer = compiled.build(
        fast.booster.model_to_string(num_iteration=fast.booster.num_trees() - 1),
        library.parent / "fewer.so",
    )
    _install(fewer, other)
    accelerate.accelerate(fast, [])
    assert fast.status.state == "refused" and "rows differ" in fast.status.detail
    assert fast.trees is None
    bookings = registered[1]
    got = fast.predict_proba(core.columns_of(bookings, model.columns))
    assert got.tobytes() == model.pipeline.predict_proba(bookings).tobytes()


def test_the_cache_is_used_and_a_broken_cache_file_is_rebuilt(
    scorer, library: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fast, model = scorer
    text = fast.booster.model_to_string()
    target = _install(library, text)
    before = target.stat().st_mtime_ns
    accelerate.accelerate(fast, [], build=True)
    assert fast.status.state == "compiled" and fast.status.library == str(target)
    assert target.stat().st_mtime_ns == before  # loaded, not compiled again
    # a new cache directory: the dynamic loader keeps libraries it loaded by path
    monkeypatch.setenv("INNFLOW_CACHE_DIR", str(tmp_path / "broken"))
    _install(b"not a shared library", text)
    again = FastScorer.from_pipeline(model.pipeline)
    accelerate.accelerate(again, [])
    assert again.status.state == "failed" and again.trees is None  # a service: exact path
    accelerate.accelerate(again, [], build=True)
    assert again.status.state == "compiled"  # innflow compile rebuilds it


def test_without_a_compiler_the_exact_path_keeps_serving(
    scorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, _ = scorer
    monkeypatch.setenv("CC", "/nonexistent/cc")
    accelerate.accelerate(fast, [], build=True)
    assert fast.status.state == "failed" and fast.trees is None
    monkeypatch.setenv("INNFLOW_COMPILE", "0")
    accelerate.accelerate(fast, [])
    assert fast.status.state == "exact" and "INNFLOW_COMPILE" in fast.status.detail


def test_the_service_never_compiles_and_loads_only_an_installed_library(
    registered, library: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("INNFLOW_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("INNFLOW_COMPILE", "1")

    def no_compiler(*args, **kwargs):
        raise AssertionError("a serving process compiled")

    monkeypatch.setattr(compiled, "compile_library", no_compiler)
    model, bookings, _, _ = registered
    body = {"dataframe_split": json.loads(bookings.to_json(orient="split", index=False))}
    expected = model.pipeline.predict_proba(bookings)
    text = model.fast.booster.model_to_string()

    def served() -> tuple[dict, np.ndarray]:
        fast = FastScorer.from_pipeline(model.pipeline)
        accelerate.accelerate(fast, [])
        loaded = core.LoadedModel(model.pipeline, model.columns, model.threshold,
                                  model.description, fast, model.example)  # fmt: skip
        client = TestClient(create_app(loaded))
        answer = client.post("/invocations", json=body)
        assert answer.status_code == 200
        return client.get("/health").json()["predictors"]["main"], np.asarray(
            answer.json()["predictions"]
        )

    health, got = served()  # nothing compiled yet: the exact path, and how to get more
    assert health["state"] == "exact" and "innflow compile" in health["detail"], health
    assert got.tobytes() == expected.tobytes()

    target = _install(library, text)
    health, got = served()
    assert health["state"] == "compiled", health
    assert got.tobytes() == expected.tobytes()

    # What a writable volume could hold is never loaded: its code would run on dlopen.
    digest = target.with_name(target.name + ".sha256")
    for spoil, reason in [
        (lambda: os.chmod(target, 0o644), "is writable"),
        (lambda: os.chmod(target.parent, 0o777), "can be written by other users"),
        (lambda: digest.unlink(), "was not installed by innflow compile"),
        (lambda: (os.chmod(digest, 0o644), digest.write_text("0" * 64)), "differs from"),
    ]:
        spoil()
        health, got = served()
        assert health["state"] == "refused" and reason in health["detail"], health
        assert got.tobytes() == expected.tobytes()  # the exact path answered
        os.chmod(target.parent, 0o755)
        _install(library, text)


def test_other_model_kinds_and_objectives_keep_the_exact_path(registered) -> None:
    with pytest.raises(compiled.Unsupported):
        compiled.parse("tree\nversion=v4\nnum_class=3\nobjective=multiclass num_class:3\n")
    text = registered[0].fast.booster.model_to_string()
    with pytest.raises(compiled.Unsupported):
        compiled.parse(text.replace("objective=binary sigmoid:1", "objective=regression"))


PRODUCTION = "models:/hotel-booking-cancellation@production"


def _production_source():
    """A service's registry source: the production alias, all traffic."""
    from innflow.serving.loading import RegistrySource

    return RegistrySource("hotel-booking-cancellation", ["production=100"], [])


def _records(frame: pd.DataFrame) -> dict:
    return {"dataframe_records": json.loads(frame.to_json(orient="records"))}


def _health_once(http: TestClient, ready: Callable[[dict], bool], seconds: float = 60) -> dict:
    """/health as soon as ``ready`` says so (the service works in the background), or
    after ``seconds`` whatever it says.
    """
    for _ in range(round(seconds * 10)):
        health = http.get("/health").json()
        if ready(health):
            break
        threading.Event().wait(0.1)
    return health


def _assert_scored_like_the_pipeline(model: core.LoadedModel, path: Path) -> None:
    scored = pd.read_parquet(path)
    good = scored["error"] == ""
    expected = model.pipeline.predict_proba(scored.loc[good, model.columns])[:, 1]
    assert scored.loc[good, "probability"].to_numpy().tobytes() == expected.tobytes()


@pytest.fixture
def snapshotted(registry, library: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The production model loaded with its compiled predictor, which writes its start-up
    snapshot (own cache directory): (loaded model, bookings, snapshot path).
    """
    from innflow import tracking
    from innflow.serving import snapshot
    from innflow.serving.loading import load

    monkeypatch.setenv("INNFLOW_COMPILE", "1")
    monkeypatch.setenv("INNFLOW_CACHE_DIR", str(tmp_path))
    _install(library, registry[0].fast.booster.model_to_string())
    model = load(PRODUCTION, compile="build")  # as `innflow compile`: the library is cached
    assert model.predictor["state"] == "compiled", model.predictor
    store = tracking.store_identity(tracking.resolve_store(None))
    path = snapshot.path_for(store, PRODUCTION)
    assert path.exists()
    return model, registry[1], path


def test_a_snapshot_scores_every_booking_bit_identically_without_its_pipeline(
    snapshotted,
) -> None:
    from innflow.serving.loading import confirmed, start

    model, _, _ = snapshotted
    started = start(PRODUCTION)
    assert started.origin == "snapshot" and started.pipeline is None
    assert started.predictor["state"] == "compiled"
    assert (started.version, started.threshold) == (model.version, model.threshold)
    frame = pd.read_parquet(DATA)[model.columns]
    frame = frame[core.row_errors(frame, model.columns) == ""]
    proba, decisions = core.score(started, core.columns_of(frame, model.columns))
    expected = model.pipeline.predict_proba(frame)
    assert proba.tobytes() == expected.tobytes()
    assert (decisions == (expected[:, 1] >= model.threshold)).all()
    assert core.reasons(started, core.columns_of(frame.head(1), model.columns)) is None
    again = confirmed(PRODUCTION)  # the registry still has this version on the alias
    assert again is not None and again.origin == "registry"


def test_innflow_compile_reports_the_snapshot_it_wrote(snapshotted, cli) -> None:
    _, _, path = snapshotted
    path.unlink()
    done = cli("compile", "--model-uri", PRODUCTION, "--json")
    assert done.code == 0, done.stderr
    reported = json.loads(done.stdout)
    assert reported["state"] == "compiled" and reported["snapshot"] == str(path)
    assert path.exists()
    assert "json_rows" not in reported  # (JSON rows need no build: msgspec decodes them)


def test_starting_from_a_snapshot_imports_neither_mlflow_nor_scikit_learn(snapshotted) -> None:
    import subprocess
    import sys

    code = (
        "import sys, json\n"
        "from innflow.serving.app import create_app\n"
        "from innflow.serving.loading import RegistrySource\n"
        "source = RegistrySource('hotel-booking-cancellation', ['production=100'], [])\n"
        "app = create_app(source.start(), None, source)\n"
        "loaded = [m for m in ('mlflow', 'sklearn', 'lightgbm', 'skops') if m in sys.modules]\n"
        "print(json.dumps([app.state.service.router.live[0].model.origin, loaded]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["snapshot", []]


def test_a_snapshot_that_does_not_check_out_is_not_used(
    snapshotted, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from innflow.serving.loading import start

    _, _, path = snapshotted
    original = path.read_text()
    document = json.loads(original)
    document["example_probabilities"][0] = (0.123).hex()  # not what the model says
    path.write_text(json.dumps(document))
    # a refused snapshot's fallback load compiles nothing, so writes no fresh snapshot
    monkeypatch.setattr(accelerate, "accelerate", lambda *args, **kwargs: None)
    with caplog.at_level("WARNING", logger="innflow.serving"):
        assert start(PRODUCTION).origin == "registry"  # the logged model, loaded as usual
    assert "no longer scores as recorded" in caplog.text
    path.write_text(original)
    monkeypatch.setenv("INNFLOW_COMPILE", "1")
    assert start(PRODUCTION).origin == "snapshot"  # the good snapshot again
    monkeypatch.setenv("INNFLOW_COMPILE", "0")
    assert start(PRODUCTION).origin == "registry"  # compiled code turned off: not used
    monkeypatch.setenv("INNFLOW_COMPILE", "1")
    path.write_text("{not json")
    assert start(PRODUCTION).origin == "registry"
    # (a loaded library must not be rewritten in place: the snapshot's record of it is)
    document = json.loads(original)
    document["library_sha256"] = "0" * 64  # the library was rebuilt differently since
    path.write_text(json.dumps(document))
    caplog.clear()
    with caplog.at_level("WARNING", logger="innflow.serving"):
        assert start(PRODUCTION).origin == "registry"
    assert "changed since the snapshot was written" in caplog.text


def test_a_stale_snapshot_serves_at_once_then_the_version_the_alias_moved_to(
    snapshotted,
) -> None:
    from mlflow.tracking import MlflowClient

    from innflow.serving.loading import confirmed
    from innflow.serving.settings import ServiceSettings as Settings

    model, bookings, _ = snapshotted
    client = MlflowClient()
    staging = client.get_model_version_by_alias("hotel-booking-cancellation", "staging")
    source = _production_source()
    router = source.start()
    assert router.live[0].model.origin == "snapshot"
    client.set_registered_model_alias("hotel-booking-cancellation", "production", staging.version)
    try:
        assert confirmed(PRODUCTION) is None  # `innflow score` would load the new version
        with TestClient(create_app(router, Settings(), source)) as http:
            # the service confirms with the registry right after start
            health = _health_once(http, lambda h: h["confirmed"])
            assert health["confirmed"] and health["origins"] == {"production": "registry"}
            assert health["model_version"] == str(staging.version)
            answer = http.post("/predict?explain=true", json=_records(bookings.head(2)))
            assert answer.headers["X-Model-Version"] == str(staging.version)
    finally:
        client.set_registered_model_alias("hotel-booking-cancellation", "production", model.version)


def test_explanations_wait_for_the_logged_model_after_a_snapshot_start(snapshotted) -> None:
    from innflow.serving.settings import ServiceSettings as Settings

    model, bookings, _ = snapshotted
    source = _production_source()
    router = source.start()
    assert router.live[0].model.origin == "snapshot"
    with TestClient(create_app(router, Settings(), source)) as http:
        answer = http.post("/predict?explain=true", json=_records(bookings.head(2)))
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"]
        assert all(p["reasons"] for p in predictions)
        expected = model.pipeline.predict_proba(bookings.head(2))[:, 1]
        assert [p["probability"] for p in predictions] == expected.tolist()
        assert http.get("/health").json()["origins"] == {"production": "registry"}


def test_batch_scoring_uses_the_confirmed_snapshot_and_matches_the_pipeline(
    snapshotted, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from innflow import tracking
    from innflow.workflows.score import score_file

    model, _, path = snapshotted

    def refuse(uri: str):
        raise AssertionError(f"the pipeline of {uri} was loaded")

    load_for_serving = tracking.load_for_serving
    monkeypatch.setattr(tracking, "load_for_serving", refuse)
    # --no-check-source: the snapshot alone, no pipeline loaded; the alias confirmed through
    # MLflow (an embedded store's tables are never read directly).
    outcome = score_file(PRODUCTION, DATA, tmp_path / "scored.parquet", check_source=False)
    assert outcome.predictor == "compiled" and outcome.model_version == model.version
    _assert_scored_like_the_pipeline(model, tmp_path / "scored.parquet")
    assert "store_schema" not in json.loads(path.read_text())
    monkeypatch.setattr(tracking, "load_for_serving", load_for_serving)
    outcome = score_file(PRODUCTION, DATA, tmp_path / "again.parquet")
    assert outcome.predictor == "compiled" and outcome.model_version == model.version


def test_a_snapshot_starts_the_service_while_the_registry_is_down(
    snapshotted, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from innflow import tracking
    from innflow.serving import snapshot
    from innflow.serving.settings import ServiceSettings as Settings

    model, bookings, path = snapshotted
    with socket.socket() as s:  # a port nobody listens on: the tracking server is down
        s.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{s.getsockname()[1]}"
    document = json.loads(path.read_text())
    document["tracking_uri"] = down  # as the service wrote it when that server was up
    snapshot.path_for(down, PRODUCTION).write_text(json.dumps(document))
    previous = tracking.mlflow_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", down)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    source = _production_source()
    body = _records(bookings.head(3))
    try:
        with TestClient(create_app(source.start(), Settings(), source)) as http:
            answer = http.post("/invocations", json=body)
            assert answer.status_code == 200
            expected = model.pipeline.predict_proba(bookings.head(3))
            assert np.asarray(answer.json()["predictions"]).tobytes() == expected.tobytes()
            health = _health_once(http, lambda h: h["last_reload"] is not None, 30)
            assert health["last_reload"]["outcome"] == "failed"
            assert "cannot be reached" in health["last_reload"]["error"]
            assert not health["confirmed"] and health["origins"] == {"production": "snapshot"}
            assert http.post("/invocations", json=body).status_code == 200  # still serving
    finally:
        tracking.connect(previous)


def test_a_pinned_logged_model_scores_from_its_snapshot_without_the_registry(
    snapshotted, cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    from innflow import tracking
    from innflow.workflows.score import score_file

    model, _, _ = snapshotted
    pinned = MlflowClient().get_model_version("hotel-booking-cancellation", model.version).source
    assert pinned.startswith("models:/m-")
    assert cli("compile", "--model-uri", pinned).code == 0

    def refuse(*args: object) -> None:
        raise AssertionError("the tracking store was used")

    monkeypatch.setattr(tracking, "connect", refuse)
    monkeypatch.setattr(tracking, "load_for_serving", refuse)
    outcome = score_file(pinned, DATA, tmp_path / "scored.parquet")
    assert outcome.predictor == "compiled"
    _assert_scored_like_the_pipeline(model, tmp_path / "scored.parquet")
