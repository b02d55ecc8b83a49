"""Who is calling: the tenant of the ``Authorization: Bearer <tenant key>`` header, and
nothing else (no tenant header is read here). A client that keeps sending unknown keys gets
429 with ``Retry-After`` before its keys reach the database (:class:`ingestion.auth.KeyStore`)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ingestion.api.responses import error
from ingestion.auth import KeyStore, TooManyUnknownKeys, bearer

MISSING_KEY = (
    "Authorization: missing 'Bearer <tenant API key>' header; "
    "issue a key with `meterline tenants issue-key <tenant>`"
)
UNKNOWN_KEY = (
    "Authorization: unknown or revoked API key; "
    "issue a new one with `meterline tenants issue-key <tenant>`"
)


class Unauthorized(Exception):
    """No tenant: ``response`` is the 401 to send."""

    def __init__(self, response: Response):
        self.response = response


def _unauthorized(message: str) -> Unauthorized:
    return Unauthorized(
        error(401, "unauthorized", "Authorization", message, {"WWW-Authenticate": "Bearer"})
    )


class TenantAuth:
    """``await auth(request)`` is the calling tenant's id (also logged with the request), or
    raises :class:`Unauthorized`."""

    def __init__(self, keystore: KeyStore):
        self.keystore = keystore

    async def __call__(self, request: Request) -> str:
        key = bearer(request.headers.get("authorization"))
        if key is None:
            raise _unauthorized(MISSING_KEY)
        client = self.keystore.client_of(request.scope)
        try:
            identity = await run_in_threadpool(self.keystore.identify, key, client=client)
        except TooManyUnknownKeys as exc:
            raise Unauthorized(
                error(
                    429, "too_many_unknown_keys", "Authorization", str(exc),
                    {"Retry-After": str(exc.retry_after)},
                )
            ) from None  # fmt: skip
        if identity is None:
            raise _unauthorized(UNKNOWN_KEY)
        tenant = identity.tenant_id
        fields = getattr(request.state, "fields", None)
        if fields is not None:
            fields["tenant"] = tenant
        return tenant
