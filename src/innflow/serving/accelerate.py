"""Give a FastScorer the compiled tree predictor (serving/compiled.py) when it is safe.

The compiled library is derived from the logged model's own booster, never stored beside
it: the logged MLflow model stays the single source of truth, and the cache (keyed by the
sha256 of the booster's model string) only saves the compile. Before the scorer uses it,
the library must give LightGBM's probabilities bit for bit on the model's input example
and on rows that probe every split; otherwise it is refused, and the scorer keeps
LightGBM's predictor. Any failure (no compiler, a broken cache file, a model kind the
compiler does not express) does the same: the exact path never stops serving.

The service builds in a background thread (the exact path answers meanwhile); `innflow
score` uses a cached library only (a compile takes ~10 s, longer than scoring a file with
LightGBM) and `innflow compile` fills the cache, e.g. when an image is built or a version
is promoted. ``INNFLOW_COMPILE=0`` turns all of it off.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from innflow.serving import compiled

log = logging.getLogger("innflow.serving")

STATES = ("exact", "compiling", "compiled", "refused", "failed")


@dataclass
class PredictorStatus:
    """Which predictor scores and why: ``exact`` (LightGBM's), ``compiling`` (exact
    meanwhile), ``compiled`` (verified), ``refused`` (it differed) or ``failed``.
    """

    state: str = "exact"
    detail: str = ""
    library: str | None = None
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def enabled() -> bool:
    """False when ``INNFLOW_COMPILE`` is 0/false/no/off."""
    return os.environ.get("INNFLOW_COMPILE", "1").strip().lower() not in ("0", "false", "no", "off")


def accelerate(
    scorer: Any,
    examples: list[np.ndarray],
    background: bool,
    build: bool = True,
    directory: Path | None = None,
    then: Callable[[], None] | None = None,
) -> threading.Thread | None:
    """Load (or with ``build``, compile) the scorer's booster, verify it and swap it in.

    ``background`` runs it in a daemon thread (returned); otherwise it is done on return.
    The outcome is in ``scorer.status``; ``then`` runs after a verified swap (its failure
    is logged, never raised: the predictor is already serving).
    """
    booster = scorer.booster
    if booster is None or not enabled():
        scorer.status = PredictorStatus("exact", "not a binary LightGBM model" if enabled()
                                        else "INNFLOW_COMPILE is off")  # fmt: skip
        return None

    def run() -> None:
        started = time.perf_counter()
        try:
            scorer.status = _swap_in(scorer, booster, examples, build, directory)
        except Exception as e:  # the exact path keeps serving whatever went wrong here
            scorer.status = PredictorStatus("failed", f"{type(e).__name__}: {e}"[:500])
        scorer.status.seconds = round(time.perf_counter() - started, 3)
        level = logging.INFO if scorer.status.state in ("compiled", "exact") else logging.WARNING
        log.log(level, "compiled predictor: %s %s", scorer.status.state, scorer.status.detail)
        if then is not None and scorer.status.state == "compiled":
            try:
                then()
            except Exception as e:  # a cache that cannot be written costs only start time
                log.warning("after the compiled predictor: %s: %s", type(e).__name__, e)

    if not background:
        run()
        return None
    scorer.status = PredictorStatus("compiling", "LightGBM's predictor answers meanwhile")
    thread = threading.Thread(target=run, name="innflow-compile", daemon=True)
    thread.start()
    return thread


def _swap_in(
    scorer: Any, booster: Any, examples: list[np.ndarray], build: bool, directory: Path | None
) -> PredictorStatus:
    text = booster.model_to_string()
    try:
        forest = compiled.parse(text)
    except compiled.Unsupported as e:
        return PredictorStatus("exact", f"not compiled: {e}")
    library = compiled.cache_path(text, directory)
    trees = compiled.cached_library(
        library,
        (lambda: compiled.build(text, library, nice=True)) if build else None,
        lambda path: compiled.CompiledTrees(path, forest.features),
    )
    if trees is None:
        return PredictorStatus("exact", f"no compiled predictor cached at {library}")
    problem = compiled.verify(trees, booster, [*examples, compiled.probe_rows(forest)])
    if problem:
        return PredictorStatus("refused", problem, str(library))
    scorer.trees = trees  # one reference assignment: a request sees one predictor or the other
    return PredictorStatus("compiled", "bit-identical to LightGBM on the checks", str(library))
