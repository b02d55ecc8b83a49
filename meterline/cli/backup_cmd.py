"""`meterline backup [DIR]` and `meterline restore DIR`: one installation's Postgres database
and Redis keys, with a manifest (see meterline/core/backup/ and docs/operations.md)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from meterline.cli.context import console


def _default_directory() -> Path:
    from meterline.core import clock
    from meterline.core.settings import Settings

    return Settings.from_env().home / "backups" / f"meterline-{clock.now():%Y%m%dT%H%M%SZ}"


def backup(
    directory: Path | None = typer.Argument(
        None, help="A new (or empty) directory; default METERLINE_HOME/backups/meterline-<time>."
    ),
) -> None:
    """Drain the event streams into Postgres, then dump Postgres and Meterline's Redis keys.

    Stop whatever records usage first (`meterline serve`, SDK writers, imports): the backup
    refuses, and keeps nothing, if events arrive while it runs."""
    from ingestion.loader import load_stream
    from meterline.cli.runtime import open_runtime
    from meterline.core.backup import create_backup

    rt = open_runtime(migrate=False)
    target = (directory or _default_directory()).resolve()

    def drain() -> dict:
        stats = load_stream(rt.redis, rt.engine, prefix=rt.prefix)
        return {
            "rows_loaded": stats.rows_loaded,
            "duplicates_skipped": stats.duplicates_skipped,
            "dead_lettered": stats.dead_lettered,
        }

    with console.status("draining the event streams, then pg_dump and the Redis keys..."):
        result = create_backup(
            rt.database_url, rt.redis, prefix=rt.prefix, directory=target, drain=drain
        )
    manifest = result.manifest
    table = Table(title=f"Backup {target}")
    table.add_column("part")
    table.add_column("what")
    drained = manifest.drained
    table.add_row("drained", f"{drained['rows_loaded']:,} events loaded into Postgres first")
    for entry in manifest.files:
        table.add_row(entry["name"], f"{entry['bytes']:,} bytes, sha256 {entry['sha256'][:16]}...")
    table.add_row("postgres", f"{manifest.postgres['database']} at revision "
                  f"{manifest.alembic_revision} (PostgreSQL {manifest.postgres['server_version']})")  # fmt: skip
    table.add_row("redis", f"{manifest.redis['keys']:,} keys under '{manifest.redis['prefix']}' "
                  f"(Redis {manifest.redis['version']})")  # fmt: skip
    console.print(table)
    console.print(f"restore with: meterline restore {target}", soft_wrap=True, highlight=False)


def restore(
    directory: Path = typer.Argument(..., help="A directory written by `meterline backup`."),
) -> None:
    """Restore a backup into an empty database and an empty Redis prefix (checks the
    manifest's checksums and revision first)."""
    from meterline.cli.runtime import open_runtime
    from meterline.core.backup import restore_backup
    from meterline.core.backup.run import migration_revisions

    if not directory.is_dir():
        raise FileNotFoundError(2, "no such backup directory", str(directory))
    # neither migrated (the target database must be empty) nor checked (it has no schema yet:
    # the backup brings its own, and a revision behind the code is named below)
    rt = open_runtime(migrate=False, check_schema=False)
    with console.status(f"restoring {directory}..."):
        manifest = restore_backup(
            rt.database_url, rt.redis, prefix=rt.prefix, directory=directory.resolve()
        )
    console.print(
        f"restored the backup of {manifest.created_at}: database at revision "
        f"{manifest.alembic_revision}, {manifest.redis['keys']:,} Redis keys under '{rt.prefix}'",
        highlight=False,
    )
    _, head = migration_revisions()
    if manifest.alembic_revision != head:
        console.print(f"[yellow]this Meterline is at revision {head}: run `meterline migrate`[/]")
    console.print("then start ingest again (`meterline serve`, the Dagster daemon)")
