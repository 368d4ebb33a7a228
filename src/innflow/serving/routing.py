"""A/B and shadow routing: which loaded model answers a request.

Sticky by a request key (the `X-Routing-Key` header, else the first booking itself), so the
same booking always meets the same variant; shadow variants score every request for the
prediction log and are never returned.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from innflow import data
from innflow.errors import ConfigError
from innflow.serving.core import LoadedModel


@dataclass(frozen=True)
class Variant:
    """One model behind the service: a traffic share, or a shadow."""

    name: str
    model: LoadedModel
    weight: float = 1.0
    shadow: bool = False


class Router:
    """Deterministic weighted choice of the live variant for a key."""

    def __init__(self, variants: list[Variant]) -> None:
        live = [v for v in variants if not v.shadow]
        if not live or any(v.weight < 0 for v in live) or sum(v.weight for v in live) <= 0:
            raise ConfigError("routing needs at least one live variant with a positive weight")
        names = [v.name for v in variants]
        if len(set(names)) != len(names):
            raise ConfigError(f"variant names must be unique: {names}")
        self.variants = variants
        self.live = live
        self.shadows = [v for v in variants if v.shadow]
        total = sum(v.weight for v in live)
        bounds, running = [], 0.0
        for variant in live:
            running += variant.weight / total
            bounds.append(running)
        self._bounds = bounds
        # Every variant's input columns and its contract's columns: a request field outside
        # them is a typo; inside them, a variant that does not take it ignores it.
        self.known_columns = frozenset(data.SCHEMA).union(
            *(v.model.columns for v in variants), *(v.model.contract.columns for v in variants)
        )

    @classmethod
    def single(cls, model: LoadedModel) -> Router:
        """All traffic to one model."""
        return cls([Variant("main", model)])

    def choose(self, key: str) -> Variant:
        """The live variant for ``key``: the same key always gets the same variant."""
        point = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
        for variant, bound in zip(self.live, self._bounds, strict=True):
            if point < bound:
                return variant
        return self.live[-1]
