"""The contract as data: read from plain mappings (as a YAML file gives them), refused when
it names an unknown rule, and the one source of checks, messages and JSON Schema for a
data set that is not the bookings.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from innflow import contract
from innflow.contract import checks
from innflow.contract.bookings import BOOKINGS
from innflow.errors import ConfigError

WINE = contract.from_mapping(
    {
        "columns": {
            "colour": {"type": "text", "categories": ["red", "white"]},
            "quality": {"type": "integer", "categories": [3, 4, 5, 6, 7, 8, 9]},
            "alcohol": {"type": "number", "minimum": 8, "unit": "%"},
            "sugar": {"type": "number", "nullable": True, "minimum": 0, "maximum": 70},
            "vintage": {"type": "integer", "minimum": 1900},
            "bottled_year": {"type": "integer"},
            "bottled_month": {
                "type": "text",
                "categories": [
                    "Jan",
                    "Feb",
                    "Mar",
                    "Apr",
                    "May",
                    "Jun",
                    "Jul",
                    "Aug",
                    "Sep",
                    "Oct",
                    "Nov",
                    "Dec",
                ],
            },
            "bottled_day": {"type": "integer", "minimum": 1, "maximum": 31},
        },
        "event_time": {
            "name": "bottling date",
            "year": "bottled_year",
            "month": "bottled_month",
            "day": "bottled_day",
            "years": [1950, 2050],
        },
    }
)


def test_another_data_sets_rules_are_checked_and_said_from_its_declaration() -> None:
    frame = pd.DataFrame(
        {
            "colour": ["red", "rosé", "white"],
            "quality": [5, 2, 9],
            "alcohol": [12.5, 7.0, np.inf],
            "sugar": [None, 80.0, 1.0],
            "vintage": [2001, 1850, 2019],
            "bottled_year": [2003, 2020, 2021],
            "bottled_month": ["Feb", "Feb", "Jan"],
            "bottled_day": [29, 3, 31],
        }
    )
    found = {(c, p): np.flatnonzero(m).tolist()
             for c, p, m in checks.row_problems(WINE, frame, tuple(frame.columns))}  # fmt: skip
    assert found == {
        ("colour", "are not one of red or white ('rosé')"): [1],
        ("quality", "are not 3, 4, 5, 6, 7, 8 or 9"): [1],
        ("alcohol", "are infinite"): [2],
        ("sugar", "outside 0..70"): [1],
        ("vintage", "are under 1900"): [1],
        ("bottling date", "do not form a valid date"): [0],
    }
    assert WINE.columns["alcohol"].bounds == (8, None, "are under 8 %")
    numbers = set(frame.select_dtypes("number").columns)
    # the service's form (float64 and object arrays): the same verdict
    arrays = {c: frame[c].to_numpy("float64" if c in numbers else object) for c in frame.columns}
    assert {(c, p) for c, p, _ in checks.row_problems(WINE, arrays, tuple(arrays))} == set(found)


def test_the_json_schema_is_the_declaration() -> None:
    assert WINE.columns["sugar"].json_schema() == {
        "type": ["number", "null"], "minimum": 0, "maximum": 70}  # fmt: skip
    assert WINE.columns["colour"].json_schema() == {"type": "string", "enum": ["red", "white"]}
    assert BOOKINGS.columns["is_canceled"].json_schema() == {"type": "integer", "enum": [0, 1]}
    assert BOOKINGS.columns["reservation_status_date"].json_schema() == {
        "type": "string", "format": "date"}  # fmt: skip


def test_kinds_follow_from_the_declared_rules() -> None:
    kinds = {name: column.kind for name, column in BOOKINGS.columns.items()}
    assert kinds["is_canceled"] == "binary" and kinds["adults"] == "count"
    assert kinds["arrival_date_year"] == "int" and kinds["adr"] == "float"
    assert kinds["reservation_status_date"] == kinds["hotel"] == "str"


MONTHS = {"type": "text", "categories": list("abcdefghijkl")}


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ({"columns": {"a": {"type": "text"}}, "owner": "x"}, "unknown key"),
        ({"columns": {"a": {"type": "txt"}}}, "type must be one of"),
        ({"columns": {"a": {"type": "integer", "minimun": 0}}}, "unknown key(s) minimun"),
        ({"columns": {"a": {"type": "text", "role": "label"}}}, "role must be one of"),
        ({"columns": {"a": {"type": "integer", "minimum": 5, "maximum": 1}}}, "is over maximum"),
        ({"columns": {"a": {"type": "text"}}, "task": "ranking"}, "task must be one of"),
        ({"columns": {"a": {"type": "text"}}, "target": "b"}, "is not a declared column"),
        (
            {"columns": {"a": {"type": "text"}}, "task": "regression", "target": "a"},
            "a regression target must be a number column; 'a' is text",
        ),
        (
            {"columns": {"a": {"type": "number"}}, "task": "binary", "target": "a"},
            "a binary target must be an integer column with categories [0, 1]",
        ),
        (
            {
                "columns": {"a": {"type": "number", "role": "outcome"}},
                "target": "a",
                "task": "regression",
            },
            "target 'a' is declared role: outcome",
        ),
        (
            {
                "columns": {
                    "a": {"type": "number", "role": "target"},
                    "b": {"type": "number", "role": "target"},
                },
                "task": "regression",
            },
            "one target only",
        ),
        (
            {
                "columns": {"y": {"type": "integer"}},
                "event_time": {"year": "y", "month": "m", "day": "y", "years": [1, 2]},
            },
            "names undeclared column(s) m",
        ),
        ({"columns": {"y": {"type": "text"}}, "event_time": {"year": "y"}}, "needs the keys"),
        (
            {
                "columns": {"y": {"type": "integer"}, "m": MONTHS, "d": {"type": "integer"}},
                "event_time": {"year": "y", "month": "m", "day": "d", "years": [2100, 1900]},
            },
            "1 <= first <= last <= 9999",
        ),
        (
            {
                "columns": {
                    "y": {"type": "integer"},
                    "m": MONTHS,
                    "d": {"type": "integer", "minimum": 40},
                },
                "event_time": {"year": "y", "month": "m", "day": "d", "years": [1900, 2100]},
            },
            "allows no day of a month",
        ),
        (
            {
                "columns": {
                    "y": {"type": "integer"},
                    "m": {"type": "text"},
                    "d": {"type": "integer"},
                },
                "event_time": {"year": "y", "month": "m", "day": "d", "years": [1900, 2100]},
            },
            "must declare the twelve month names",
        ),
        ({"columns": {"t": {"type": "text"}}, "event_time": "t"}, "must be a declared date column"),
    ],
)
def test_a_bad_declaration_is_refused_with_its_reason(declared: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        contract.from_mapping(declared)


def test_the_bookings_contract_gives_each_column_its_role() -> None:
    assert BOOKINGS.task == "binary" and BOOKINGS.target == "is_canceled"
    assert BOOKINGS.having("outcome") == ("reservation_status", "reservation_status_date")
    assert set(BOOKINGS.having("known_later")) == {
        "assigned_room_type", "booking_changes", "days_in_waiting_list", "country"}  # fmt: skip
    assert "is_canceled" not in BOOKINGS.inputs and "country" in BOOKINGS.inputs
    assert BOOKINGS.having("time_part") == (
        "arrival_date_year", "arrival_date_month", "arrival_date_day_of_month")  # fmt: skip


def test_a_contract_file_is_read_and_its_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "shop.yaml"
    path.write_text("task: regression\ntarget: price\nevent_time: sold_on\ncolumns:\n"
                    "  price: {type: number, minimum: 0}\n  sold_on: {type: date}\n"
                    "  order_id: {type: text, role: identifier}\n")  # fmt: skip
    shop = contract.load(path)
    assert (shop.task, shop.target, shop.event_time) == ("regression", "price", "sold_on")
    assert shop.inputs == ("sold_on",) and shop.columns["price"].role == "target"
    path.write_text("columns: [price\n")
    with pytest.raises(ConfigError, match=r"shop.yaml is not valid YAML"):
        contract.load(path)
    with pytest.raises(ConfigError, match=r"contract file not found"):
        contract.load(tmp_path / "none.yaml")
