"""Money: Decimal amounts, ISO 4217 minor units, one half-up rounding per invoice line."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 minor units (digits after the decimal point).
MINOR_UNITS: dict[str, int] = {
    "USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "NGN": 2, "CAD": 2, "AUD": 2, "CHF": 2,
    "SEK": 2, "NOK": 2, "DKK": 2, "INR": 2, "BRL": 2, "MXN": 2, "KRW": 0, "BHD": 3,
}  # fmt: skip


def minor_unit(currency: str) -> int:
    try:
        return MINOR_UNITS[currency.upper()]
    except KeyError:
        raise ValueError(
            f"unknown currency {currency!r}; known: {', '.join(MINOR_UNITS)}"
        ) from None


def to_minor(amount: Decimal, currency: str) -> int:
    """Round ``amount`` half-up to the currency's minor unit and return it as an integer."""
    digits = minor_unit(currency)
    scaled = (amount * (Decimal(10) ** digits)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(scaled)


def format_minor(amount: int, currency: str) -> str:
    digits = minor_unit(currency)
    value = Decimal(amount) / (Decimal(10) ** digits)
    return f"{value:,.{digits}f} {currency.upper()}"
