"""Resources for every external system, configured from the environment with ``dg.EnvVar``.

The ``meterline`` CLI (and ``make ui``) resolves the embedded defaults first and exports every
variable of ``meterline.core.settings.Settings`` (``DATABASE_URL``, ``REDIS_URL``,
``METERLINE_REDIS_PREFIX``, ...), so here every value is explicit and the same code runs
against real services in production. Every ``dg.EnvVar`` names a variable of the settings
(``tests/unit/orchestration/test_resource_variables.py``).
"""

from __future__ import annotations

import dagster as dg
from pydantic import PrivateAttr


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


def default_resources() -> dict[str, object]:
    from orchestration.defs.dbt.project import dbt_resource

    return {
        "postgres": PostgresResource(url=dg.EnvVar("DATABASE_URL")),
        "redis": RedisResource(
            url=dg.EnvVar("REDIS_URL"), prefix=dg.EnvVar("METERLINE_REDIS_PREFIX")
        ),
        "dbt": dbt_resource(),
    }
