"""Tenant API keys: issue, list, revoke, rotate (``meterline.api_keys``).

A key looks like ``ml_<tenant[:12]>_<32 random url-safe characters>`` and is shown once, when
it is issued; only its SHA-256 (``key_hash``) is stored. Every key has a public id
(``key_<12 hex>``) and a display prefix (``ml_<tenant[:12]>_`` and the first 4 random
characters): keys are listed, revoked and rotated by id and never shown again.

Revocation is a timestamp (``revoked_at``), so a key's history stays readable. Processes that
cache key lookups (:class:`ingestion.auth.KeyStore`) see a revocation within their cache TTL;
the process that revokes forgets the key at once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, text

from meterline.core import clock
from meterline.core.tenants import TENANT_ID, TenantError

KEY_ID = re.compile(r"^key_[0-9a-f]{12}$")


class ApiKeyError(TenantError):
    """A key command cannot be carried out; the message says why and what to do.
    ``status`` is the HTTP status the admin API answers with."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ApiKey:
    """What may be shown of a key: never the key itself."""

    key_id: str
    tenant_id: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def status(self) -> str:
        return "revoked" if self.revoked_at else "active"

    def as_dict(self) -> dict:
        return {
            "key_id": self.key_id,
            "tenant_id": self.tenant_id,
            "prefix": self.prefix,
            "status": self.status,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


@dataclass(frozen=True)
class IssuedKey:
    """A key just issued: ``key`` is the secret, shown this once."""

    key: str
    info: ApiKey


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


_COLUMNS = "key_id, tenant_id, key_prefix as prefix, created_at, revoked_at"


def _require_tenant(conn: Connection, tenant_id: str) -> None:
    exists = (
        TENANT_ID.match(tenant_id or "")
        and conn.execute(
            text("select 1 from meterline.tenants where tenant_id = :id"), {"id": tenant_id}
        ).first()
    )
    if not exists:
        raise ApiKeyError(
            f"unknown tenant {tenant_id!r}: create it with `meterline tenants create`", 404
        )


def _require_key_id(key_id: str) -> None:
    if not KEY_ID.match(key_id or ""):
        raise ApiKeyError(
            f"key id {key_id!r} is not a key id (key_ and 12 hex digits); "
            "list them with `meterline tenants keys <tenant>`",
            404,
        )


def _insert(conn: Connection, tenant_id: str) -> IssuedKey:
    random_part = secrets.token_urlsafe(24)
    key = f"ml_{tenant_id[:12]}_{random_part}"
    row = conn.execute(
        text(
            f"""
            insert into meterline.api_keys (key_id, key_hash, tenant_id, key_prefix, created_at)
            values (:key_id, :h, :tenant, :prefix, :at)
            returning {_COLUMNS}
            """
        ),
        {
            "key_id": f"key_{secrets.token_hex(6)}",
            "h": hash_key(key),
            "tenant": tenant_id,
            "prefix": f"ml_{tenant_id[:12]}_{random_part[:4]}",
            "at": clock.now(),
        },
    ).one()
    return IssuedKey(key, ApiKey(**row._mapping))


def issue_key(engine: Engine, tenant_id: str) -> IssuedKey:
    """A new key for ``tenant_id``; the secret is in the result and nowhere else."""
    with engine.begin() as conn:
        _require_tenant(conn, tenant_id)
        return _insert(conn, tenant_id)


def list_keys(engine: Engine, tenant_id: str) -> list[ApiKey]:
    """The tenant's keys, oldest first, revoked ones included."""
    with engine.connect() as conn:
        _require_tenant(conn, tenant_id)
        rows = conn.execute(
            text(
                f"select {_COLUMNS} from meterline.api_keys "
                "where tenant_id = :t order by created_at, key_id"
            ),
            {"t": tenant_id},
        )
        return [ApiKey(**row._mapping) for row in rows]


def _revoke(conn: Connection, key_id: str) -> ApiKey:
    _require_key_id(key_id)
    row = conn.execute(
        text(
            f"""
            update meterline.api_keys set revoked_at = coalesce(revoked_at, :at)
            where key_id = :k
            returning {_COLUMNS}
            """
        ),
        {"k": key_id, "at": clock.now()},
    ).first()
    if row is None:
        raise ApiKeyError(
            f"unknown key id {key_id!r}: list keys with `meterline tenants keys <tenant>`", 404
        )
    return ApiKey(**row._mapping)


def revoke_key(engine: Engine, key_id: str) -> ApiKey:
    """Revoke a key (idempotent: a revoked key keeps its first ``revoked_at``)."""
    with engine.begin() as conn:
        return _revoke(conn, key_id)


def rotate_key(engine: Engine, key_id: str) -> IssuedKey:
    """Revoke ``key_id`` and issue its replacement for the same tenant, in one transaction.
    Rotating a revoked key is refused (issue a new one instead)."""
    with engine.begin() as conn:
        _require_key_id(key_id)
        current = conn.execute(
            text(f"select {_COLUMNS} from meterline.api_keys where key_id = :k for update"),
            {"k": key_id},
        ).first()
        if current is None:
            raise ApiKeyError(
                f"unknown key id {key_id!r}: list keys with `meterline tenants keys <tenant>`",
                404,
            )
        if current.revoked_at is not None:
            raise ApiKeyError(
                f"key {key_id} was revoked at {current.revoked_at:%Y-%m-%d %H:%M:%S} UTC: "
                f"issue a new one with `meterline tenants issue-key {current.tenant_id}`",
                409,
            )
        _revoke(conn, key_id)
        return _insert(conn, current.tenant_id)
