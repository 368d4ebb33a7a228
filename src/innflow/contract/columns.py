"""What a contract declares (columns and their rules) and how it is read from plain data.

``from_mapping`` takes what ``yaml.safe_load`` gives for a contract file, so a data set's
rules can live in YAML; it refuses an unknown key or type, so a typo cannot drop a rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from innflow.errors import ConfigError

TYPES = ("text", "integer", "number", "date")  # date: text holding a calendar date
# Beyond this no value is a booking, and date arithmetic would overflow: an integer
# column's values must fit 32 bits.
INTEGER_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class Column:
    """One column's rules: its type, whether it may be null, its range or closed set."""

    name: str
    type: str
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    unit: str | None = None  # said with a bound: "are over 3653 days"
    categories: tuple[Any, ...] | None = None  # the only values allowed
    categories_are: str | None = None  # what they are, in messages: "month names"

    @cached_property
    def kind(self) -> str:
        """How the check judges the values: ``str``, ``float``, ``int``, ``count`` (a
        non-negative integer) or ``binary`` (0 or 1).
        """
        if self.type in ("text", "date"):
            return "str"
        if self.type == "number":
            return "float"
        if self.categories == (0, 1):
            return "binary"
        return "count" if self.minimum == 0 else "int"

    @cached_property
    def bounds(self) -> tuple[float | None, float | None, str] | None:
        """The range checked once the types are right: (low, high, the problem said of
        a value outside it), or None. A count's floor of 0 is its type's ("are negative").
        """
        low = None if self.kind == "count" else self.minimum
        high = self.maximum
        if low is None and high is None:
            return None
        unit = f" {self.unit}" if self.unit else ""
        if low is not None and high is not None:
            return low, high, f"outside {_number(low)}..{_number(high)}{unit}"
        if high is not None:
            return None, high, f"are over {_number(high)}{unit}"
        assert low is not None
        return low, None, f"are under {_number(low)}{unit}"

    @cached_property
    def has_domain(self) -> bool:
        """Whether a range or closed set beyond its type's is checked."""
        return self.bounds is not None or (self.categories is not None and self.kind != "binary")

    @cached_property
    def ranks(self) -> dict[Any, float]:
        """Each category's position (0, 1, ...), for looking values up in one pass."""
        return {value: float(i) for i, value in enumerate(self.categories or ())}

    def json_schema(self) -> dict[str, Any]:
        """The column's values in JSON Schema: type, null when allowed, range, set."""
        json_type = {"text": "string", "date": "string", "integer": "integer",
                     "number": "number"}[self.type]  # fmt: skip
        field: dict[str, Any] = {"type": [json_type, "null"] if self.nullable else json_type}
        if self.minimum is not None:
            field["minimum"] = self.minimum
        if self.maximum is not None:
            field["maximum"] = self.maximum
        if self.categories is not None:
            field["enum"] = list(self.categories)
        if self.type == "date":
            field["format"] = "date"
        return field


@dataclass(frozen=True)
class DateRule:
    """Columns that together make a calendar date (the month column's categories are the
    month names in calendar order), each row's a real date in ``years``.
    """

    name: str  # the errors' "column": "arrival date"
    year: str
    month: str
    day: str
    years: tuple[int, int]


@dataclass(frozen=True)
class Contract:
    """A data set's columns, in order, and its cross-column date rules."""

    columns: Mapping[str, Column]
    dates: tuple[DateRule, ...] = ()

    @cached_property
    def ranged(self) -> tuple[Column, ...]:
        """The columns with a range or closed set beyond their type's, in order."""
        return tuple(column for column in self.columns.values() if column.has_domain)


_COLUMN_KEYS = {"type", "nullable", "minimum", "maximum", "unit", "categories",
                "categories_are"}  # fmt: skip
_DATE_KEYS = {"year", "month", "day", "years"}


def from_mapping(declared: Mapping[str, Any]) -> Contract:
    """A contract from plain data: ``{"columns": {name: {"type": ..., ...}}, "dates":
    {name: {"year": column, "month": column, "day": column, "years": [first, last]}}}``.
    """
    unknown = set(declared) - {"columns", "dates"}
    if unknown:
        raise ConfigError(f"contract: unknown key(s) {', '.join(sorted(unknown))}")
    columns = {}
    for name, rules in declared["columns"].items():
        wrong = set(rules) - _COLUMN_KEYS
        if wrong:
            keys = ", ".join(sorted(wrong))
            raise ConfigError(f"contract column {name!r}: unknown key(s) {keys}")
        if rules.get("type") not in TYPES:
            raise ConfigError(f"contract column {name!r}: type must be one of {', '.join(TYPES)}")
        categories = rules.get("categories")
        columns[name] = Column(
            name, rules["type"], bool(rules.get("nullable", False)), rules.get("minimum"),
            rules.get("maximum"), rules.get("unit"),
            tuple(categories) if categories is not None else None, rules.get("categories_are"),
        )  # fmt: skip
    dates = []
    for name, parts in declared.get("dates", {}).items():
        if set(parts) != _DATE_KEYS:
            keys = ", ".join(sorted(_DATE_KEYS))
            raise ConfigError(f"contract date {name!r} needs exactly the keys {keys}")
        missing = [parts[k] for k in ("year", "month", "day") if parts[k] not in columns]
        if missing or columns[parts["month"]].categories is None:
            raise ConfigError(f"contract date {name!r}: its columns must be declared, the "
                              "month with its names as categories")  # fmt: skip
        first, last = parts["years"]
        dates.append(DateRule(name, parts["year"], parts["month"], parts["day"], (first, last)))
    return Contract(columns, tuple(dates))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
