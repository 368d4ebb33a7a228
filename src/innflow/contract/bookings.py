"""The hotel bookings' contract: what every file and every scoring request is held to.

Kept as the plain data a contract file holds (see ``contract.from_mapping``). An integer
with ``minimum: 0`` is a count; integers must fit 32 bits; nobody books more than ten
years ahead.
"""

from __future__ import annotations

from innflow.contract.columns import Contract, from_mapping

COUNT = {"type": "integer", "minimum": 0}
TEXT = {"type": "text"}
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]  # fmt: skip

DECLARED = {
    "columns": {
        "hotel": TEXT,
        "is_canceled": {"type": "integer", "categories": [0, 1]},
        "lead_time": {**COUNT, "maximum": 3653, "unit": "days"},
        "arrival_date_year": {"type": "integer"},
        "arrival_date_month": {
            "type": "text",
            "categories": MONTHS,
            "categories_are": "month names",
        },
        "arrival_date_week_number": {"type": "integer", "minimum": 1, "maximum": 53},
        "arrival_date_day_of_month": {"type": "integer", "minimum": 1, "maximum": 31},
        "stays_in_weekend_nights": COUNT,
        "stays_in_week_nights": COUNT,
        "adults": COUNT,
        "children": {**COUNT, "nullable": True},
        "babies": COUNT,
        "meal": TEXT,
        "country": {"type": "text", "nullable": True},
        "market_segment": TEXT,
        "distribution_channel": TEXT,
        "is_repeated_guest": {"type": "integer", "categories": [0, 1]},
        "previous_cancellations": COUNT,
        "previous_bookings_not_canceled": COUNT,
        "reserved_room_type": TEXT,
        "assigned_room_type": TEXT,
        "booking_changes": COUNT,
        "deposit_type": TEXT,
        "agent": {**COUNT, "nullable": True},
        "company": {**COUNT, "nullable": True},
        "days_in_waiting_list": COUNT,
        "customer_type": TEXT,
        "adr": {"type": "number"},
        "required_car_parking_spaces": COUNT,
        "total_of_special_requests": COUNT,
        "reservation_status": TEXT,
        "reservation_status_date": {"type": "date"},
    },
    "dates": {
        "arrival date": {
            "year": "arrival_date_year",
            "month": "arrival_date_month",
            "day": "arrival_date_day_of_month",
            "years": [1900, 2100],
        },
    },
}
BOOKINGS: Contract = from_mapping(DECLARED)
