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
