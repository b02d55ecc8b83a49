"""API key lookup: tenant keys are stored as SHA-256 in ``meterline.api_keys``; lookups are
cached in process (hits for ``ttl`` seconds, misses for ``negative_ttl`` seconds)."""

from __future__ import annotations

import hmac
import threading
import time

from sqlalchemy import Engine, text

from meterline.core.tenants import hash_key


class KeyStore:
    def __init__(self, engine: Engine, *, ttl: float = 30.0, negative_ttl: float = 5.0):
        self.engine = engine
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self._cache: dict[str, tuple[str | None, float]] = {}
        self._lock = threading.Lock()

    def tenant_for(self, api_key: str) -> str | None:
        """The tenant of an active key, or None for an unknown or revoked key."""
        digest = hash_key(api_key)
        now = time.monotonic()
        found = self._cache.get(digest)
        if found is not None and found[1] > now:
            return found[0]
        with self.engine.connect() as conn:
            row = conn.execute(
                text(
                    """
                    select k.tenant_id from meterline.api_keys k
                    join meterline.tenants t on t.tenant_id = k.tenant_id
                    where k.key_hash = :h and k.revoked_at is null
                    """
                ),
                {"h": digest},
            ).first()
        tenant = row[0] if row else None
        with self._lock:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[digest] = (tenant, now + (self.ttl if tenant else self.negative_ttl))
        return tenant


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def same_secret(given: str | None, expected: str | None) -> bool:
    return bool(given and expected) and hmac.compare_digest(given.encode(), expected.encode())
