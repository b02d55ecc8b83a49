"""What every CLI command that touches data needs: services up, env exported, schema checked.

Only ``meterline migrate`` (and the demo) opens the runtime with ``migrate=True``; every other
command stops with "database is at revision X, code needs Y: run `meterline migrate`" when
the schema is behind (:func:`meterline.core.db.require_current_schema`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property

from meterline.core import secrets
from meterline.core.settings import READ_BY_LIBRARIES, Settings


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
    """METERLINE_ADMIN_KEY, else a random admin key made once under METERLINE_HOME (0600)."""
    return secrets.admin_key(settings)


def export_environment(settings: Settings, urls) -> None:
    """Make the resolved settings and services visible to Dagster resources (``dg.EnvVar``)
    and dbt, in this process and its children: every variable of :class:`Settings`, so a
    resource can never name one the CLI did not set (empty means unset)."""
    from meterline.core.db import dbt_connection_environment, libpq_url

    resolved = settings.model_copy(
        update={
            "database_url": libpq_url(urls.database_url),
            "redis_url": urls.redis_url,
            "stripe_api_key": urls.stripe_api_key,
            "stripe_api_base": urls.stripe_api_base or "https://api.stripe.com",
        }
    )
    environment = {**resolved.as_environment(), **dbt_connection_environment(urls.database_url)}
    for name in READ_BY_LIBRARIES:  # unset: absent (present-but-empty is "set" to them)
        if name not in environment:
            os.environ.pop(name, None)
    os.environ.update(environment)


def open_runtime(*, migrate: bool = False, check_schema: bool = True) -> Runtime:
    """Services up and the environment exported; ``migrate`` upgrades the schema (``meterline
    migrate``, the demo), otherwise a schema behind the code stops the command, unless
    ``check_schema`` is off (``meterline restore``: its empty target gets the backup's schema)."""
    from meterline.core.db import migrate as run_migrations
    from meterline.core.db import require_current_schema
    from meterline.core.services import ensure_services

    settings = Settings.from_env()
    settings = settings.model_copy(update={"admin_key": local_admin_key(settings)})
    urls = ensure_services(settings)
    export_environment(settings, urls)
    if migrate:
        run_migrations(urls.database_url)
        if settings.install_id:
            from meterline.core.db import get_engine
            from meterline.core.installation import set_install_id

            set_install_id(get_engine(urls.database_url), settings.install_id)
    elif check_schema:
        require_current_schema(urls.database_url)
    return Runtime(
        settings, urls.database_url, urls.redis_url, urls.dagster_database_url,
        urls.stripe_api_key, urls.stripe_api_base, urls.stripe_emulated,
    )  # fmt: skip
