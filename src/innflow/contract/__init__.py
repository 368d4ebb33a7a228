"""The data contract: each column's type, nullability and domain, declared once as data.

File validation (``data.validate``), the service's request decoder (serving/decoding.py),
its vectorised check (``contract.checks``) and its OpenAPI schema are all derived from a
``Contract``; none of them restates a rule. The bookings' contract is
``contract.bookings.BOOKINGS``.
"""

from innflow.contract.columns import Column, Contract, DateRule, from_mapping

__all__ = ["Column", "Contract", "DateRule", "from_mapping"]
