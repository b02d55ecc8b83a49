"""A refused portal request and how it is answered: a JSON error for the data endpoints, a
small HTML page for the pages. Refusals carry no data and ``Cache-Control: no-store``."""

from __future__ import annotations

import orjson
from fastapi.responses import HTMLResponse, Response

from portal.pages import error_page

CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    422: "invalid_query",
    503: "admin_disabled",
}
TITLES = {401: "Sign in needed", 403: "Not allowed", 503: "Not available"}


class Refused(Exception):
    def __init__(self, status: int, field: str, message: str):
        super().__init__(message)
        self.status, self.field, self.message = status, field, message


def refusal_json(exc: Refused) -> Response:
    headers = {"Cache-Control": "no-store"}
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return Response(
        orjson.dumps(
            {
                "error": {
                    "code": CODES.get(exc.status, "error"),
                    "field": exc.field,
                    "message": exc.message,
                }
            }
        ),
        status_code=exc.status,
        media_type="application/json",
        headers=headers,
    )


def refusal_page(css: str, exc: Refused) -> HTMLResponse:
    return HTMLResponse(
        error_page(css, exc.status, TITLES.get(exc.status, "Error"), exc.message),
        status_code=exc.status,
        headers={"Cache-Control": "no-store"},
    )
