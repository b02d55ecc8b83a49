"""``meterline services status``: each service's state and URL, embedded or external (an
external URL is shown without its password)."""

from __future__ import annotations

from meterline.core.services.lifecycle import embedded
from meterline.core.services.process import ServiceStatus
from meterline.core.settings import Settings


def service_statuses(settings: Settings) -> list[ServiceStatus]:
    statuses = [s.status() for s in embedded(settings)]
    if settings.database_url:
        statuses.insert(0, ServiceStatus("postgres", "external", _redact(settings.database_url)))
    if settings.redis_url:
        statuses.insert(1, ServiceStatus("redis", "external", _redact(settings.redis_url)))
    if settings.stripe_api_key:
        statuses.append(
            ServiceStatus(
                "stripe", "external", settings.stripe_api_base or "https://api.stripe.com"
            )
        )
    return statuses


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]
