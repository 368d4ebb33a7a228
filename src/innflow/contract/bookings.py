"""The hotel bookings' contract (bookings.yaml beside this module): innflow's default,
what every bookings file and every scoring request of the cancellation model is held to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from innflow.contract.columns import Contract, load, parse

PATH = Path(__file__).with_name("bookings.yaml")
BOOKINGS: Contract = load(PATH)


def of_model(metadata: dict[str, Any]) -> Contract:
    """The contract an innflow model was trained under, from its metadata: the bookings'
    for models logged before contracts rode along, or under the bundled one itself.
    """
    text = metadata.get("innflow_contract")
    if not text or text == BOOKINGS.text:
        return BOOKINGS
    return parse(text, "the model's contract")
