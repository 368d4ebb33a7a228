"""A draft contract from a data file: what the data show (types, nulls, ranges, levels),
written as YAML with comments where a person must decide (which columns are known only
later, which ranges are rules and which merely seen).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from innflow.contract.columns import TASKS, from_mapping
from innflow.errors import ConfigError

LEVELS_SHOWN = 12  # a text column with at most this many levels has them in a comment
MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August",
               "September", "October", "November", "December")  # fmt: skip

HEADER = """\
# Data contract drafted by `innflow contract init` from {source} ({rows:,} rows).
# Read every column before you use it: the types, nulls and minimums below are what the
# data showed, not rules anybody decided; the seen ranges and levels are comments only.
#
# Decide for each column what it is when a prediction is made (role):
#   feature      known at prediction time (the default)
#   known_later  changed or filled in afterwards: used only with
#                features.allow_known_later (the run is then tagged)
#   outcome      the outcome itself, or recorded because of it: never a feature
#   identifier   names a row: never a feature
# A column that is filled in after the event is the commonest leak: mark it.
"""


def draft(
    frame: pd.DataFrame, source: str, target: str, task: str | None = None,
    time_column: str | None = None,
) -> str:  # fmt: skip
    """The contract's YAML text for ``frame``; checked by reading it back."""
    if target not in frame.columns:
        raise ConfigError(f"--target {target!r} is not a column of {source}")
    if time_column is not None and time_column not in frame.columns:
        raise ConfigError(f"--time-column {time_column!r} is not a column of {source}")
    if task is not None and task not in TASKS:
        raise ConfigError(f"--task must be one of {', '.join(TASKS)}, not {task!r}")
    task = task or _task_of(frame[target], target)
    columns = {name: _column(frame[name]) for name in frame.columns}
    _as_target(columns[target], frame[target], target, task)
    if time_column is not None and columns[time_column]["type"] != "date":
        raise ConfigError(f"--time-column {time_column!r} holds no dates "
                          f"({columns[time_column]['type']})")  # fmt: skip
    lines = [HEADER.format(source=source, rows=len(frame))]
    lines.append(f"name: {json.dumps(_name(source))}")
    lines.append(f"task: {task}                # binary | regression")
    lines.append(f"target: {json.dumps(target)}")
    if time_column is not None:
        lines.append(f"event_time: {json.dumps(time_column)}  # the time split goes by it")
    else:
        lines.append("# event_time: COLUMN        # a date column; without one the split is random")
    lines.append("columns:")
    for name, rules in columns.items():
        comment = rules.pop("#", "")
        body = ", ".join(f"{k}: {json.dumps(v)}" for k, v in rules.items())
        lines.append(f"  {json.dumps(name)}: {{{body}}}" + (f"  # {comment}" if comment else ""))
    text = "\n".join(lines) + "\n"
    import yaml

    from_mapping(yaml.safe_load(text))  # a draft that does not read back is a bug here
    return text


def _name(source: str) -> str:
    stem = source.rsplit("/", 1)[-1].split(".", 1)[0]
    return stem or "data"


def _task_of(target: pd.Series, name: str) -> str:
    values = set(pd.unique(target.dropna()))
    if values <= {0, 1} and not pd.api.types.is_bool_dtype(target):
        return "binary"
    if pd.api.types.is_numeric_dtype(target) and not pd.api.types.is_bool_dtype(target):
        return "regression"
    raise ConfigError(f"target {name!r} holds neither 0/1 labels nor numbers; say --task and "
                      "recode it (a binary target is 0 and 1)")  # fmt: skip


def _as_target(rules: dict, series: pd.Series, name: str, task: str) -> None:
    if series.isna().any():
        raise ConfigError(f"target {name!r} has {int(series.isna().sum())} empty rows; a "
                          "target is never null")  # fmt: skip
    if task == "regression" and rules["type"] not in ("integer", "number"):
        raise ConfigError(f"a regression target must be numbers; {name!r} holds {rules['type']}")
    if task == "binary" and not set(pd.unique(series)) <= {0, 1}:
        raise ConfigError(f"a binary target must hold 0 and 1 only; {name!r} does not")
    rules.pop("minimum", None)
    rules["role"] = "target"
    if task == "binary":
        rules.update(type="integer", categories=[0, 1])
        rules.pop("#", None)


def _column(series: pd.Series) -> dict:
    """What the data show of one column: its rules, and a comment of what was seen."""
    rules: dict = {}
    present = series.dropna()
    if pd.api.types.is_datetime64_any_dtype(series) or _all_dates(present):
        rules["type"] = "date"
        if len(present):
            seen = pd.to_datetime(present)
            rules["#"] = f"seen {seen.min().date()}..{seen.max().date()}"
    elif pd.api.types.is_bool_dtype(series):
        rules.update(type="integer", categories=[0, 1])
        rules["#"] = "stored as true/false: files must hold 0 and 1"
    elif pd.api.types.is_numeric_dtype(series):
        numbers = present.to_numpy(dtype="float64")
        whole = bool(len(numbers)) and bool(
            np.all(np.isfinite(numbers) & (numbers == np.floor(numbers)))
        )
        rules["type"] = "integer" if whole and np.abs(numbers).max() < 2**31 else "number"
        if whole and len(numbers) and set(np.unique(numbers)) <= {0.0, 1.0}:
            rules["categories"] = [0, 1]
            return {**rules, "nullable": True} if series.isna().any() else rules
        if len(numbers) and numbers.min() >= 0:
            rules["minimum"] = 0
        if len(numbers):
            low, high = (_plain(x, whole) for x in (numbers.min(), numbers.max()))
            rules["#"] = f"seen {low}..{high}"
    else:
        rules["type"] = "text"
        levels = pd.unique(present.astype(str))
        if set(levels) <= set(MONTH_NAMES) and len(levels) > 1:
            rules["categories"] = list(MONTH_NAMES)
            rules["categories_are"] = "month names"
        elif len(levels) <= LEVELS_SHOWN:
            rules["#"] = "seen " + ", ".join(sorted(map(str, levels)))
        else:
            rules["#"] = f"{len(levels):,} levels"
    if series.isna().any():
        rules["nullable"] = True
    keyed = rules["type"] in ("text", "integer") and rules.get("categories") is None
    if keyed and len(series) > 1 and len(present) == len(series) and series.is_unique:
        rules["#"] = "unique in every row: an identifier? (role: identifier)"
    return rules


def _all_dates(values: pd.Series) -> bool:
    """Text that is all ISO dates (2017-03-01, optionally with a time)."""
    if not len(values) or not (
        pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)
    ):
        return False
    if not all(isinstance(v, str) for v in values.iloc[:1000]):
        return False
    parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
    return bool(parsed.notna().all())


def _plain(value: float, whole: bool) -> str:
    return str(int(value)) if whole else f"{value:.6g}"
