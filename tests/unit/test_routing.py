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


def test_a_booking_has_one_sticky_key_whatever_the_body_format() -> None:
    """Without X-Routing-Key the key is the first booking: the same booking sent as JSON
    (12 or 12.0), CSV or Arrow (whose numbers arrive as floats) gets the same variant.
    """
    import io
    import json

    import pyarrow as pa

    from innflow.serving import parsing

    booking = {"hotel": "City Hotel", "lead_time": 12, "adr": 99.5, "children": None}
    table = pa.Table.from_pylist([booking])
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    bodies = {
        "json": ("application/json", json.dumps({"dataframe_records": [booking]}).encode()),
        "json floats": (
            "application/json",
            json.dumps({"inputs": [{**booking, "lead_time": 12.0}]}).encode(),
        ),
        "csv": ("text/csv", b"hotel,lead_time,adr,children\nCity Hotel,12,99.5,\n"),
        "arrow": (parsing.ARROW_STREAM, sink.getvalue()),
    }
    keys = {
        name: json.dumps(parsing.parse(kind, body).first_row(), sort_keys=True, default=str)
        for name, (kind, body) in bodies.items()
    }
    assert len(set(keys.values())) == 1, keys
