"""Give a FastScorer the compiled tree predictor (serving/compiled.py) when it is safe.

The compiled library is derived from the logged model's own booster, never stored beside
it: the logged MLflow model stays the single source of truth, and the cache (keyed by the
sha256 of the booster's model string) only saves the compile. It is built ahead, by
`innflow compile` (in CI, an image's build stage, a job after a promotion), never in a
serving process: services and `innflow score` only load a library that `innflow compile`
installed read-only (``compiled.load_refusal``). Before a scorer uses it, the library must
give LightGBM's probabilities bit for bit on the model's input example and on rows that
probe every split; otherwise it is refused, and the scorer keeps LightGBM's predictor, as
it does on any failure (no library, a broken or writable file, a model kind the compiler
does not express): the exact path never stops serving. ``INNFLOW_COMPILE=0`` turns it off.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from innflow.serving import compiled
from innflow.serving.settings import CompileSettings

log = logging.getLogger("innflow.serving")

STATES = ("exact", "compiled", "refused", "failed")


@dataclass
class PredictorStatus:
    """Which predictor scores and why: ``exact`` (LightGBM's), ``compiled`` (verified),
    ``refused`` (it differed, or was not safe to load) or ``failed``.
    """

    state: str = "exact"
    detail: str = ""
    library: str | None = None
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def enabled() -> bool:
    """False when ``INNFLOW_COMPILE`` is 0/false/no/off (serving/settings.py)."""
    return CompileSettings().compile


def accelerate(
    scorer: Any,
    examples: list[np.ndarray],
    build: bool = False,
    directory: Path | None = None,
    then: Callable[[], None] | None = None,
) -> None:
    """Load the scorer's cached library (``build``: compile it first, `innflow compile`),
    verify it and swap it in. The outcome is in ``scorer.status`` and logged, a refusal
    with the reason; ``then`` runs after a verified swap (its failure is logged, never
    raised: the predictor is already serving).
    """
    booster = scorer.booster
    if booster is None or not enabled():
        scorer.status = PredictorStatus("exact", "not a binary LightGBM model" if enabled()
                                        else "INNFLOW_COMPILE is off")  # fmt: skip
        return
    started = time.perf_counter()
    try:
        scorer.status = _swap_in(scorer, booster, examples, build, directory)
    except compiled.UnsafeLibrary as e:
        scorer.status = PredictorStatus("refused", f"not loaded: {e}")
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
        (lambda: compiled.build(text, library)) if build else None,
        lambda path: compiled.CompiledTrees(path, forest.features),
    )
    if trees is None:
        return PredictorStatus(
            "exact", f"no compiled predictor at {library} (`innflow compile` builds it)"
        )
    problem = compiled.verify(trees, booster, [*examples, compiled.probe_rows(forest)])
    if problem:
        return PredictorStatus("refused", problem, str(library))
    scorer.trees = trees  # one reference assignment: a request sees one predictor or the other
    return PredictorStatus("compiled", "bit-identical to LightGBM on the checks", str(library))
