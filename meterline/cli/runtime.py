"""What every CLI command that touches data needs: services up, env exported, schema migrated."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, replace
from functools import cached_property

from meterline.core.settings import Settings

ALERT_VARIABLES = (
    "SMTP_URL",
    "ALERT_WEBHOOK_URL",
    "METERLINE_WEBHOOK_SECRET",
    "METERLINE_ADMIN_EMAIL",
    "METERLINE_ALERT_SENDER",
)


@dataclass
class Runtime:
    settings: Settings
    database_url: str
    redis_url: str
    dagster_database_url: str
    stripe_api_key: str
    stripe_api_base: str | None
    stripe_emulated: bool

    @cached_property
    def engine(self):
        from meterline.core.db import get_engine

        return get_engine(self.database_url)

    @cached_property
    def redis(self):
        import redis

        return redis.Redis.from_url(self.redis_url)

    @property
    def prefix(self) -> str:
        return self.settings.redis_prefix


def local_admin_key(settings: Settings) -> str:
    """Without METERLINE_ADMIN_KEY, a random admin key made once under METERLINE_HOME (0600)."""
    path = settings.home / "admin_key"
    if not path.exists():
        settings.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(24))
    return path.read_text().strip()


def export_environment(settings: Settings, urls) -> None:
    """Make the resolved services visible to Dagster resources and dbt (same process or children)."""
    from meterline.core.db import dbt_connection_environment, libpq_url

    database_url, redis_url = urls.database_url, urls.redis_url
    stripe = {
        "STRIPE_API_KEY": urls.stripe_api_key,
        "STRIPE_API_BASE": urls.stripe_api_base or "https://api.stripe.com",
    }
    os.environ.update(
        {
            **stripe,
            "DATABASE_URL": libpq_url(database_url),
            "REDIS_URL": redis_url,
            "METERLINE_REDIS_PREFIX": settings.redis_prefix,
            "METERLINE_HOME": str(settings.home),
            "DAGSTER_HOME": str(settings.resolved_dagster_home),
            "BILLING_GRACE_HOURS": str(settings.billing_grace_hours),
            "METERLINE_ADMIN_KEY": settings.admin_key or "",
            "METERLINE_REPORTS_DIR": str(settings.reports_dir),
            **dbt_connection_environment(database_url),
        }
    )
    # The notifier's optional settings: Dagster has no default for an unset EnvVar, so an
    # unset one is exported empty, which the notifier reads as "use the default".
    for name in ALERT_VARIABLES:
        os.environ.setdefault(name, "")


def open_runtime(*, migrate: bool = True) -> Runtime:
    from meterline.core.db import migrate as run_migrations
    from meterline.core.services import ensure_services

    settings = Settings.from_env()
    if not settings.admin_key:
        settings = replace(settings, admin_key=local_admin_key(settings))
    urls = ensure_services(settings)
    export_environment(settings, urls)
    if migrate:
        run_migrations(urls.database_url)
        if settings.install_id:
            from meterline.core.db import get_engine
            from meterline.core.installation import set_install_id

            set_install_id(get_engine(urls.database_url), settings.install_id)
    return Runtime(
        settings, urls.database_url, urls.redis_url, urls.dagster_database_url,
        urls.stripe_api_key, urls.stripe_api_base, urls.stripe_emulated,
    )  # fmt: skip
