from __future__ import annotations

import pytest

from innflow.errors import ConfigError
from innflow.serving.core import LoadedModel
from innflow.serving.routing import Router, Variant


def _model(version: str) -> LoadedModel:
    return LoadedModel(pipeline=None, columns=[], threshold=0.5, description={"version": version})


def test_same_key_always_gets_the_same_variant() -> None:
    router = Router([Variant("production", _model("1"), 0.9), Variant("staging", _model("2"), 0.1)])
    for key in ("booking-1", "booking-2", "x"):
        assert len({router.choose(key).name for _ in range(50)}) == 1


def test_split_ratio_follows_the_weights() -> None:
    router = Router([Variant("production", _model("1"), 90), Variant("staging", _model("2"), 10)])
    chosen = [router.choose(f"booking-{i}").name for i in range(5000)]
    share = chosen.count("staging") / len(chosen)
    assert 0.08 < share < 0.12


def test_shadow_is_never_chosen_and_bad_routes_are_refused() -> None:
    router = Router(
        [Variant("production", _model("1")), Variant("staging", _model("2"), shadow=True)]
    )
    assert {router.choose(str(i)).name for i in range(500)} == {"production"}
    assert [v.name for v in router.shadows] == ["staging"]
    with pytest.raises(ConfigError, match="live variant"):
        Router([Variant("staging", _model("2"), shadow=True)])
    with pytest.raises(ConfigError, match="unique"):
        Router([Variant("a", _model("1")), Variant("a", _model("2"))])
