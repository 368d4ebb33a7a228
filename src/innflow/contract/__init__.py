"""The data contract: each column's type, nullability, domain and role, the event time and
the task, declared once as data (a YAML file per data set).

File validation (``data.validate``), the leakage guard, the split, the service's request
decoder (serving/decoding.py), its vectorised check (``contract.checks``) and its OpenAPI
schema are all derived from a ``Contract``; none of them restates a rule. The bookings'
contract is ``contract.bookings.BOOKINGS``.
"""

from innflow.contract.columns import (
    ROLES,
    TASKS,
    Column,
    Contract,
    DateRule,
    from_mapping,
    load,
    parse,
)

__all__ = ["ROLES", "TASKS", "Column", "Contract", "DateRule", "from_mapping", "load", "parse"]
