"""Backup and restore, in the order that keeps Redis and Postgres consistent.

Backup: (1) drain the event streams into Postgres (the caller's loader), (2) ``pg_dump``,
(3) snapshot the Redis keys, (4) check no event was recorded since (1), (5) the manifest.
Redis is copied after Postgres, so every event in the dump is also in the copied dedupe
markers and counters: after a restore a replay is a duplicate, never counted twice. Ingest
must be stopped meanwhile; the stream positions prove it, and a backup that saw new events
is deleted and refused rather than kept half-consistent.

Restore: verify the manifest (checksums, a revision this code knows), check both targets are
empty, then ``pg_restore`` and ``RESTORE`` of every key.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from meterline.core import clock
from meterline.core.backup.manifest import POSTGRES_FILE, REDIS_FILE, Manifest, describe_file
from meterline.core.backup.pg_tools import BackupError
from meterline.core.backup.postgres_dump import dump_database, restore_database, user_tables
from meterline.core.backup.redis_snapshot import (
    keys_under,
    restore_keys,
    snapshot_keys,
    stream_positions,
)
from meterline.core.db import MIGRATIONS_DIR, current_revision

STOP_INGEST = (
    "stop everything that records usage (`meterline serve`, SDK writers, imports) and run the "
    "backup again; the loader may keep running"
)


@dataclass
class BackupResult:
    directory: Path
    manifest: Manifest


def _meterline_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("meterline")
    except PackageNotFoundError:  # pragma: no cover - running from a plain checkout
        return "unknown"


def migration_revisions() -> tuple[set[str], str]:
    """Every revision this code's migrations know, and the head."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(str(MIGRATIONS_DIR))
    return {s.revision for s in scripts.walk_revisions()}, scripts.get_current_head()


def _prepare(directory: Path) -> None:
    if directory.exists() and any(directory.iterdir()):
        raise BackupError(f"{directory} already exists and is not empty; name a new directory")
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)  # tenant data and key hashes: readable by the operator only


def _unloaded(redis, positions: dict[str, str]) -> int:
    pipe = redis.pipeline(transaction=False)
    for stream in positions:
        pipe.xlen(stream)
    return sum(pipe.execute()) if positions else 0


def create_backup(
    database_url: str, redis, *, prefix: str, directory: Path, drain: Callable[[], dict]
) -> BackupResult:
    """Back up one installation into ``directory`` (new or empty). ``drain()`` loads every
    stream into Postgres and returns what it did (kept in the manifest)."""
    _prepare(directory)
    try:
        return _back_up_into(database_url, redis, prefix=prefix, directory=directory, drain=drain)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)  # never leave a half backup behind
        raise


def _back_up_into(database_url, redis, *, prefix, directory, drain) -> BackupResult:
    started = clock.iso()
    revision = current_revision(database_url)
    if revision is None:
        raise BackupError("the database has no Meterline schema: nothing to back up")
    drained = drain()
    positions = stream_positions(redis, prefix)
    waiting = _unloaded(redis, positions)
    if waiting:
        raise BackupError(f"{waiting} stream entries arrived while draining: {STOP_INGEST}")
    postgres = dump_database(database_url, directory / POSTGRES_FILE)
    redis_part = snapshot_keys(redis, prefix, directory / REDIS_FILE)
    if stream_positions(redis, prefix) != positions:
        raise BackupError(f"events were recorded during the backup: {STOP_INGEST}")
    manifest = Manifest(
        created_at=started,
        meterline_version=_meterline_version(),
        alembic_revision=revision,
        postgres=postgres,
        redis=redis_part,
        files=[describe_file(directory / POSTGRES_FILE), describe_file(directory / REDIS_FILE)],
        drained=drained,
    )
    manifest.write(directory)
    return BackupResult(directory, manifest)


def verify_backup(directory: Path) -> Manifest:
    """The manifest of ``directory``, after checking its files and revision."""
    manifest = Manifest.read(directory)
    manifest.verify_files(directory)
    known, head = migration_revisions()
    manifest.check_revision(known, head)
    return manifest


def restore_backup(database_url: str, redis, *, prefix: str, directory: Path) -> Manifest:
    """Restore ``directory`` into an empty database and an empty Redis prefix."""
    manifest = verify_backup(directory)
    tables, keys = user_tables(database_url), keys_under(redis, prefix)
    if tables or keys:  # checked for both before touching either
        where = [f"database has {len(tables)} table(s)"] if tables else []
        where += [f"Redis has {len(keys)} key(s) under '{prefix}'"] if keys else []
        raise BackupError(
            f"restore needs empty targets, but the {' and the '.join(where)}: drop and "
            "re-create the database and delete the prefix's keys (or point DATABASE_URL and "
            "METERLINE_REDIS_PREFIX at new ones)"
        )
    restore_database(
        database_url,
        directory / POSTGRES_FILE,
        dumped_with_major=manifest.postgres["pg_dump_major"],
    )
    restored = current_revision(database_url)
    if restored != manifest.alembic_revision:
        raise BackupError(
            f"after pg_restore the database is at revision {restored!r}, not "
            f"{manifest.alembic_revision!r} as the manifest says; the dump is not this backup's"
        )
    restore_keys(redis, prefix, directory / REDIS_FILE)
    return manifest
