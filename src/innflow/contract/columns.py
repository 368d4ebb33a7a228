"""What a contract declares (columns, their rules and roles, the event time, the task) and
how it is read from a YAML file; an unknown key, type or role is refused, so a typo cannot
drop a rule.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from innflow.errors import ConfigError

TYPES = ("text", "integer", "number", "date")  # date: text holding a calendar date
ROLES = ("feature", "target", "outcome", "known_later", "time_part", "identifier")
TASKS = ("binary", "regression")
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
    role: str = "feature"  # one of ROLES

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
    """A data set's columns, in order, its cross-column date rules, and what a model does
    with it: the task, the target and each column's role.
    """

    columns: Mapping[str, Column]
    dates: tuple[DateRule, ...] = ()
    name: str = "data"
    task: str = "binary"
    target: str | None = None
    event_time: DateRule | str | None = None  # a date rule, a date column, or none
    exclude: tuple[str, ...] = ()  # left out of models unless a config says otherwise
    text: str | None = field(default=None, compare=False, repr=False)  # the file, as read

    @cached_property
    def sha256(self) -> str | None:
        """The fingerprint of the file the contract was read from, recorded with runs."""
        return hashlib.sha256(self.text.encode()).hexdigest() if self.text is not None else None

    @cached_property
    def ranged(self) -> tuple[Column, ...]:
        """The columns with a range or closed set beyond their type's, in order."""
        return tuple(column for column in self.columns.values() if column.has_domain)

    def having(self, role: str) -> tuple[str, ...]:
        """The columns of one role, in order."""
        return tuple(name for name, column in self.columns.items() if column.role == role)

    @cached_property
    def inputs(self) -> tuple[str, ...]:
        """The columns a model may be given (known-later ones only when configured)."""
        refused = ("target", "outcome", "identifier")
        return tuple(n for n, c in self.columns.items() if c.role not in refused)


_TOP_KEYS = {"name", "task", "target", "event_time", "exclude", "columns", "extends"}
_COLUMN_KEYS = {"type", "nullable", "minimum", "maximum", "unit", "categories",
                "categories_are", "role"}  # fmt: skip
_DATE_KEYS = {"name", "year", "month", "day", "years"}


def from_mapping(declared: Mapping[str, Any]) -> Contract:
    """A contract from plain data, as ``yaml.safe_load`` gives a contract file (see
    contract/bookings.yaml for every key).
    """
    if not isinstance(declared, Mapping):
        raise ConfigError("contract: must be a mapping with a 'columns' key")
    unknown = set(declared) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"contract: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    declared_columns = declared.get("columns")
    if not isinstance(declared_columns, Mapping) or not declared_columns:
        raise ConfigError("contract: 'columns' must map each column's name to its rules")
    columns = {str(name): _column(str(name), rules) for name, rules in declared_columns.items()}
    task = declared.get("task", "binary")
    if task not in TASKS:
        raise ConfigError(f"contract: task must be one of {', '.join(TASKS)}, not {task!r}")
    target = _target(declared.get("target"), columns, task)
    event_time: DateRule | str | None = None
    dates: tuple[DateRule, ...] = ()
    when = declared.get("event_time")
    if isinstance(when, str):
        if when not in columns or columns[when].type != "date":
            raise ConfigError(f"contract: event_time {when!r} must be a declared date column")
        event_time = when
    elif when is not None:
        event_time = _date_rule(when, columns)
        dates = (event_time,)
    exclude = declared.get("exclude") or []
    if not isinstance(exclude, list) or not set(exclude) <= set(columns):
        strays = sorted(set(exclude) - set(columns)) if isinstance(exclude, list) else exclude
        raise ConfigError(f"contract: exclude must list declared columns; not {strays}")
    name = str(declared.get("name", "data"))
    return Contract(columns, dates, name, str(task), target, event_time, tuple(exclude))


