"""JSON responses of the HTTP API: bodies and the error shape (numbers: ``meterline.core.numbers``)."""

from __future__ import annotations

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
