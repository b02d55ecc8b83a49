"""Query parameters of the portal's JSON endpoints: a bad one is a 422 naming the field."""

from __future__ import annotations

from portal.refused import Refused


def whole_number(value: str | None, field: str, default: int, low: int, high: int) -> int:
    """A query parameter as a whole number in ``[low, high]`` (``default`` when absent),
    else a 422 naming the field."""
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise Refused(
            422, field, f"{field}: use a whole number from {low} to {high}, got {value!r}"
        )
    return number