def _column(name: str, rules: Any) -> Column:
    if not isinstance(rules, Mapping):
        raise ConfigError(f"contract column {name!r}: its rules must be a mapping (type: ...)")
    wrong = set(rules) - _COLUMN_KEYS
    if wrong:
        keys = ", ".join(sorted(map(str, wrong)))
        raise ConfigError(f"contract column {name!r}: unknown key(s) {keys}")
    if rules.get("type") not in TYPES:
        raise ConfigError(f"contract column {name!r}: type must be one of {', '.join(TYPES)}")
    role = rules.get("role", "feature")
    if role not in ROLES:
        raise ConfigError(f"contract column {name!r}: role must be one of {', '.join(ROLES)}, "
                          f"not {role!r}")  # fmt: skip
    bounds: list[Any] = [rules.get(k) for k in ("minimum", "maximum")]
    if any(b is not None and (isinstance(b, bool) or not isinstance(b, (int, float)))
           for b in bounds):  # fmt: skip
        raise ConfigError(f"contract column {name!r}: minimum and maximum must be numbers")
    if None not in bounds and bounds[0] > bounds[1]:
        raise ConfigError(f"contract column {name!r}: minimum {bounds[0]} is over maximum "
                          f"{bounds[1]}")  # fmt: skip
    categories = rules.get("categories")
    if categories is not None and (not isinstance(categories, list) or not categories):
        raise ConfigError(f"contract column {name!r}: categories must be a non-empty list")
    return Column(
        name, rules["type"], bool(rules.get("nullable", False)), bounds[0], bounds[1],
        rules.get("unit"), tuple(categories) if categories is not None else None,
        rules.get("categories_are"), role,
    )  # fmt: skip


def _target(target: Any, columns: dict[str, Column], task: str) -> str | None:
    """The target column, checked against its role and the task."""
    marked = [n for n, c in columns.items() if c.role == "target"]
    if target is None and not marked:
        return None  # a contract for checking files only: no model can be trained on it
    if target is not None and target not in columns:
        raise ConfigError(f"contract: target {target!r} is not a declared column")
    if target is not None and columns[target].role not in ("target", "feature"):
        raise ConfigError(f"contract: target {target!r} is declared role: "
                          f"{columns[target].role}")  # fmt: skip
    others = [n for n in marked if n != target]
    if (target is None and len(marked) > 1) or (target is not None and others):
        raise ConfigError(
            f"contract: one target only; {', '.join(marked)} are marked "
            "role: target" + (f" beside target {target!r}" if target else "")
        )
    name = str(target if target is not None else marked[0])
    column = columns[name]
    if column.role != "target":  # named by `target:` alone: its role follows
        columns[name] = column = replace(column, role="target")
    if task == "regression" and column.type not in ("integer", "number"):
        raise ConfigError(f"contract: a regression target must be a number column; "
                          f"{name!r} is {column.type}")  # fmt: skip
    if task == "binary" and (column.type != "integer" or column.categories != (0, 1)):
        raise ConfigError(f"contract: a binary target must be an integer column with "
                          f"categories [0, 1]; {name!r} is not")  # fmt: skip
    if column.nullable:
        raise ConfigError(f"contract: target {name!r} cannot be nullable")
    return name


