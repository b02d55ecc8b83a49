"""The importable HTTP app, for any ASGI server or process manager:

    uvicorn meterline.asgi:app --workers 4
    uvicorn --factory meterline.asgi:create_app
    gunicorn -k uvicorn.workers.UvicornWorker -w 4 'meterline.asgi:create_app()'

Each worker reads the settings of its own environment (``meterline.core.settings``) and
starts nothing: ``DATABASE_URL`` and ``REDIS_URL`` are required unless the embedded services
run (``meterline services up``), and a schema behind the code stops the worker with
"database is at revision X, code needs Y: run `meterline migrate`". ``meterline serve
--workers N`` runs this factory under uvicorn. ``app`` is built on first access, once per
process, so importing this module opens no connection.
"""

from __future__ import annotations

from typing import Any

from meterline.core.settings import Settings


def create_app(settings: Settings | None = None):
    """The Meterline API configured from ``settings`` (default: this process's environment)."""
    import redis

    from alerts.notifier import Notifier
    from ingestion.ratelimit import EventBudget
    from meterline.core.db import get_engine, require_current_schema
    from meterline.core.secrets import admin_key, secret_key
    from meterline.core.services import running_service_urls
    from meterline.core.telemetry.logs import configure_logging
    from meterline.core.telemetry.tracing import configure_tracing
    from meterline.server import catalog_cost_estimator
    from meterline.server import create_app as compose_app

    settings = Settings.from_env() if settings is None else settings
    configure_logging(settings.log_format)
    configure_tracing(settings.otlp_endpoint)
    urls = running_service_urls(settings)
    require_current_schema(urls.database_url)
    engine = get_engine(urls.database_url)
    notifier = Notifier.configure(
        home=settings.home,
        smtp_url=settings.smtp_url,
        webhook_url=settings.alert_webhook_url,
        webhook_secret=settings.alert_webhook_secret,
        admin_email=settings.admin_email,
        sender=settings.alert_sender,
    )  # outgoing invoice events caused by Stripe's webhooks
    return compose_app(
        engine, redis.Redis.from_url(urls.redis_url), prefix=settings.redis_prefix,
        admin_key=admin_key(settings), secret_key=secret_key(settings),
        cost_estimator=catalog_cost_estimator(engine), trusted_proxies=settings.trusted_proxies,
        key_cache_ttl=settings.key_cache_ttl, unknown_key_limit=settings.unknown_key_limit,
        body_timeout=settings.http_body_timeout,
        event_budget=EventBudget(settings.event_rate, settings.event_burst),
        metrics_enabled=settings.metrics_enabled, log_format=settings.log_format,
        metrics_multiprocess_dir=settings.prometheus_multiproc_dir,
        stripe_webhook_secret=settings.stripe_webhook_secret, notifier=notifier,
    )  # fmt: skip


_app = None


def __getattr__(name: str) -> Any:
    """``meterline.asgi.app``: :func:`create_app` of this process's settings, built once."""
    global _app
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _app is None:
        _app = create_app()
    return _app
