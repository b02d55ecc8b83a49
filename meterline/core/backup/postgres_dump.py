"""The Postgres half of a backup: ``pg_dump --format=custom`` of the Meterline database, and
``pg_restore`` into an empty one.

Everything Meterline keeps in Postgres is in that one database: the raw events, the control
tables (tenants, plans, keys, invoices, alerts, the installation id), the Alembic version and
the dbt marts. Dagster's own storage (``<database>_dagster``, run history and cursors) is not
part of it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from sqlalchemy import text

from meterline.core.backup.pg_tools import (
    BackupError,
    find_tool,
    libpq_dbname,
    server_major,
)
from meterline.core.db import get_engine
from meterline.core.redaction import redact

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


def _run(tool, args: list[str], database_url: str, what: str) -> None:
    with libpq_dbname(database_url) as dbname:
        proc = subprocess.run(
            [str(tool.path), *args, f"--dbname={dbname}"],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        message = redact((proc.stderr or proc.stdout).strip())[-800:]
        raise BackupError(f"{what} failed ({tool.path.name} {tool.version}): {message}")


def dump_database(database_url: str, path: Path) -> dict:
    """Write the whole database to ``path`` (custom format); return what the manifest keeps."""
    with get_engine(database_url).connect() as conn:
        major = server_major(conn)
        server_version = conn.execute(text("show server_version")).scalar_one()
        database = conn.execute(text("select current_database()")).scalar_one()
    tool = find_tool("pg_dump", major)
    _run(tool, ["--format=custom", "--no-owner", "--no-privileges", f"--file={path}"],
         database_url, "pg_dump")  # fmt: skip
    return {
        "database": database,
        "server_version": server_version.split()[0],
        "pg_dump_version": tool.version,
        "pg_dump_major": tool.major,
    }


def user_tables(database_url: str) -> list[str]:
    """``schema.table`` of every table and view outside the system schemas."""
    with get_engine(database_url).connect() as conn:
        return list(
            conn.execute(
                text(
                    """
                    select table_schema || '.' || table_name from information_schema.tables
                    where not (table_schema = any(:system)) and table_schema not like 'pg_temp%'
                    order by 1
                    """
                ),
                {"system": list(SYSTEM_SCHEMAS)},
            ).scalars()
        )


def restore_database(database_url: str, path: Path, *, dumped_with_major: int) -> None:
    """Restore ``path`` into the database of ``database_url``, which must be empty."""
    existing = user_tables(database_url)
    if existing:
        shown = ", ".join(existing[:3]) + (
            f" and {len(existing) - 3} more" if len(existing) > 3 else ""
        )
        raise BackupError(
            f"the target database is not empty ({shown}); restore only into an empty database: "
            "drop and re-create it (dropdb/createdb), or point DATABASE_URL at a new one"
        )
    with get_engine(database_url).connect() as conn:
        major = server_major(conn)
    tool = find_tool("pg_restore", max(major, dumped_with_major))
    _run(tool, ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
                str(path)], database_url, "pg_restore")  # fmt: skip
    get_engine(database_url).dispose()  # connections opened before the restore saw no tables
