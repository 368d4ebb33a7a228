"""The engineered booking-time features as plain numpy arithmetic.

One definition for the pipeline's transformer (features.py), the serving fast path and
its start-up snapshot, so all of them compute bit for bit the same numbers. No
scikit-learn here: a service starting from a snapshot never imports it.
"""

from __future__ import annotations

import numpy as np

ENGINEERED = (
    "total_nights", "weekend_share", "guests", "adr_per_person", "revenue", "lead_time_log",
    "arrival_weekday", "arrival_day_of_year", "booking_weekday", "booking_month",
    "has_children", "has_agent", "has_company", "previous_cancel_share",
)  # fmt: skip

ENGINEERING_INPUTS = (
    "stays_in_weekend_nights", "stays_in_week_nights", "adults", "children", "babies", "adr",
    "lead_time", "previous_cancellations", "previous_bookings_not_canceled", "agent", "company",
)  # fmt: skip


def engineered(
    values: dict[str, np.ndarray], calendar: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The engineered features from float arrays of the raw inputs (NaN where missing) and
    the four calendar features. One definition, used by the transformer and the serving
    fast path, so both compute bit for bit the same numbers.
    """
    weekend, week = values["stays_in_weekend_nights"], values["stays_in_week_nights"]
    adults, babies, adr = values["adults"], values["babies"], values["adr"]
    children = np.nan_to_num(values["children"])
    nights = weekend + week
    prev_cancel = values["previous_cancellations"]
    prev_total = prev_cancel + values["previous_bookings_not_canceled"]
    features = {
        "total_nights": nights,
        "weekend_share": np.divide(weekend, nights, out=np.zeros_like(nights), where=nights > 0),
        "guests": adults + children + babies,
        "adr_per_person": adr / np.maximum(adults + children, 1.0),
        "revenue": adr * nights,
        "lead_time_log": np.log1p(np.maximum(values["lead_time"], 0.0)),
        **calendar,
        "has_children": ((children + babies) > 0).astype("float64"),
        "has_agent": (~np.isnan(values["agent"])).astype("float64"),
        "has_company": (~np.isnan(values["company"])).astype("float64"),
        "previous_cancel_share": np.divide(
            prev_cancel, prev_total, out=np.zeros_like(prev_total), where=prev_total > 0
        ),
    }
    return {name: features[name] for name in ENGINEERED}
