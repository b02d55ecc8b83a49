"""The HTTP app of ``meterline serve``, composed here at the top: the ingest API
(:mod:`ingestion.api`), the portal (:mod:`portal`: tenant page, admin overview, their JSON,
``/v1/admin/tenants``), the Stripe webhook (:mod:`meterline.stripe_webhook`), health checks,
``/metrics`` and one structured log line per request; the cost estimate of ``/v1/usage`` and
the tenant page is wired from :mod:`billing`.

- ``/healthz`` (process up) and ``/readyz`` (Redis and Postgres answer).
- One :class:`ingestion.auth.KeyStore` answers "whose key is this" for the ingest API, the
  portal and the key admin API (:mod:`ingestion.api.admin_keys`), so a key revoked through the
  admin API stops at once in this process; a request body must arrive within
  ``body_timeout`` seconds (:class:`meterline.http_limits.SlowBodyGuard`).
- Every request gets a request id and is logged as one structured line on the
  ``meterline.api`` logger, timed and traced (:mod:`meterline.observability.http`); an
  unhandled error is a JSON 500 (``{"error": {"code": "internal", ...}}``) and a logged
  traceback. ``/metrics`` serves Prometheus metrics (:mod:`meterline.observability`).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool

from alerts.notifier import Notifier
from ingestion.api.admin_keys import admin_keys_router
from ingestion.api.events_endpoint import MAX_BATCH, MAX_BODY_BYTES
from ingestion.api.responses import json_response
from ingestion.api.router import ingest_router
from ingestion.api.usage_endpoint import CostEstimator
from ingestion.auth import DEFAULT_KEY_CACHE_TTL, DEFAULT_UNKNOWN_KEY_LIMIT, KeyStore
from ingestion.client_address import TrustedProxies
from ingestion.ratelimit import EventBudget
from ingestion.recorder import UsageRecorder
from meterline.core.telemetry.logs import configure_logging
from meterline.http_limits import SlowBodyGuard
from meterline.observability.http import request_telemetry
from meterline.observability.metrics_endpoint import metrics_router
from meterline.stripe_webhook import stripe_webhook_router
from portal.mount import mount_portal


def create_app(
    engine: Engine,
    redis,
    *,
    prefix: str,
    admin_key: str | None,
    secret_key: str | None = None,
    rate_limit_per_second: float = 200.0,
    rate_limit_burst: float = 400.0,
    event_budget: EventBudget | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_batch: int = MAX_BATCH,
    recorder: UsageRecorder | None = None,
    cost_estimator: CostEstimator | None = None,
    trusted_proxies: str | None = None,
    key_cache_ttl: float = DEFAULT_KEY_CACHE_TTL,
    unknown_key_limit: str = DEFAULT_UNKNOWN_KEY_LIMIT,
    body_timeout: float = 30.0,
    metrics_enabled: bool = True,
    metrics_multiprocess_dir: Path | None = None,
    log_format: str = "auto",
    stripe_webhook_secret: str | None = None,
    notifier: Notifier | None = None,
) -> FastAPI:
    """The Meterline HTTP API. ``cost_estimator(tenant_id, usage)`` (optional; ``meterline
    serve`` passes :func:`catalog_cost_estimator`) returns an estimated cost per meter for
    ``/v1/usage`` and the tenant page. ``admin_key`` opens the admin API and pages;
    ``secret_key`` (independent of it) signs sessions and sign-in links (default: see
    :func:`portal.signing.resolve_secret`). ``trusted_proxies``, ``key_cache_ttl``,
    ``unknown_key_limit`` and ``body_timeout`` are the settings of the same names
    (``METERLINE_TRUSTED_PROXIES`` ...); the defaults trust no proxy. ``metrics_enabled``
    serves ``/metrics`` (``METERLINE_METRICS_ENABLED``), summing every worker's figures from
    ``metrics_multiprocess_dir`` (``PROMETHEUS_MULTIPROC_DIR``) when set; ``log_format`` is
    ``METERLINE_LOG_FORMAT``. ``stripe_webhook_secret`` (``STRIPE_WEBHOOK_SECRET``) opens
    ``POST /v1/stripe/webhook``; ``notifier`` sends the outgoing invoice events it causes (the
    alerts' webhook channel)."""
    configure_logging(log_format)
    app = FastAPI(
        title="Meterline",
        version="0.1.0",
        description="Usage metering, quotas and usage-based billing. Tenant endpoints take "
        "`Authorization: Bearer <tenant key>`, admin endpoints the admin key.",
        # FastAPI's native OpenTelemetry: server and endpoint spans only (metrics are
        # Prometheus's, logs structlog's); exporters are ours (meterline.core.telemetry)
        telemetry={"auto_configure": False, "metrics": False, "logs": False},
    )
    app.middleware("http")(request_telemetry)
    keystore = KeyStore(
        engine,
        ttl=key_cache_ttl,
        unknown_key_limit=unknown_key_limit,
        proxies=TrustedProxies(trusted_proxies),
    )
    app.state.keystore = keystore
    app.include_router(ingest_router(
        engine, redis, prefix=prefix, rate_limit_per_second=rate_limit_per_second,
        rate_limit_burst=rate_limit_burst, event_budget=event_budget,
        max_body_bytes=max_body_bytes, max_batch=max_batch, recorder=recorder,
        cost_estimator=cost_estimator, keystore=keystore,
    ))  # fmt: skip
    app.include_router(admin_keys_router(engine, keystore, admin_key=admin_key))
    app.include_router(health_router(engine, redis))
    if metrics_enabled:
        app.include_router(
            metrics_router(engine, redis, prefix=prefix, multiprocess_dir=metrics_multiprocess_dir)
        )
    app.include_router(
        stripe_webhook_router(engine, secret=stripe_webhook_secret, notifier=notifier)
    )
    mount_portal(  # /dashboard, /admin, their JSON and /v1/admin/tenants
        app, engine, redis, prefix=prefix, admin_key=admin_key, secret_key=secret_key,
        cost_estimator=cost_estimator, keystore=keystore,
    )  # fmt: skip
    app.add_middleware(SlowBodyGuard, body_timeout=body_timeout)  # outermost
    return app


def catalog_cost_estimator(engine: Engine) -> CostEstimator:
    """Estimated cost so far per meter, rated by billing on the plan version the tenant pays
    (its prices and pricing rules). Versions are immutable, so they are cached; a version
    loaded later is read on first use."""
    from billing.catalog_store import read_plan_versions
    from billing.rating import rate_meter
    from meterline.core.tenants import plan_in_force

    versions = read_plan_versions(engine)

    def estimate(tenant_id: str, rows) -> dict:
        nonlocal versions
        with engine.connect() as conn:
            paid = plan_in_force(conn, tenant_id)
        if paid is not None and paid not in versions:
            versions = read_plan_versions(engine)
        plan = versions.get(paid) if paid is not None else None
        costs = {}
        for row in rows:
            plan_meter = plan.meters.get(row.meter) if plan else None
            if plan_meter is not None:
                costs[row.meter] = rate_meter(plan_meter, row.quantity)
        return costs

    return estimate


# -- health ------------------------------------------------------------------------------------
def health_router(engine: Engine, redis) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz", summary="Liveness")
    async def healthz():
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: Redis and Postgres answer")
    async def readyz():
        status = await run_in_threadpool(_readiness, engine, redis)
        ready = all(v == "ok" for v in status.values())
        return json_response(
            {"status": "ready" if ready else "unavailable", **status}, 200 if ready else 503
        )

    return router


def _readiness(engine: Engine, redis) -> dict[str, str]:
    status: dict[str, str] = {}
    try:
        redis.ping()
        status["redis"] = "ok"
    except Exception as exc:  # report, do not crash
        status["redis"] = f"error: {exc}"
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        status["postgres"] = "ok"
    except Exception as exc:
        status["postgres"] = f"error: {type(exc).__name__}"
    return status
