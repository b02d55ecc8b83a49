"""Quantities as people and JSON read them: one rule each, used by every package.

- ``format_quantity``: text for invoices, alerts and API messages - thousands separators, no
  exponent, no trailing zeros (``1234567`` -> ``1,234,567``; ``150.500`` -> ``150.5``).
- ``json_number``: a ``Decimal`` as a JSON number - an int when whole, else a float.

Money (minor units, half-up rounding, ``12.34 USD``) is ``billing.money``.
"""

from __future__ import annotations

from decimal import Decimal


def format_quantity(quantity: Decimal | int | None) -> str:
    """``1234567`` -> ``1,234,567``; ``150.500`` -> ``150.5`` (no float); ``None`` -> ``""``."""
    if quantity is None:
        return ""
    quantity = Decimal(quantity)
    if quantity == quantity.to_integral_value():
        return f"{int(quantity):,}"
    return f"{quantity.normalize():,f}"


def json_number(value):
    """A ``Decimal`` as a JSON number (int when whole, else float); other values unchanged."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value.normalize())
    return value
