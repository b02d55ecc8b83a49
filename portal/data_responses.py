"""The portal's JSON data: private to the caller, cacheable for 30 s."""

from __future__ import annotations

import orjson
from fastapi.responses import Response

DATA_CACHE = "private, max-age=30"


def data_json(data) -> Response:
    return Response(
        orjson.dumps(data, default=str),
        media_type="application/json",
        headers={"Cache-Control": DATA_CACHE, "Vary": "Authorization, Cookie"},
    )
