"""Who a tenant API key belongs to (:class:`KeyStore`), cheaply and without letting guessed
keys reach the database.

Keys are stored as SHA-256 in ``meterline.api_keys`` (:mod:`meterline.core.api_keys`). A
lookup is answered from two bounded LRU caches with a TTL (``cachetools.TTLCache``): known keys
for ``ttl`` seconds, unknown or revoked ones for ``negative_ttl`` seconds. A revocation made
elsewhere is seen within ``ttl``; :meth:`KeyStore.forget` drops one key at once (the admin API
calls it), nothing is ever flushed wholesale.

A key that is in neither cache costs one query, and only a limited number of those may fail
per client address (:meth:`KeyStore.client_of`; ``unknown_key_limit``, a ``limits`` rate such as ``"20/minute"``, kept in
process): once a client has spent its budget of unknown keys, :meth:`KeyStore.identify` raises
:class:`TooManyUnknownKeys` *before* querying, and the caller answers 429 with
``Retry-After``. Known keys never spend the budget, so many tenants behind one address work.
"""

from __future__ import annotations

import hmac
import math
import threading
import time
from dataclasses import dataclass

from cachetools import TTLCache
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import Engine, text

from ingestion.client_address import TrustedProxies
from meterline.core.api_keys import hash_key

DEFAULT_KEY_CACHE_TTL = 5.0
DEFAULT_UNKNOWN_KEY_LIMIT = "20/minute"


@dataclass(frozen=True)
class Identity:
    """The caller behind an active key."""

    tenant_id: str
    key_id: str


class TooManyUnknownKeys(Exception):
    """This client sent too many unknown keys; ``retry_after`` seconds until it may again."""

    def __init__(self, retry_after: int, limit: str):
        super().__init__(
            f"Authorization: too many unknown or revoked API keys from this address "
            f"(limit {limit}); retry after {retry_after} s with a valid key"
        )
        self.retry_after = retry_after


class KeyStore:
    def __init__(
        self,
        engine: Engine,
        *,
        ttl: float = DEFAULT_KEY_CACHE_TTL,
        negative_ttl: float | None = None,
        maxsize: int = 100_000,
        unknown_key_limit: str = DEFAULT_UNKNOWN_KEY_LIMIT,
        proxies: TrustedProxies | None = None,
    ):
        self.engine = engine
        self.proxies = proxies or TrustedProxies()
        self.ttl = ttl
        self._known: TTLCache[str, Identity] = TTLCache(maxsize, ttl)
        self._unknown: TTLCache[str, bool] = TTLCache(
            max(1, maxsize // 10), ttl if negative_ttl is None else negative_ttl
        )
        self._key_ids: TTLCache[str, str | None] = TTLCache(maxsize, ttl)  # id -> tenant|None
        self._lock = threading.Lock()
        self._limit = parse(unknown_key_limit)
        self._limit_text = unknown_key_limit
        self._failures = MovingWindowRateLimiter(MemoryStorage())

    # -- API keys ------------------------------------------------------------------------------
    def identify(self, api_key: str, *, client: str = "") -> Identity | None:
        """The tenant and key id of an active key, or None for an unknown or revoked key.
        Raises :class:`TooManyUnknownKeys` (before any query) when ``client`` has used up
        its budget of unknown keys."""
        digest = hash_key(api_key)
        with self._lock:
            known = self._known.get(digest)
            if known is not None:
                return known
            if self._unknown.get(digest):
                return None
        if not self._failures.test(self._limit, client):
            raise TooManyUnknownKeys(self._retry_after(client), self._limit_text)
        identity = self._lookup(digest)
        with self._lock:
            if identity is None:
                self._unknown[digest] = True
            else:
                self._known[digest] = identity
        if identity is None:
            self._failures.hit(self._limit, client)
        return identity

    def client_of(self, scope) -> str:
        """The address whose unknown keys are counted: the peer, or behind a trusted proxy
        the client it forwards for."""
        return self.proxies.client_address(scope)

    def tenant_for(self, api_key: str, *, client: str = "") -> str | None:
        identity = self.identify(api_key, client=client)
        return identity.tenant_id if identity else None

    def _lookup(self, digest: str) -> Identity | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                text(
                    """
                    select k.tenant_id, k.key_id from meterline.api_keys k
                    join meterline.tenants t on t.tenant_id = k.tenant_id
                    where k.key_hash = :h and k.revoked_at is null
                    """
                ),
                {"h": digest},
            ).first()
        return Identity(row[0], row[1]) if row else None

    def _retry_after(self, client: str) -> int:
        reset_at = self._failures.get_window_stats(self._limit, client).reset_time
        return max(1, math.ceil(reset_at - time.time()))  # limits' own clock (a duration)

    # -- key ids (sessions made from a key) ----------------------------------------------------
    def key_active(self, key_id: str, tenant_id: str) -> bool:
        """Whether key ``key_id`` of ``tenant_id`` is still active (cached for ``ttl``)."""
        with self._lock:
            if key_id in self._key_ids:
                return self._key_ids[key_id] == tenant_id
        with self.engine.connect() as conn:
            owner = conn.execute(
                text(
                    "select tenant_id from meterline.api_keys "
                    "where key_id = :k and revoked_at is null"
                ),
                {"k": key_id},
            ).scalar()
        with self._lock:
            self._key_ids[key_id] = owner
        return owner == tenant_id

    def forget(self, key_id: str) -> None:
        """Drop every cached answer about ``key_id`` (after revoking or rotating it here)."""
        with self._lock:
            self._key_ids.pop(key_id, None)
            for digest, identity in list(self._known.items()):
                if identity.key_id == key_id:
                    self._known.pop(digest, None)


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def same_secret(given: str | None, expected: str | None) -> bool:
    return bool(given and expected) and hmac.compare_digest(given.encode(), expected.encode())
