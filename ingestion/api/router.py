"""The ingest API as one FastAPI router: ``POST /v1/events`` and ``GET /v1/usage``."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import Engine

from ingestion.api.events_endpoint import MAX_BATCH, MAX_BODY_BYTES, add_events_route
from ingestion.api.tenant_auth import TenantAuth
from ingestion.api.usage_endpoint import CostEstimator, add_usage_route
from ingestion.auth import KeyStore
from ingestion.ratelimit import EventBudget, RateLimiter
from ingestion.recorder import UsageRecorder
from meterline.core.settings import DEFAULT_EVENT_BURST, DEFAULT_EVENT_RATE


def ingest_router(
    engine: Engine,
    redis,
    *,
    prefix: str,
    rate_limit_per_second: float = 200.0,
    rate_limit_burst: float = 400.0,
    event_budget: EventBudget | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_batch: int = MAX_BATCH,
    recorder: UsageRecorder | None = None,
    cost_estimator: CostEstimator | None = None,
    keystore: KeyStore | None = None,
) -> APIRouter:
    """Record usage and read it back, for the tenant of the request's API key.

    ``cost_estimator(tenant_id, usage)`` (optional) returns an estimated cost per meter for
    ``/v1/usage``. ``event_budget`` (default: ``METERLINE_EVENT_RATE``/``_BURST``'s defaults)
    is each tenant's events per second, spent by the record script itself. The routes log the
    tenant and the batch counts in ``request.state.fields`` (the access log of
    :mod:`meterline.server` reads them). The tenant comes from the API key only; pass the app's
    ``keystore`` so a revocation made through the admin API is seen at once (it also knows the
    trusted proxies, so unknown keys count per real client)."""
    recorder = recorder or UsageRecorder(redis, engine, prefix=prefix)
    auth = TenantAuth(keystore or KeyStore(engine))
    limiter = RateLimiter(redis, prefix=prefix, rate=rate_limit_per_second, burst=rate_limit_burst)
    router = APIRouter()
    add_events_route(
        router,
        auth=auth,
        limiter=limiter,
        recorder=recorder,
        rate_limit_per_second=rate_limit_per_second,
        event_budget=event_budget or EventBudget(DEFAULT_EVENT_RATE, DEFAULT_EVENT_BURST),
        max_body_bytes=max_body_bytes,
        max_batch=max_batch,
    )
    add_usage_route(router, engine, redis, prefix=prefix, auth=auth, cost_estimator=cost_estimator)
    return router
