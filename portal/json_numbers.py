"""Numbers read from the database, as the portal's JSON writes them."""

from __future__ import annotations

from decimal import Decimal


def json_number(value):
    """A Decimal as a JSON number (int when whole, else float); other values unchanged."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value.normalize())
    return value