def _date_rule(parts: Any, columns: Mapping[str, Column]) -> DateRule:
    if not isinstance(parts, Mapping) or not {"year", "month", "day", "years"} <= set(parts) \
            or not set(parts) <= _DATE_KEYS:  # fmt: skip
        keys = ", ".join(sorted(_DATE_KEYS - {"name"}))
        raise ConfigError(f"contract: event_time needs the keys {keys} (and an optional "
                          "name), or the name of a date column")  # fmt: skip
    year, month, day = (str(parts[k]) for k in ("year", "month", "day"))
    missing = [c for c in (year, month, day) if c not in columns]
    if missing:
        raise ConfigError(f"contract: event_time names undeclared column(s) "
                          f"{', '.join(missing)}")  # fmt: skip
    if columns[year].type != "integer" or columns[day].type != "integer":
        raise ConfigError(f"contract: event_time's year {year!r} and day {day!r} must be "
                          "integer columns")  # fmt: skip
    names = columns[month].categories
    if names is None or len(names) != 12:
        raise ConfigError(f"contract: event_time's month {month!r} must declare the twelve "
                          "month names, in calendar order, as its categories")  # fmt: skip
    span = parts["years"]
    if (not isinstance(span, list) or len(span) != 2
            or not all(isinstance(y, int) and 1 <= y <= 9999 for y in span)
            or span[0] > span[1]):  # fmt: skip
        raise ConfigError(f"contract: event_time years must be [first, last] with "
                          f"1 <= first <= last <= 9999, not {span!r}")  # fmt: skip
    low, high = columns[day].minimum, columns[day].maximum
    if (low is not None and low > 31) or (high is not None and high < 1):
        raise ConfigError(f"contract: event_time's day {day!r} allows no day of a month "
                          f"(1..31)")  # fmt: skip
    name = str(parts.get("name", "event time"))
    return DateRule(name, year, month, day, (span[0], span[1]))


def load(path: Path) -> Contract:
    """The contract in a YAML file, every problem one line."""
    import yaml

    try:
        text = Path(path).read_text()
        declared = yaml.safe_load(text)
    except FileNotFoundError as e:
        raise ConfigError(f"contract file not found: {path}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"contract file {path} cannot be read: {e}") from e
    except yaml.YAMLError as e:
        first = str(e).strip().splitlines()[0]
        raise ConfigError(f"contract file {path} is not valid YAML: {first}") from e
    try:
        if isinstance(declared, Mapping) and "extends" in declared:
            declared = _extended(Path(path), declared)
            # What is fingerprinted and logged is the whole contract, not the few lines
            # that differ from the one it extends.
            text = f"# {path}, resolved\n" + yaml.safe_dump(declared, sort_keys=False)
        return replace(from_mapping(declared), text=text)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e


def parse(text: str, where: str = "contract") -> Contract:
    """A resolved contract from its text, as logged with a run and carried in its model."""
    import yaml

    try:
        declared = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{where} is not valid YAML: {str(e).strip().splitlines()[0]}") from e
    if isinstance(declared, Mapping) and "extends" in declared:
        raise ConfigError(f"{where}: a logged contract is resolved (no extends)")
    try:
        return replace(from_mapping(declared), text=text)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from e


def _extended(path: Path, declared: Mapping[str, Any]) -> dict[str, Any]:
    """A contract written as changes to another (``extends: bookings``, the bundled one,
    or a path relative to this file): its keys replace the base's, and each of its column
    entries is merged into the base's rules for that column (``is_canceled: {role:
    outcome}``); a column the base lacks must be declared whole.
    """
    import yaml

    base_name = declared["extends"]
    if not isinstance(base_name, str) or not base_name:
        raise ConfigError("contract: extends must name a contract file or 'bookings'")
    base_path = (
        Path(__file__).with_name("bookings.yaml") if base_name == "bookings"
        else (path.parent / base_name)
    )  # fmt: skip
    try:
        base = yaml.safe_load(base_path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"contract: extends {base_name!r}, which cannot be read ({e})") from e
    if not isinstance(base, Mapping) or "extends" in base:
        raise ConfigError(f"contract: extends {base_name!r}, which must be a whole contract "
                          "(one level of extends)")  # fmt: skip
    merged = {**base, **{k: v for k, v in declared.items() if k not in ("extends", "columns")}}
    columns = {name: dict(rules) for name, rules in (base.get("columns") or {}).items()}
    changes = declared.get("columns") or {}
    if not isinstance(changes, Mapping):
        raise ConfigError("contract: 'columns' must map each column's name to its rules")
    for name, rules in changes.items():
        if not isinstance(rules, Mapping):
            raise ConfigError(f"contract column {name!r}: its rules must be a mapping")
        columns[name] = {**columns.get(name, {}), **rules}
    merged["columns"] = columns
    return merged


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
