"""Gzip for the dashboard's paths only: page weight matters there, while the ingest path
(``POST /v1/events``) keeps its CPU for recording events."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send


class ScopedGZipMiddleware:
    def __init__(self, app: ASGIApp, *, prefixes: Sequence[str], minimum_size: int = 500):
        self.app = app
        self.prefixes = tuple(prefixes)
        self.gzip = GZipMiddleware(app, minimum_size=minimum_size)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefixes):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)
