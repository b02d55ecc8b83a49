"""Every resource of the code location, built from :mod:`meterline.core.settings`.

The webserver, the daemon, their run workers and the ``meterline`` CLI all load this module
with whatever environment they were given (``docker-compose.yml`` runs ``dagster-webserver``
and ``dagster-daemon`` directly). So the values come from ``Settings.from_env()``, which knows
every variable's default and validation, never from a bare ``dg.EnvVar`` (which has no
default and fails a run when its variable is unset):

- an unset optional variable means its documented default (``variables.toml``) here as in the
  CLI and the API;
- a variable the code location cannot do without (``DATABASE_URL``, ``REDIS_URL`` when their
  embedded services do not run) fails the load with one line naming it, and so does a database
  whose schema is behind the code ("run `meterline migrate`"): nothing here migrates;
- a secret (``variables.toml``: ``secret = true``) set in the environment is handed over as
  ``dg.EnvVar(NAME)``: Dagster resolves it when a run starts and the UI shows the variable's
  name, never its value. Every other field is a plain value the UI may show.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from meterline.core.settings import Settings, documentation


class PostgresResource(dg.ConfigurableResource):
    """The Meterline database (raw, meterline and analytics schemas)."""

    url: str

    def engine(self):
        from meterline.core.db import get_engine

        return get_engine(self.url)


class RedisResource(dg.ConfigurableResource):
    """The Redis that holds live counters, dedupe keys and the event stream."""

    url: str
    prefix: str = "meterline"
    _client = PrivateAttr(default=None)

    def client(self):
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(self.url)
        return self._client


def secret_or_value(settings: Settings, variable: str, value: Any) -> Any:
    """``dg.EnvVar(variable)`` for a secret the environment sets (so the Dagster UI never
    displays it), else the resolved ``value`` (a default, an embedded service's URL)."""
    field = Settings.variables()[variable]
    if documentation()[variable].get("secret") and getattr(settings, field) is not None:
        return dg.EnvVar(variable)
    return value


def resources_from_settings(settings: Settings, urls) -> dict[str, dg.ConfigurableResource]:
    """The resources for ``settings`` and the service URLs they resolve to
    (:func:`meterline.core.services.running_service_urls`); opens no connection."""
    from orchestration.defs.alerts.resources import NotifierResource
    from orchestration.defs.billing.resources import BillingPolicyResource, StripeResource

    def given(variable: str, value: Any) -> Any:
        return secret_or_value(settings, variable, value)

    stripe_key = urls.stripe_api_key or None
    return {
        "postgres": PostgresResource(url=given("DATABASE_URL", urls.database_url)),
        "redis": RedisResource(
            url=given("REDIS_URL", urls.redis_url), prefix=settings.redis_prefix
        ),
        "stripe": StripeResource(
            api_key=given("STRIPE_API_KEY", stripe_key),
            api_base=urls.stripe_api_base,
            home=str(settings.home),
        ),
        "billing_policy": BillingPolicyResource(
            grace_hours=settings.billing_grace_hours, reports_dir=str(settings.reports_dir)
        ),
        "notifier": NotifierResource(
            home=str(settings.home),
            smtp_url=given("SMTP_URL", settings.smtp_url),
            webhook_url=given("ALERT_WEBHOOK_URL", settings.alert_webhook_url),
            webhook_secret=given("ALERT_WEBHOOK_SECRET", settings.alert_webhook_secret),
            admin_email=settings.admin_email,
            sender=settings.alert_sender,
        ),
    }


def default_resources() -> dict[str, object]:
    """The code location's resources from this process's environment. Fails the load, with one
    line naming what to do, on an invalid or missing variable or a schema behind the code."""
    from meterline.core.db import require_current_schema
    from meterline.core.services import running_service_urls
    from orchestration.defs.dbt.project import dbt_resource

    settings = Settings.from_env()
    urls = running_service_urls(settings)
    require_current_schema(urls.database_url)
    return {**resources_from_settings(settings, urls), "dbt": dbt_resource()}
