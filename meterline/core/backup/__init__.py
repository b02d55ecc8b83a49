"""Backup and restore of one Meterline installation: its Postgres database (``pg_dump``,
custom format) and its Redis keys (per-key ``DUMP`` under the prefix), described by a
manifest with checksums. ``run.py`` puts the steps in their safe order; see
docs/operations.md, "Backup and restore"."""

from meterline.core.backup.manifest import Manifest
from meterline.core.backup.pg_tools import BackupError
from meterline.core.backup.run import BackupResult, create_backup, restore_backup

__all__ = ["BackupError", "BackupResult", "Manifest", "create_backup", "restore_backup"]
