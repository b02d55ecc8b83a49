"""Security headers on every portal response (pages, their JSON, static files, refusals).

The pages load only their own hashed CSS and scripts and fetch only their own JSON, so the
Content-Security-Policy allows exactly that: no inline script or style, no plugins, no other
origin, forms post only here, and no framing (clickjacking). Pages never send a Referer (a
link's query never leaks), and browsers never sniff a type other than the one declared.
"""

from __future__ import annotations

from collections.abc import Sequence

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)


class SecurityHeadersMiddleware:
    """Pure ASGI: adds :data:`SECURITY_HEADERS` to responses under ``prefixes``."""

    def __init__(self, app, prefixes: Sequence[str]):
        self.app = app
        self.prefixes = tuple(prefixes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(self.prefixes):
            await self.app(scope, receive, send)
            return

        async def with_headers(message):
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in SECURITY_HEADERS if n not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)
