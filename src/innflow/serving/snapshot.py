"""Start-up snapshots: what a model's compiled fast path needs, so a service answers before
importing MLflow, scikit-learn or LightGBM (ADR 3). A cache, never a source: derived from
the logged model, refused when the library's sha256 or the example's probabilities differ,
and confirmed against the registry after start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from innflow.serving import accelerate, compiled, core
from innflow.serving.fastpath import FastScorer

FORMAT = 1  # bump when the document changes: part of the key
log = logging.getLogger("innflow.serving")


def path_for(tracking_uri: str, model_uri: str, directory: Path | None = None) -> Path:
    """The snapshot file of a model URI (as asked, alias included) in one tracking store."""
    key = hashlib.sha256(f"{FORMAT}\n{tracking_uri}\n{model_uri}".encode()).hexdigest()[:32]
    return (directory or compiled.cache_dir()) / "snapshots" / f"{key}.json"


def save(
    model: core.LoadedModel, tracking_uri: str, model_uri: str, directory: Path | None = None
) -> Path | None:
    """Write the snapshot of a model whose compiled predictor is verified (else None)."""
    fast = model.fast
    if fast is None or fast.trees is None or model.example is None or model.pipeline is None:
        return None
    example = model.example[model.columns]
    proba, _ = core.score(model, core.columns_of(example, model.columns))
    library = Path(fast.trees.library)
    document = {
        "format": FORMAT,
        "tracking_uri": tracking_uri,
        "model_uri": model_uri,
        "description": model.description,
        "columns": model.columns,
        "threshold": model.threshold,
        "tables": fast.tables(),
        "library": str(library),
        "library_sha256": _sha256(library),
        "features": fast.trees.features,
        "example": {c: example[c].tolist() for c in model.columns},
        "example_probabilities": [float(p).hex() for p in proba[:, 1]],
    }
    target = path_for(tracking_uri, model_uri, directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=target.parent, delete=False, suffix=".tmp") as f:
        json.dump(document, f, default=str)
    os.chmod(f.name, 0o644)  # readable by a service running as another user, as the library
    os.replace(f.name, target)  # a reader sees the old snapshot or the new, never half
    return target


def load(
    tracking_uri: str, model_uri: str, directory: Path | None = None
) -> core.LoadedModel | None:
    """The model from its snapshot, or None when there is none, it does not check out (why
    is logged) or ``INNFLOW_COMPILE`` is off: the caller then loads the logged model.
    """
    path = path_for(tracking_uri, model_uri, directory)
    if not accelerate.enabled() or not path.exists():
        return None
    try:
        document = json.loads(path.read_text())
        problem = _refusal(document, tracking_uri, model_uri)
        if problem is None:
            model = _model(document)
            problem = _example_problem(model, document["example_probabilities"])
    except Exception as e:  # a damaged cache file only costs the usual start
        problem = f"{type(e).__name__}: {e}"
    if problem is not None:
        log.warning("start-up snapshot %s not used: %s", path, problem)
        return None
    return model


def _refusal(document: dict[str, Any], tracking_uri: str, model_uri: str) -> str | None:
    if document.get("format") != FORMAT:
        return f"format {document.get('format')!r}, expected {FORMAT}"
    if (document["tracking_uri"], document["model_uri"]) != (tracking_uri, model_uri):
        return "written for another store or model URI"
    library = Path(document["library"])
    if not library.exists():
        return f"compiled library {library} is gone"
    if _sha256(library) != document["library_sha256"]:
        return f"compiled library {library} changed since the snapshot was written"
    return compiled.load_refusal(library)


def _model(document: dict[str, Any]) -> core.LoadedModel:
    trees = compiled.CompiledTrees(Path(document["library"]), int(document["features"]))
    fast = FastScorer.from_tables(document["tables"], trees)
    example = pd.DataFrame(document["example"])
    return core.LoadedModel(
        None, list(document["columns"]), float(document["threshold"]),
        document["description"], fast, example, origin="snapshot",
    )  # fmt: skip


def _example_problem(model: core.LoadedModel, recorded: list[str]) -> str | None:
    """None when the input example scores bit for bit as it did through the logged model."""
    assert model.example is not None
    proba, _ = core.score(model, core.columns_of(model.example, model.columns))
    expected = np.array([float.fromhex(p) for p in recorded])
    if proba.shape[0] != expected.shape[0] or not np.array_equal(proba[:, 1], expected):
        return "its input example no longer scores as recorded"
    return None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
