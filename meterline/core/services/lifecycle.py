"""Bringing the services up and down: which embedded ones are needed (those whose variable is
unset), starting them (reusing running ones), Dagster's database, and the URLs to use."""

from __future__ import annotations

from dataclasses import dataclass

from meterline.core.services.dagster_home import dagster_database_url, write_dagster_yaml
from meterline.core.services.postgres import EmbeddedPostgres, ensure_database
from meterline.core.services.process import ServiceError, locked
from meterline.core.services.redis import EmbeddedRedis
from meterline.core.services.stripe import EmbeddedStripe
from meterline.core.settings import Settings

Embedded = EmbeddedPostgres | EmbeddedRedis | EmbeddedStripe


@dataclass(frozen=True)
class ServiceUrls:
    database_url: str
    redis_url: str
    dagster_database_url: str
    stripe_api_key: str
    stripe_api_base: str | None  # None: the SDK's default (api.stripe.com)
    stripe_emulated: bool


def embedded(settings: Settings) -> list[Embedded]:
    services: list[Embedded] = []
    if not settings.database_url:
        services.append(EmbeddedPostgres(settings.home))
    if not settings.redis_url:
        services.append(EmbeddedRedis(settings.home))
    if not settings.stripe_api_key:
        services.append(EmbeddedStripe(settings.home))
    return services


def ensure_services(settings: Settings) -> ServiceUrls:
    """Start the embedded services that are needed (reusing running ones) and return URLs."""
    with locked(settings.home):
        for service in embedded(settings):
            service.start()
    database_url = settings.database_url or EmbeddedPostgres(settings.home).url()
    redis_url = settings.redis_url or EmbeddedRedis(settings.home).url()
    dagster_url = dagster_database_url(database_url)
    try:
        ensure_database(_with_database(database_url, "postgres"), _db_name(dagster_url))
    except Exception as exc:  # the user's own server may not let us create databases
        raise ServiceError(
            f"could not create Dagster's database {_db_name(dagster_url)!r} next to "
            f"DATABASE_URL: {exc}; create it yourself or grant CREATEDB"
        ) from exc
    write_dagster_yaml(settings, dagster_url)
    if settings.stripe_api_key:
        stripe = (settings.stripe_api_key, settings.stripe_api_base, False)
    else:
        stripe = (EmbeddedStripe.api_key, EmbeddedStripe(settings.home).url(), True)
    return ServiceUrls(database_url, redis_url, dagster_url, *stripe)


def running_service_urls(settings: Settings) -> ServiceUrls:
    """The URLs to use without starting anything: the configured ones, else the embedded
    services already running under ``METERLINE_HOME`` (``meterline services up``). What the
    API's workers and the Dagster code location use; a variable that must be set (its
    embedded service is not running) is a :class:`ServiceError` naming it.

    An unset ``STRIPE_API_KEY`` with no emulator running is not an error here (a process may
    never invoice): ``stripe_api_key`` is then empty and the Stripe client says what to set.
    """
    database_url = settings.database_url or _running_url(EmbeddedPostgres(settings.home))
    if not database_url:
        raise ServiceError(
            "DATABASE_URL is not set and no embedded PostgreSQL runs under "
            f"{settings.home} (METERLINE_HOME): set DATABASE_URL, or run `meterline services up`"
        )
    redis_url = settings.redis_url or _running_url(EmbeddedRedis(settings.home))
    if not redis_url:
        raise ServiceError(
            f"REDIS_URL is not set and no embedded Redis runs under {settings.home} "
            "(METERLINE_HOME): set REDIS_URL, or run `meterline services up`"
        )
    if settings.stripe_api_key:
        stripe = (settings.stripe_api_key, settings.stripe_api_base, False)
    else:
        emulator = EmbeddedStripe(settings.home)
        url = _running_url(emulator)
        stripe = (emulator.api_key, url, True) if url else ("", settings.stripe_api_base, True)
    return ServiceUrls(database_url, redis_url, dagster_database_url(database_url), *stripe)


def _running_url(service: Embedded) -> str | None:
    return service.url() if service.pid() is not None else None


def stop_services(settings: Settings) -> None:
    with locked(settings.home):
        for service in reversed(embedded(settings)):
            service.stop()


def _with_database(url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=database).render_as_string(hide_password=False)


def _db_name(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).database or ""
