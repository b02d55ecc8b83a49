"""The admin API for tenant API keys (``Authorization: Bearer <METERLINE_ADMIN_KEY>``).

- ``GET    /v1/admin/tenants/{tenant_id}/keys``  the tenant's keys: id, prefix, status, dates
- ``POST   /v1/admin/tenants/{tenant_id}/keys``  issue a key: 201 with the key, shown this once
- ``DELETE /v1/admin/keys/{key_id}``             revoke (idempotent): 200 with the key's record
- ``POST   /v1/admin/keys/{key_id}/rotate``      revoke and issue the replacement: 201

A key is never listed or logged; responses that carry one are ``Cache-Control: no-store``.
Revoking or rotating here drops the key from this process's cache at once; other processes
see it within their cache TTL (``METERLINE_KEY_CACHE_TTL``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from ingestion.api.responses import error, json_response
from ingestion.auth import KeyStore, bearer, same_secret
from meterline.core.api_keys import (
    ApiKeyError,
    IssuedKey,
    issue_key,
    list_keys,
    revoke_key,
    rotate_key,
)

NO_STORE = {"Cache-Control": "no-store"}


def _admin_refusal(request: Request, admin_key: str | None):
    if not admin_key:
        return error(
            503, "admin_disabled", "", "admin API disabled: set METERLINE_ADMIN_KEY and restart"
        )
    header = request.headers.get("authorization")
    if not same_secret(bearer(header), admin_key):
        return error(
            403 if header else 401,
            "forbidden" if header else "unauthorized",
            "Authorization",
            "Authorization: admin endpoints need 'Bearer <METERLINE_ADMIN_KEY>'",
            NO_STORE,
        )
    return None


def _issued(issued: IssuedKey, **extra) -> dict:
    return {**issued.info.as_dict(), "key": issued.key, **extra}


def _failed(exc: ApiKeyError):
    return error(exc.status, "invalid_key_request", "key_id", str(exc), NO_STORE)


def admin_keys_router(engine: Engine, keystore: KeyStore, *, admin_key: str | None) -> APIRouter:
    router = APIRouter(tags=["admin: API keys"])

    async def run(request: Request, work, status: int = 200, shape=None):
        refusal = _admin_refusal(request, admin_key)
        if refusal is not None:
            return refusal
        try:
            result = await run_in_threadpool(work)
        except ApiKeyError as exc:
            return _failed(exc)
        return json_response(shape(result) if shape else result, status, NO_STORE)

    @router.get("/v1/admin/tenants/{tenant_id}/keys", summary="List a tenant's API keys")
    async def keys_of(request: Request, tenant_id: str):
        return await run(
            request,
            lambda: list_keys(engine, tenant_id),
            shape=lambda keys: {"tenant_id": tenant_id, "keys": [k.as_dict() for k in keys]},
        )

    @router.post(
        "/v1/admin/tenants/{tenant_id}/keys",
        status_code=201,
        summary="Issue an API key (the response is the only place it is ever shown)",
    )
    async def issue(request: Request, tenant_id: str):
        return await run(request, lambda: issue_key(engine, tenant_id), 201, _issued)

    @router.delete("/v1/admin/keys/{key_id}", summary="Revoke an API key")
    async def revoke(request: Request, key_id: str):
        def work():
            revoked = revoke_key(engine, key_id)
            keystore.forget(key_id)
            return revoked.as_dict()

        return await run(request, work)

    @router.post(
        "/v1/admin/keys/{key_id}/rotate",
        status_code=201,
        summary="Revoke an API key and issue its replacement",
    )
    async def rotate(request: Request, key_id: str):
        def work():
            issued = rotate_key(engine, key_id)
            keystore.forget(key_id)
            return _issued(issued, replaces=key_id)

        return await run(request, work, 201)

    return router
