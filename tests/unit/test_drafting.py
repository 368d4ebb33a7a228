"""`contract init`'s drafts: what a data set of another shape shows becomes a contract that
reads back and accepts the very file it was drafted from; what cannot be decided is said.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from innflow import contract, data
from innflow.contract.drafting import draft
from innflow.errors import ConfigError, DataValidationError


@pytest.fixture
def shop() -> pd.DataFrame:
    """A retailer's sales: nothing like the bookings (other columns, a date column)."""
    rng = np.random.default_rng(3)
    n = 120
    return pd.DataFrame({
        "order_id": [f"o{i}" for i in range(n)],
        "sold_on": pd.date_range("2021-01-01", periods=n, freq="D"),
        "store": rng.choice(["north", "south"], n),
        "units": rng.integers(0, 40, n),
        "discount": np.where(np.arange(n) % 5 == 0, np.nan, rng.random(n)),
        "returned": rng.integers(0, 2, n),
        "price": rng.gamma(2.0, 30.0, n),
    })  # fmt: skip


def test_a_draft_reads_back_and_accepts_its_own_file(shop: pd.DataFrame, tmp_path) -> None:
    text = draft(shop, "sales/shop.parquet", "price", time_column="sold_on")
    declared = yaml.safe_load(text)
    assert declared["name"] == "shop" and declared["task"] == "regression"
    assert declared["event_time"] == "sold_on"
    columns = declared["columns"]
    assert columns["sold_on"] == {"type": "date"}
    assert columns["units"] == {"type": "integer", "minimum": 0}
    assert columns["discount"] == {"type": "number", "minimum": 0, "nullable": True}
    assert columns["returned"] == {"type": "integer", "categories": [0, 1]}
    assert columns["price"]["role"] == "target"
    assert "seen 0..39" in text and "an identifier?" in text and "known_later" in text
    path = tmp_path / "shop.yaml"
    path.write_text(text)
    rules = contract.load(path)
    checked = data.validate(shop, contract=rules)
    assert len(checked) == len(shop) and checked["sold_on"].iloc[0] == "2021-01-01"
    times = data.event_times(checked, rules)
    assert times is not None and times.iloc[-1] == pd.Timestamp("2021-04-30")
    shop.loc[3, "units"] = -1  # the drafted minimum is a rule from now on
    with pytest.raises(DataValidationError, match="column 'units': 1 rows are negative"):
        data.validate(shop, contract=rules)


def test_a_zero_one_target_drafts_a_binary_task(shop: pd.DataFrame) -> None:
    declared = yaml.safe_load(draft(shop, "shop.csv", "returned"))
    assert declared["task"] == "binary" and "event_time" not in declared
    assert declared["columns"]["returned"] == {
        "type": "integer", "categories": [0, 1], "role": "target"}  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "nope"}, "--target 'nope' is not a column"),
        ({"target": "store", "task": "regression"}, "a regression target must be numbers"),
        ({"target": "store"}, "holds neither 0/1 labels nor numbers"),
        ({"target": "units", "task": "binary"}, "a binary target must hold 0 and 1 only"),
        ({"target": "discount"}, "target 'discount' has 24 empty rows"),
        ({"target": "price", "time_column": "store"}, "holds no dates (text)"),
        ({"target": "price", "task": "ranking"}, "--task must be one of binary, regression"),
    ],
)
def test_what_cannot_be_drafted_is_said(shop: pd.DataFrame, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        draft(shop, "shop.csv", **kwargs)


def test_a_contract_without_event_time_splits_at_random(shop: pd.DataFrame) -> None:
    from innflow.config import SplitConfig

    rules = contract.from_mapping(yaml.safe_load(draft(shop, "shop.csv", "price")))
    parts = data.split(data.validate(shop, contract=rules), SplitConfig(), 7, rules)
    assert parts.strategy == "random" and sum(parts.sizes().values()) == len(shop)
