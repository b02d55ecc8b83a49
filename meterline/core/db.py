"""Database access: one SQLAlchemy engine per URL, Alembic migrations, and the schema check.

Only ``meterline migrate`` (and the demo, on its own embedded database) calls :func:`migrate`.
Every other process (the CLI's other commands, the API, the Dagster code location) calls
:func:`require_current_schema` at start and stops when the database is behind the code.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def sqlalchemy_url(url: str) -> str:
    """Normalise any postgres URL to the psycopg 3 driver SQLAlchemy should use."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """The same URL without a SQLAlchemy driver suffix, for psycopg, dbt and Dagster."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


@cache
def get_engine(url: str) -> Engine:
    return create_engine(
        sqlalchemy_url(url),
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        connect_args={"application_name": "meterline"},
    )


def _alembic_config(url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` (idempotent)."""
    from alembic import command

    command.upgrade(_alembic_config(url), revision)


class SchemaNotCurrent(RuntimeError):
    """The database's Alembic revision is not the one this code needs."""


def head_revision() -> str:
    """The revision this code needs: the head of ``migrations/versions``."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(
        _alembic_config("postgresql://unused/unused")
    ).get_current_head()


def require_current_schema(url: str) -> str:
    """The database's revision when it is the code's head; otherwise :class:`SchemaNotCurrent`
    with what to do (``meterline migrate``). Migrates nothing."""
    from alembic.script import ScriptDirectory

    current = current_revision(url)
    head = head_revision()
    if current == head:
        return current
    shown = current or "none (no Meterline schema yet)"
    known = {r.revision for r in ScriptDirectory.from_config(_alembic_config(url)).walk_revisions()}
    if current is not None and current not in known:
        raise SchemaNotCurrent(
            f"database is at revision {shown}, code needs {head}: the database was migrated "
            "by a newer Meterline; deploy that version (or restore a backup taken before it)"
        )
    raise SchemaNotCurrent(
        f"database is at revision {shown}, code needs {head}: run `meterline migrate`"
    )


def downgrade(url: str, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(_alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with get_engine(url).connect() as conn:
        return MigrationContext.configure(
            conn, opts={"version_table_schema": "meterline"}
        ).get_current_revision()


def dbt_environment(url: str) -> dict[str, str]:
    """Environment variables a dbt run reads, taken at the moment of the run: the connection
    and ``METERLINE_AS_OF``, the clock's instant that every date rule in SQL takes as "now"
    (macro ``as_of``; an explicit ``--vars '{as_of: ...}'`` still wins)."""
    from meterline.core import clock

    return {**dbt_connection_environment(url), "METERLINE_AS_OF": clock.iso()}


def dbt_connection_environment(url: str) -> dict[str, str]:
    """Environment variables that ``dbt_project/profiles.yml`` reads to reach the database."""
    parsed = make_url(url)
    return {
        "METERLINE_DB_HOST": parsed.host or "127.0.0.1",
        "METERLINE_DB_PORT": str(parsed.port or 5432),
        "METERLINE_DB_USER": parsed.username or "postgres",
        "METERLINE_DB_PASSWORD": parsed.password or "",
        "METERLINE_DB_NAME": parsed.database or "meterline",
    }
