"""The compiled tree predictor: bit-identical to the pipeline or refused, cached, and
never in the way of the exact path (no compiler, broken cache, still compiling)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from innflow.serving import accelerate, compiled, core
from innflow.serving.app import create_app
from innflow.serving.fastpath import FastScorer

DATA = Path(__file__).resolve().parents[2] / "data" / "hotel_bookings.parquet"


@pytest.fixture
def scorer(registered, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """A fresh scorer of the served LightGBM model, compiling on, own cache directory."""
    monkeypatch.setenv("INNFLOW_COMPILE", "1")
    monkeypatch.setenv("INNFLOW_CACHE_DIR", str(tmp_path))
    model = registered[0]
    return FastScorer(model.pipeline), model


@pytest.fixture(scope="module")
def library(registered, tmp_path_factory) -> Path:
    """The served model compiled once for the module (in a cache of its own)."""
    booster = registered[0].fast.booster
    text = booster.model_to_string()
    return compiled.build(text, compiled.cache_path(text, tmp_path_factory.mktemp("cache")))


def _install(library: Path | bytes, text: str) -> Path:
    """Put a library (or bytes) where the cache looks for ``text``'s (INNFLOW_CACHE_DIR),
    as a new file: overwriting a loaded library in place would crash the process.
    """
    target = compiled.cache_path(text)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_suffix(".staged")
    staged.write_bytes(library if isinstance(library, bytes) else library.read_bytes())
    os.replace(staged, target)
    return target


def test_compiled_predictor_is_bit_identical_to_predict_proba_on_every_booking(
    scorer, library: Path
) -> None:
    fast, model = scorer
    _install(library, fast.booster.model_to_string())
    accelerate.accelerate(fast, [], background=False, build=False)
    assert fast.status.state == "compiled", fast.status
    frame = pd.read_parquet(DATA)[model.columns]
    frame = frame[core.row_errors(frame, model.columns) == ""]
    expected = model.pipeline.predict_proba(frame)
    for threads in (1, 2):  # 2 threads split the rows: the same numbers
        model.pipeline.set_params(model__n_jobs=threads)
        got = fast.predict_proba(core.columns_of(frame, model.columns))
        assert got.tobytes() == expected.tobytes()
    model.pipeline.set_params(model__n_jobs=1)
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
    accelerate.accelerate(fast, [], background=False, build=False)
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
    accelerate.accelerate(fast, [], background=False, build=True)
    assert fast.status.state == "compiled" and fast.status.library == str(target)
    assert target.stat().st_mtime_ns == before  # loaded, not compiled again
    # a new cache directory: the dynamic loader keeps libraries it loaded by path
    monkeypatch.setenv("INNFLOW_CACHE_DIR", str(tmp_path / "broken"))
    _install(b"not a shared library", text)
    again = FastScorer(model.pipeline)
    accelerate.accelerate(again, [], background=False, build=False)
    assert again.status.state == "failed" and again.trees is None  # score: exact path
    accelerate.accelerate(again, [], background=False, build=True)
    assert again.status.state == "compiled"  # the service rebuilds it


def test_without_a_compiler_the_exact_path_keeps_serving(
    scorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, _ = scorer
    monkeypatch.setenv("CC", "/nonexistent/cc")
    accelerate.accelerate(fast, [], background=False, build=True)
    assert fast.status.state == "failed" and fast.trees is None
    monkeypatch.setenv("INNFLOW_COMPILE", "0")
    accelerate.accelerate(fast, [], background=False)
    assert fast.status.state == "exact" and "INNFLOW_COMPILE" in fast.status.detail


def test_the_service_answers_while_compiling_then_reports_the_compiled_predictor(
    registered, library: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("INNFLOW_CACHE_DIR", str(tmp_path))
    release, real_build = threading.Event(), compiled.build

    def slow_build(text: str, target: Path, nice: bool = False) -> Path:
        assert release.wait(60)
        return real_build(text, target, nice)

    monkeypatch.setattr(compiled, "build", slow_build)
    model, bookings, _, _ = registered
    fast = FastScorer(model.pipeline)
    loaded = core.LoadedModel(model.pipeline, model.columns, model.threshold,
                              model.description, fast, model.example)  # fmt: skip
    monkeypatch.setenv("INNFLOW_COMPILE", "1")
    thread = accelerate.accelerate(fast, [], background=True)
    assert thread is not None
    client = TestClient(create_app(loaded))
    assert client.get("/health").json()["predictors"]["main"]["state"] == "compiling"
    body = {"dataframe_split": json.loads(bookings.to_json(orient="split", index=False))}
    expected = model.pipeline.predict_proba(bookings)
    response = client.post("/invocations", json=body)
    assert response.status_code == 200
    assert np.asarray(response.json()["predictions"]).tobytes() == expected.tobytes()
    release.set()
    thread.join(120)
    health = client.get("/health").json()["predictors"]["main"]
    assert health["state"] == "compiled", health
    assert client.get("/metadata").json()["predictors"]["main"]["state"] == "compiled"
    assert 'state="compiled"' in client.get("/metrics").text
    response = client.post("/invocations", json=body)
    assert np.asarray(response.json()["predictions"]).tobytes() == expected.tobytes()


def test_other_model_kinds_and_objectives_keep_the_exact_path(registered) -> None:
    with pytest.raises(compiled.Unsupported):
        compiled.parse("tree\nversion=v4\nnum_class=3\nobjective=multiclass num_class:3\n")
    text = registered[0].fast.booster.model_to_string()
    with pytest.raises(compiled.Unsupported):
        compiled.parse(text.replace("objective=binary sigmoid:1", "objective=regression"))
