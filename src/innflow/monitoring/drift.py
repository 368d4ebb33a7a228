"""Drift of one batch against the reference profile: PSI per feature with the usual bands,
plus the Wasserstein distance for numbers and the Jensen-Shannon distance for categories
(both from scipy).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from innflow.monitoring.profile import (
    MISSING,
    OTHER,
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    bin_index,
    level_shares,
)

# Empty bins would make PSI infinite; the usual floor.
FLOOR = 1e-4


def psi(expected: np.ndarray, actual: np.ndarray, floor: float = FLOOR) -> float:
    """Population stability index: sum of (a - e) * ln(a / e) over bins (shares floored).

    It is the symmetrised Kullback-Leibler divergence KL(a||e) + KL(e||a).
    """
    e = np.clip(np.asarray(expected, dtype="float64"), floor, None)
    a = np.clip(np.asarray(actual, dtype="float64"), floor, None)
    return float(np.sum((a - e) * np.log(a / e)))


def band(value: float, moderate: float = 0.10, shift: float = 0.25) -> str:
    """PSI band: ``stable`` below 0.1, ``moderate`` below 0.25, else ``shift``."""
    return "shift" if value >= shift else "moderate" if value >= moderate else "stable"


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's (or the prediction's) drift, with the shares behind it for plots."""

    feature: str
    kind: str
    psi: float
    band: str
    statistic: str
    distance: float
    bins: list[str]
    reference: list[float]
    current: list[float]

    def to_dict(self) -> dict:
        """JSON form."""
        return asdict(self)


def _bin_labels(edges: list[float]) -> list[str]:
    if not edges:
        return ["all"]
    inner = [f"({a:.4g}, {b:.4g}]" for a, b in itertools.pairwise(edges)]
    return [f"<= {edges[0]:.4g}", *inner, f"> {edges[-1]:.4g}"]


def numeric_shares(profile: NumericProfile, values: np.ndarray) -> np.ndarray:
    """Shares of ``values`` in the profile's bins, then the share of nulls."""
    values = np.asarray(values, dtype="float64")
    null = np.isnan(values)
    counts = np.bincount(
        bin_index(np.asarray(profile.edges), values[~null]), minlength=len(profile.shares)
    )
    return np.append(counts, null.sum()) / max(len(values), 1)


def numeric_drift(
    name: str, profile: NumericProfile, values: np.ndarray, moderate: float, shift: float
) -> FeatureDrift:
    """PSI over the reference quantile bins (nulls as one more bin) and the Wasserstein
    distance between the reference quantile sketch and the batch, in reference standard
    deviations so that features are comparable.
    """
    reference = np.append(np.asarray(profile.shares) * (1 - profile.missing), profile.missing)
    current = numeric_shares(profile, values)
    value = psi(reference, current)
    present = np.asarray(values, dtype="float64")
    present = present[~np.isnan(present)]
    distance = float("nan")
    if len(present) and profile.quantiles:
        distance = wasserstein_distance(profile.quantiles, present) / (profile.std or 1.0)
    return FeatureDrift(
        name,
        "numeric",
        value,
        band(value, moderate, shift),
        "wasserstein_std",
        float(distance),
        [*_bin_labels(profile.edges), MISSING],
        reference.tolist(),
        current.tolist(),
    )


def categorical_shares(profile: CategoricalProfile, values: pd.Series) -> np.ndarray:
    """Shares of the profile's levels in ``values``, then of every other level."""
    found = level_shares(values)
    kept = found.reindex(profile.levels, fill_value=0.0).to_numpy(dtype="float64")
    return np.append(kept, max(0.0, 1.0 - kept.sum()))


def categorical_drift(
    name: str, profile: CategoricalProfile, values: pd.Series, moderate: float, shift: float
) -> FeatureDrift:
    """PSI over the reference levels (+ other) and the Jensen-Shannon distance (base 2)."""
    reference = np.append(profile.shares, profile.other)
    current = categorical_shares(profile, values)
    value = psi(reference, current)
    distance = float(jensenshannon(reference, current, base=2))
    return FeatureDrift(
        name,
        "categorical",
        value,
        band(value, moderate, shift),
        "jensen_shannon",
        distance,
        [*profile.levels, OTHER],
        reference.tolist(),
        current.tolist(),
    )


def feature_drift(
    profile: ReferenceProfile, batch: pd.DataFrame, moderate: float = 0.10, shift: float = 0.25
) -> list[FeatureDrift]:
    """Drift of every profiled feature present in ``batch``, largest PSI first."""
    found = [
        numeric_drift(c, p, batch[c].to_numpy(dtype="float64"), moderate, shift)
        for c, p in profile.numeric.items()
    ] + [categorical_drift(c, p, batch[c], moderate, shift) for c, p in profile.categorical.items()]
    return sorted(found, key=lambda d: d.psi, reverse=True)


def prediction_drift(
    profile: ReferenceProfile, scores: np.ndarray, moderate: float = 0.10, shift: float = 0.25
) -> FeatureDrift:
    """Drift of the predicted probabilities against the held-out reference scores."""
    return numeric_drift("prediction", profile.prediction, scores, moderate, shift)
