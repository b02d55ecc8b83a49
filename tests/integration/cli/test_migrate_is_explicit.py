"""Only `meterline migrate` changes the schema. Every other command, the API's app factory and
the Dagster code location check the revision at start and stop, saying which revision the
database is at, which one the code needs, and to run `meterline migrate`."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from meterline.core.db import current_revision, head_revision, migrate

PREVIOUS = "0006_plan_versions"


@pytest.fixture
def fresh_database(test_services, tmp_path, monkeypatch):
    """An empty database on the test server, the process environment pointing at it (and a
    METERLINE_HOME/DAGSTER_HOME of its own, so the session's dagster.yaml is left alone)."""
    from meterline.core.services import ensure_database

    admin = make_url(test_services.database_url).set(database="postgres")
    admin_url = admin.render_as_string(hide_password=False)
    name = f"meterline_mig_{secrets.token_hex(4)}"
    ensure_database(admin_url, name)
    url = admin.set(database=name).render_as_string(hide_password=False)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("METERLINE_HOME", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    yield url
    from meterline.core.db import get_engine

    get_engine(url).dispose()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for db in (name, f"{name}_dagster"):
            conn.execute(f'drop database if exists "{db}" with (force)')


def meterline(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).with_name("meterline")), *args],
        env=dict(os.environ), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_commands_stop_on_a_schema_behind_the_code_until_meterline_migrate(fresh_database):
    head = head_revision()
    failed = meterline("tenants", "list")
    assert failed.returncode == 1
    assert failed.stderr.strip() == (
        f"error: database is at revision none (no Meterline schema yet), code needs {head}: "
        "run `meterline migrate`"
    )
    assert current_revision(fresh_database) is None  # nothing was migrated on the way

    checked = meterline("migrate", "--check")
    assert checked.returncode == 1 and "run `meterline migrate`" in checked.stderr
    assert current_revision(fresh_database) is None

    migrated = meterline("migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert f"schema at revision {head}" in migrated.stdout
    assert meterline("migrate", "--check").returncode == 0
    listed = meterline("tenants", "list")
    assert listed.returncode == 0, listed.stderr


def test_the_api_and_the_code_location_name_both_revisions(fresh_database):
    from meterline.asgi import create_app
    from meterline.core.db import SchemaNotCurrent
    from orchestration.resources import default_resources

    migrate(fresh_database, PREVIOUS)
    expected = (
        f"database is at revision {PREVIOUS}, code needs {head_revision()}: run `meterline migrate`"
    )
    with pytest.raises(SchemaNotCurrent) as api:
        create_app()
    assert str(api.value) == expected
    with pytest.raises(SchemaNotCurrent) as location:
        default_resources()
    assert str(location.value) == expected
    assert current_revision(fresh_database) == PREVIOUS  # neither migrated

    migrate(fresh_database)
    assert create_app().title == "Meterline"
    assert set(default_resources()) >= {"postgres", "redis", "stripe", "notifier", "dbt"}


def test_a_database_newer_than_the_code_is_not_told_to_migrate(fresh_database):
    from meterline.core.db import SchemaNotCurrent, require_current_schema

    migrate(fresh_database)
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        conn.execute("update meterline.alembic_version set version_num = '0099_from_the_future'")
    with pytest.raises(SchemaNotCurrent, match=r"0099_from_the_future.*newer Meterline"):
        require_current_schema(fresh_database)
