"""The parts of backup/restore that need no service: the manifest's checks, choosing
pg_dump for a server, and keeping the password off the tools' command line."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from meterline.core.backup.manifest import Manifest, describe_file
from meterline.core.backup.pg_tools import BackupError, find_tool, libpq_dbname
from meterline.core.backup.run import migration_revisions


def _backup(tmp_path, revision: str = "0007_pricing_rules"):
    (tmp_path / "postgres.dump").write_bytes(b"PGDMP fake")
    (tmp_path / "redis.jsonl").write_text('{"key": "x", "expire_at_ms": 0, "dump": ""}\n')
    manifest = Manifest(
        created_at="2027-03-10T12:00:00Z", meterline_version="0.1.0", alembic_revision=revision,
        postgres={"database": "meterline", "pg_dump_major": 15}, redis={"keys": 1, "prefix": "m"},
        files=[describe_file(tmp_path / "postgres.dump"), describe_file(tmp_path / "redis.jsonl")],
    )  # fmt: skip
    manifest.write(tmp_path)
    return manifest


def test_a_written_manifest_reads_back_and_verifies(tmp_path):
    written = _backup(tmp_path)
    read = Manifest.read(tmp_path)
    assert read == written
    read.verify_files(tmp_path)
    known, head = migration_revisions()
    read.check_revision(known, head)
    assert "0007_pricing_rules" in known


def test_a_changed_or_missing_file_is_refused(tmp_path):
    manifest = _backup(tmp_path)
    (tmp_path / "postgres.dump").write_bytes(b"PGDMP fakf")  # same size, other bytes
    with pytest.raises(BackupError, match=re.escape("postgres.dump does not match its checksum")):
        manifest.verify_files(tmp_path)
    (tmp_path / "redis.jsonl").unlink()
    manifest.files.reverse()
    with pytest.raises(BackupError, match=re.escape("redis.jsonl is missing")):
        manifest.verify_files(tmp_path)


def test_not_a_backup_or_another_format_is_refused_by_name(tmp_path):
    with pytest.raises(
        BackupError, match=re.escape("is not a Meterline backup: it has no manifest.json")
    ):
        Manifest.read(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "other/9"}))
    with pytest.raises(BackupError, match="format 'other/9' is not 'meterline-backup/1'"):
        Manifest.read(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "meterline-backup/1"}))
    with pytest.raises(BackupError, match="lacks alembic_revision, created_at, files"):
        Manifest.read(tmp_path)


def test_a_revision_from_a_newer_meterline_is_refused(tmp_path):
    manifest = _backup(tmp_path, revision="0042_from_the_future")
    known, head = migration_revisions()
    with pytest.raises(BackupError, match=r"revision '0042_from_the_future'.*does not know"):
        manifest.check_revision(known, head)


def test_pg_dump_for_a_server_no_installed_tool_suits_names_what_it_found():
    with pytest.raises(BackupError) as refused:
        find_tool("pg_dump", 99)
    message = str(refused.value)
    assert message.startswith("no pg_dump for PostgreSQL 99 (found: ")
    assert "postgresql-client-99" in message
    assert find_tool("pg_dump", 15).major >= 15


def test_the_password_goes_to_a_private_passfile_never_to_the_command_line():
    url = "postgresql://ml:s3:cr\\et@db.internal:5433/meterline?sslmode=require"
    with libpq_dbname(url) as dbname:
        assert "s3" not in dbname
        assert dbname.startswith("postgresql://ml@db.internal:5433/meterline?")
        query = parse_qs(urlsplit(dbname).query)
        assert query["sslmode"] == ["require"]
        passfile = Path(query["passfile"][0])
        assert passfile.read_text() == "*:*:*:*:s3\\:cr\\\\et\n"
        assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
    assert not passfile.exists()
    with libpq_dbname("postgresql://ml@db/m") as dbname:
        assert dbname == "postgresql://ml@db/m"
