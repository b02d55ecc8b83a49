"""Alembic migrations upgrade an empty database to head and downgrade back to nothing."""

import secrets

import psycopg
import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url


@pytest.fixture
def empty_database(test_services):
    from meterline.core.services import ensure_database

    admin = (
        make_url(test_services.database_url)
        .set(database="postgres")
        .render_as_string(hide_password=False)
    )
    name = f"meterline_mig_{secrets.token_hex(4)}"
    ensure_database(admin, name)
    yield (
        make_url(test_services.database_url)
        .set(database=name)
        .render_as_string(hide_password=False)
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def _tables(url: str) -> set[str]:
    from meterline.core.db import sqlalchemy_url

    engine = create_engine(sqlalchemy_url(url))
    try:
        inspector = inspect(engine)
        return {
            f"{schema}.{table}"
            for schema in ("raw", "meterline")
            if schema in inspector.get_schema_names()
            for table in inspector.get_table_names(schema=schema)
        }
    finally:
        engine.dispose()


def test_upgrade_from_empty_and_downgrade_to_base(empty_database):
    from meterline.core.db import current_revision, downgrade, get_engine, migrate

    assert _tables(empty_database) == set()
    migrate(empty_database)
    head = current_revision(empty_database)
    tables = _tables(empty_database)
    for expected in (
        "meterline.tenants", "meterline.subscriptions", "meterline.plans", "meterline.plan_meters",
        "meterline.price_tiers", "meterline.meters", "meterline.alerts", "meterline.invoices",
        "meterline.invoice_reconciliation", "raw.usage_events", "raw.counter_snapshots", "raw.infra_costs",
    ):  # fmt: skip
        assert expected in tables, expected
    migrate(empty_database)  # idempotent
    assert current_revision(empty_database) == head
    downgrade(empty_database, "base")
    assert current_revision(empty_database) is None
    assert _tables(empty_database) <= {"meterline.alembic_version"}
    migrate(empty_database)
    assert current_revision(empty_database) == head
    get_engine(empty_database).dispose()
