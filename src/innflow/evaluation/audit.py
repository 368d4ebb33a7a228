"""Leakage audit: conditions on a raw column that separate the label almost perfectly.

A booking-time attribute rarely decides a cancellation on its own. When one does on large
support (0.0% cancellations among 7,416 bookings with a parking space), the likelier story
is that it was filled in afterwards (at check-in), which makes it a "known later"
candidate. The audit reports the evidence; the config decides (``features.exclude``).
"""

from __future__ import annotations

import pandas as pd

from innflow.contract import Contract
from innflow.data import CONTRACT


def _conditions(
    frame: pd.DataFrame, column: str, contract: Contract
) -> list[tuple[str, pd.Series]]:
    kind = contract.columns[column].kind
    series = frame[column]
    if kind == "str":
        return [(f"{column} == {value!r}", series == value) for value in series.dropna().unique()]
    if kind in ("count", "binary"):
        return [(f"{column} == 0", series == 0), (f"{column} > 0", series > 0)]
    return []


def leakage_audit(
    frame: pd.DataFrame, columns: list[str], used: set[str], min_support: int, max_purity: float,
    contract: Contract = CONTRACT,
) -> pd.DataFrame:  # fmt: skip
    """Every condition with at least ``min_support`` rows whose positive rate (the
    bookings: cancellation rate) is at most ``1 - max_purity`` or at least ``max_purity``.
    """
    y = frame[contract.target]
    rows = []
    for column in columns:
        for condition, mask in _conditions(frame, column, contract):
            support = int(mask.sum())
            if support < min_support:
                continue
            rate = float(y[mask].mean())
            if rate <= 1 - max_purity or rate >= max_purity:
                rows.append(
                    {
                        "column": column,
                        "condition": condition,
                        "support": support,
                        "cancel_rate": rate,
                        "used_by_model": column in used,
                    }
                )
    columns_out = ["column", "condition", "support", "cancel_rate", "used_by_model"]
    return pd.DataFrame(rows, columns=columns_out).sort_values("support", ascending=False)
