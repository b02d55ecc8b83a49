"""A backup taken while something still records usage is refused and leaves nothing behind:
events recorded during the drain, or between the Postgres dump and the Redis snapshot (a
writer racing the backup), would make the two halves disagree."""

from __future__ import annotations

import pytest

from ingestion.loader import load_stream
from ingestion.recorder import UsageRecorder
from meterline.core import clock
from meterline.core.backup import BackupError, create_backup
from meterline.core.backup import run as backup_run
from meterline.core.tenants import create_tenant


def _event(event_id: str) -> dict:
    return {"id": event_id, "tenant_id": "acme", "meter": "api_calls", "value": 1,
            "timestamp": clock.iso()}  # fmt: skip


@pytest.fixture
def world(db, redis_client, test_services):
    create_tenant(db, "acme", "payg")
    recorder = UsageRecorder(redis_client, db, prefix=test_services.redis_prefix)
    assert recorder.record(_event("e0")).accepted == 1
    return recorder


def test_events_recorded_while_draining_refuse_the_backup(
    world, db, redis_client, test_services, tmp_path
):
    prefix = test_services.redis_prefix

    def drain_while_a_writer_records() -> dict:
        stats = load_stream(redis_client, db, prefix=prefix)
        world.record(_event("e1"))  # arrives after the loader emptied the stream
        return {"rows_loaded": stats.rows_loaded}

    target = tmp_path / "backup"
    with pytest.raises(
        BackupError, match="1 stream entries arrived while draining: stop everything"
    ):
        create_backup(test_services.database_url, redis_client, prefix=prefix, directory=target,
                      drain=drain_while_a_writer_records)  # fmt: skip
    assert not target.exists()


def test_an_event_recorded_between_dump_and_snapshot_refuses_the_backup(
    world, db, redis_client, test_services, tmp_path, monkeypatch
):
    prefix = test_services.redis_prefix
    snapshot = backup_run.snapshot_keys

    def snapshot_after_a_racing_writer(redis, prefix, path):
        world.record(_event("e2"))  # the dump is written; this event is in no Postgres copy
        return snapshot(redis, prefix, path)

    monkeypatch.setattr(backup_run, "snapshot_keys", snapshot_after_a_racing_writer)
    target = tmp_path / "backup"
    with pytest.raises(BackupError, match="events were recorded during the backup"):
        create_backup(test_services.database_url, redis_client, prefix=prefix, directory=target,
                      drain=lambda: {"rows_loaded": load_stream(redis_client, db, prefix=prefix).rows_loaded})  # fmt: skip
    assert not target.exists()

    # with the writer stopped, the same backup goes through
    monkeypatch.setattr(backup_run, "snapshot_keys", snapshot)
    result = create_backup(test_services.database_url, redis_client, prefix=prefix, directory=target,
                           drain=lambda: {"rows_loaded": load_stream(redis_client, db, prefix=prefix).rows_loaded})  # fmt: skip
    assert result.manifest.drained == {"rows_loaded": 1}  # e2, loaded before the dump
    assert (target / "manifest.json").exists()
