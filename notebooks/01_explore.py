# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The bookings: what cancels, what drifts, what leaks
#
# Exploration only: nothing here trains or logs a model. The data is loaded and validated
# by `innflow.data` (the same checks as `innflow data check`), and the leakage audit is
# `innflow.evaluation.audit`, the one the training run logs. Run it as a tracked run with
# `innflow notebook run notebooks/01_explore.py` from the repository root.

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from innflow import config, data
from innflow.evaluation import audit

# %% tags=["parameters"]
data_path = "data/hotel_bookings.parquet"  # CI runs it on tests/data/bookings_sample.parquet
audit_min_support = 500  # bookings a condition needs before the audit reports it

# %%
bookings = data.load_data(Path(data_path))
arrival = data.arrival_dates(bookings)
canceled = bookings[data.TARGET]
display(pd.Series(data.summarize(bookings)).to_frame("value"))


# %% [markdown]
# ## Cancellations by arrival month, hotel, lead time and deposit type


# %%
def rate(by: pd.Series | str) -> pd.DataFrame:
    """Cancellation rate and support per group."""
    return bookings.groupby(by, observed=True)[data.TARGET].agg(rate="mean", bookings="size")


monthly = rate(arrival.dt.to_period("M").rename("arrival month"))
fig, ax = plt.subplots(figsize=(9, 3))
ax.plot(monthly.index.to_timestamp(), monthly["rate"], marker="o")
ax.set_ylabel("cancellation rate")
ax.set_title("Cancellations by arrival month")
plt.show()

# %%
lead_buckets = pd.cut(
    bookings["lead_time"],
    [-1, 7, 30, 90, 180, 365, 10_000],
    labels=["0-7", "8-30", "31-90", "91-180", "181-365", ">365"],
).rename("lead time (days)")
for table in (rate("hotel"), rate(lead_buckets), rate("deposit_type")):
    display(table.style.format({"rate": "{:.1%}", "bookings": "{:,}"}))

# %% [markdown]
# Longer lead times cancel far more often, and almost every non-refundable booking is
# cancelled: the deposit policy is known when the booking is made, so it stays a feature
# (see the audit below), but its near-perfect separation is worth remembering.

# %% [markdown]
# ## Drift from 2015 to 2017
#
# The test window is 2017; the model learns from 2015-2016. What changed:

# %%
year = arrival.dt.year.rename("arrival year")
drift = pd.DataFrame(
    {
        "bookings": bookings.groupby(year).size(),
        "cancellation rate": canceled.groupby(year).mean(),
        "median lead time": bookings["lead_time"].groupby(year).median(),
        "mean adr": bookings["adr"].groupby(year).mean(),
        "share Online TA": (bookings["market_segment"] == "Online TA").groupby(year).mean(),
        "share Non Refund": (bookings["deposit_type"] == "Non Refund").groupby(year).mean(),
    }
)
display(drift.round(3))

# %% [markdown]
# Prices rise year on year and the mix moves towards online travel agents: a model that
# used the arrival year would learn a trend it cannot extrapolate, which is why
# `arrival_date_year` is excluded by default and the split is by arrival date.

# %% [markdown]
# ## Why the leaky columns are leaky
#
# `reservation_status` *is* the outcome, recorded after the fact:

# %%
display(pd.crosstab(bookings["reservation_status"], canceled, margins=True))

# %% [markdown]
# `reservation_status_date` is the date of that outcome: for a cancellation, the day it
# was cancelled (usually long before arrival); for a stay, the check-out day. Its distance
# to the arrival date gives the label away:

# %%
status_days = (pd.to_datetime(bookings["reservation_status_date"]) - arrival).dt.days
display(status_days.groupby(canceled).describe().round(1))

# %% [markdown]
# Both are refused by innflow whatever the config says. The "known later" columns can
# change after booking: the room actually assigned differs from the one reserved mostly
# for guests who showed up.

# %%
room_changed = (bookings["assigned_room_type"] != bookings["reserved_room_type"]).rename(
    "assigned room differs"
)
display(rate(room_changed).style.format({"rate": "{:.1%}"}))
print("known-later columns, excluded unless allowed:", ", ".join(data.KNOWN_LATER))

# %% [markdown]
# The leakage audit looks for any booking-time condition that separates the label almost
# perfectly on large support. It is the audit every training run logs.

# %%
defaults = config.load()
findings = audit.leakage_audit(
    bookings,
    [c for c in data.INPUT_COLUMNS if c not in data.KNOWN_LATER],
    used=set(data.input_columns(defaults.features)),
    min_support=audit_min_support,
    max_purity=defaults.evaluation.audit_max_purity,
)
display(findings)

# %% [markdown]
# `required_car_parking_spaces > 0` almost never cancels: a wish made at booking time
# would not be that decisive, so it is more likely filled in at check-in, and the default
# config excludes it. `deposit_type == 'Non Refund'` is flagged as well but kept: the
# deposit policy is set when booking.
