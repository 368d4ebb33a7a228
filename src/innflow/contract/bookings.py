"""The hotel bookings' contract (bookings.yaml beside this module): innflow's default,
what every bookings file and every scoring request of the cancellation model is held to.
"""

from __future__ import annotations

from pathlib import Path

from innflow.contract.columns import Contract, load

PATH = Path(__file__).with_name("bookings.yaml")
BOOKINGS: Contract = load(PATH)
