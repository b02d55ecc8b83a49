"""``manifest.json``: what a backup holds and how to check it before anything is restored.

It names the files with their SHA-256 and size, the Meterline version, the Alembic revision
of the database, the PostgreSQL and Redis versions, the Redis key prefix and when the backup
was taken (the one clock). It holds no URL, host, user or password: a backup directory can be
described in a ticket without leaking where the data lives.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from meterline.core.backup.pg_tools import BackupError

FORMAT = "meterline-backup/1"
MANIFEST = "manifest.json"
POSTGRES_FILE = "postgres.dump"
REDIS_FILE = "redis.jsonl"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_file(path: Path) -> dict:
    return {"name": path.name, "sha256": sha256_of(path), "bytes": path.stat().st_size}


@dataclass
class Manifest:
    created_at: str
    meterline_version: str
    alembic_revision: str
    postgres: dict
    redis: dict
    files: list[dict]
    drained: dict = field(default_factory=dict)
    format: str = FORMAT

    def write(self, directory: Path) -> Path:
        path = directory / MANIFEST
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST
        if not path.is_file():
            raise BackupError(f"{directory} is not a Meterline backup: it has no {MANIFEST}")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise BackupError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno})") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            got = data.get("format") if isinstance(data, dict) else None
            raise BackupError(
                f"{path}: format {got!r} is not {FORMAT!r}; this Meterline cannot read it"
            )
        known = set(cls.__dataclass_fields__)
        missing = sorted(known - set(data) - {"drained", "format"})
        if missing:
            raise BackupError(f"{path} lacks {', '.join(missing)}; the backup is incomplete")
        return cls(**{k: v for k, v in data.items() if k in known})

    def verify_files(self, directory: Path) -> None:
        """Every file is there, with its recorded size and SHA-256."""
        for entry in self.files:
            path = directory / entry["name"]
            if not path.is_file():
                raise BackupError(f"backup file {path} is missing; the backup is incomplete")
            if path.stat().st_size != entry["bytes"] or sha256_of(path) != entry["sha256"]:
                raise BackupError(
                    f"backup file {path} does not match its checksum in {MANIFEST}: it was "
                    "changed or truncated after the backup; use another copy"
                )

    def check_revision(self, known_revisions: set[str], head: str) -> None:
        """The backup's schema is one this code knows (older is fine: migrate after)."""
        if self.alembic_revision not in known_revisions:
            raise BackupError(
                f"the backup's database is at revision {self.alembic_revision!r}, which this "
                f"Meterline does not know (its newest is {head!r}): restore with the Meterline "
                f"version that made it ({self.meterline_version}) or a newer one"
            )
