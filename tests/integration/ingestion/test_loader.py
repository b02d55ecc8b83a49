"""Stream -> Postgres loader: exactly once, including crashes around the commit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from ingestion import keys
from ingestion.loader import load_stream, snapshot_counters
from ingestion.recorder import UsageRecorder
from meterline.core.tenants import create_tenant


class Crash(Exception):
    pass


NOW = datetime.now(UTC).replace(microsecond=0)  # each test starts here (conftest)


@pytest.fixture
def prefix(test_services):
    return test_services.redis_prefix


@pytest.fixture
def recorder(db, redis_client, prefix):
    create_tenant(db, "acme", "payg")
    create_tenant(db, "beta", "payg")
    return UsageRecorder(redis_client, db, prefix=prefix)


def fill(recorder, tenant="acme", n=2500, batch=500, tag="e"):
    for start in range(0, n, batch):
        recorder.record(
            [
                {
                    "id": f"{tag}{i}",
                    "tenant_id": tenant,
                    "meter": "api_calls",
                    "value": 1,
                    "dimensions": {"path": '/v1/"q"\\x'},
                }
                for i in range(start, min(n, start + batch))
            ]
        )


def count_rows(engine, tenant=None) -> int:
    sql = "select count(*) from raw.usage_events"
    with engine.connect() as conn:
        if tenant:
            return conn.execute(text(sql + " where tenant_id = :t"), {"t": tenant}).scalar()
        return conn.execute(text(sql)).scalar()


def stream_len(redis_client, prefix, tenant="acme") -> int:
    return redis_client.xlen(keys.stream_key(prefix, tenant))


def test_load_is_exactly_once_and_trims_the_stream(recorder, db, redis_client, prefix):
    fill(recorder, n=2500)
    fill(recorder, tenant="beta", n=700)
    stats = load_stream(redis_client, db, prefix=prefix, batch_size=1000)
    assert stats.rows_loaded == 3200 and stats.duplicates_skipped == 0
    assert stats.entries_acked == 7 and stats.batches >= 3
    assert stats.oldest_pending_seconds == 0 and stats.lag_seconds >= 0
    assert count_rows(db) == 3200 and stream_len(redis_client, prefix) == 0
    with db.connect() as conn:
        row = conn.execute(
            text(
                "select value, dimensions, occurred_at <= now() from raw.usage_events where tenant_id = 'acme' and event_id = 'e7'"
            )
        ).one()
    assert row[0] == 1 and row[1] == {"path": '/v1/"q"\\x'} and row[2]
    again = load_stream(redis_client, db, prefix=prefix)
    assert again.rows_loaded == 0 and again.entries_acked == 0


def test_max_entries_bounds_a_run(recorder, db, redis_client, prefix):
    fill(recorder, n=2500, batch=500)
    stats = load_stream(redis_client, db, prefix=prefix, max_entries=2)
    assert stats.entries_acked == 2 and stats.rows_loaded == 1000
    assert stats.oldest_pending_seconds >= 0 and stream_len(redis_client, prefix) == 3
    rest = load_stream(redis_client, db, prefix=prefix)
    assert rest.rows_loaded == 1500 and count_rows(db) == 2500


@pytest.mark.parametrize("stage", ["before_commit", "after_commit"])
def test_crash_around_commit_loses_and_duplicates_nothing(
    recorder, db, redis_client, prefix, stage
):
    fill(recorder, n=3000, batch=1000)

    def hook(at: str) -> None:
        if at == stage:
            raise Crash(at)

    with pytest.raises(Crash):
        load_stream(redis_client, db, prefix=prefix, batch_size=1000, crash_hook=hook)
    assert count_rows(db) == (1000 if stage == "after_commit" else 0)
    assert stream_len(redis_client, prefix) == 3  # nothing acknowledged or trimmed
    stats = load_stream(redis_client, db, prefix=prefix, batch_size=1000)
    assert count_rows(db) == 3000
    assert stats.rows_loaded == (2000 if stage == "after_commit" else 3000)
    assert stats.duplicates_skipped == (1000 if stage == "after_commit" else 0)
    assert stream_len(redis_client, prefix) == 0


@pytest.mark.parametrize("stage", ["before_commit", "after_commit"])
def test_killed_process_is_recovered_by_the_next_run(
    recorder, db, redis_client, prefix, stage, test_services
):
    """A real kill (os._exit in the hook: no cleanup, no finally) in another process."""
    fill(recorder, n=2000, batch=1000)
    code = textwrap.dedent(
        f"""
        import os, redis
        from meterline.core.db import get_engine
        from ingestion.loader import load_stream
        def hook(at):
            if at == {stage!r}:
                os._exit(137)
        load_stream(redis.Redis.from_url(os.environ["REDIS_URL"]), get_engine(os.environ["DATABASE_URL"]),
                    prefix={prefix!r}, consumer="worker-1", batch_size=1000, crash_hook=hook)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], env=os.environ.copy(), timeout=120)
    assert proc.returncode == 137
    assert count_rows(db) == (1000 if stage == "after_commit" else 0)
    # another consumer name: the dead worker's pending entries are reclaimed once idle
    stats = load_stream(redis_client, db, prefix=prefix, consumer="worker-2", reclaim_idle_ms=0)
    assert stats.reclaimed >= 1
    assert count_rows(db) == 2000
    assert stats.duplicates_skipped == (1000 if stage == "after_commit" else 0)
    assert stream_len(redis_client, prefix) == 0


def test_pending_entries_of_a_live_consumer_are_not_stolen(recorder, db, redis_client, prefix):
    fill(recorder, n=1000, batch=500)
    with pytest.raises(Crash):
        load_stream(
            redis_client,
            db,
            prefix=prefix,
            consumer="busy",
            batch_size=500,
            crash_hook=lambda at: (_ for _ in ()).throw(Crash()) if at == "before_commit" else None,
        )
    stats = load_stream(redis_client, db, prefix=prefix, consumer="other", reclaim_idle_ms=600_000)
    assert stats.reclaimed == 0 and stats.rows_loaded == 500  # only the never-delivered entry
    assert stats.oldest_pending_seconds >= 0 and stream_len(redis_client, prefix) == 1
    done = load_stream(redis_client, db, prefix=prefix, consumer="busy")
    assert done.rows_loaded == 500 and count_rows(db) == 1000


def test_snapshot_writes_month_and_hour_counters(recorder, db, redis_client, prefix):
    fill(recorder, n=1200)
    recorder.record(
        [
            {
                "tenant_id": "beta",
                "meter": "active_users",
                "value": 1,
                "dimensions": {"user_id": f"u{i}"},
            }
            for i in range(5)
        ]
    )
    written = snapshot_counters(redis_client, db, prefix=prefix)
    assert written == 4  # (acme api_calls, beta active_users) x (month, hour)
    with db.connect() as conn:
        rows = conn.execute(
            text(
                "select tenant_id, meter, period_kind, quantity from raw.counter_snapshots order by 1, 3"
            )
        ).all()
    assert [(r[0], r[1], r[2], int(r[3])) for r in rows] == [
        ("acme", "api_calls", "hour", 1200),
        ("acme", "api_calls", "month", 1200),
        ("beta", "active_users", "hour", 5),
        ("beta", "active_users", "month", 5),
    ]
    month_row_start = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    with db.connect() as conn:
        assert (
            conn.execute(
                text(
                    "select count(*) from raw.counter_snapshots where period_kind = 'month' and period_start = :m"
                ),
                {"m": month_row_start},
            ).scalar()
            == 2
        )
