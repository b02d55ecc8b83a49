"""JSON responses of the HTTP API: bodies, the error shape, numbers as JSON."""

from __future__ import annotations

from decimal import Decimal

import orjson
from fastapi.responses import Response


def json_response(data, status: int = 200, headers: dict | None = None) -> Response:
    return Response(
        orjson.dumps(data, default=str),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def error(status: int, code: str, field: str, message: str, headers: dict | None = None, **extra):
    """``{"error": {"code", "field", "message", ...extra}}`` with ``status``."""
    return json_response(
        {"error": {"code": code, "field": field, "message": message, **extra}}, status, headers
    )


def json_number(value: Decimal | None):
    """A Decimal as a JSON number: an int when whole, else a float (None stays None)."""
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def quantity_text(value: Decimal | None) -> str:
    """A quantity for a message: thousands separators, no exponent, no trailing zeros."""
    if value is None:
        return ""
    return f"{value:,}" if value == value.to_integral_value() else f"{value.normalize():,f}"
