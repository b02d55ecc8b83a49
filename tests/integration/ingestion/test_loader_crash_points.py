"""The loader is safe to kill at every step: after the insert before the commit, after the
commit before the stream is touched, and between XDEL and XACK. The next run (another
consumer, reclaiming the dead one's pending entries with XAUTOCLAIM) leaves every event in
Postgres exactly once and the stream and its pending list empty."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from ingestion import keys
from ingestion.loader import load_stream
from ingestion.recorder import UsageRecorder
from meterline.core.tenants import create_tenant

NOW = datetime.now(UTC).replace(microsecond=0)  # each test starts here (conftest)
STAGES = ["before_commit", "after_commit", "after_delete"]


class Crash(Exception):
    pass


@pytest.fixture
def prefix(test_services):
    return test_services.redis_prefix


@pytest.fixture
def recorded(db, redis_client, prefix):
    """3,000 events of two tenants in 500-event entries."""
    recorder = UsageRecorder(redis_client, db, prefix=prefix)
    for tenant in ("acme", "beta"):
        create_tenant(db, tenant, "payg")
    for start in range(0, 3000, 500):
        tenant = "acme" if start < 2000 else "beta"
        recorder.record(
            [
                {"id": f"e{i}", "tenant_id": tenant, "meter": "api_calls", "value": 1}
                for i in range(start, start + 500)
            ]
        )
    return 3000


def postgres_counts(db) -> tuple[int, int]:
    """(rows, distinct events) in raw.usage_events."""
    with db.connect() as conn:
        return tuple(
            conn.execute(
                text("select count(*), count(distinct (tenant_id, event_id)) from raw.usage_events")
            ).one()
        )


def leftovers(redis_client, prefix) -> dict[str, tuple[int, int]]:
    """Per tenant stream: (entries still in the stream, entries pending in the group)."""
    out = {}
    for tenant in ("acme", "beta"):
        stream = keys.stream_key(prefix, tenant)
        out[tenant] = (
            redis_client.xlen(stream),
            redis_client.xpending(stream, keys.GROUP)["pending"],
        )
    return out


def crash_at(stage: str, *, on_batch: int = 2):
    seen = {"n": 0}

    def hook(at: str) -> None:
        if at == stage:
            seen["n"] += 1
            if seen["n"] == on_batch:
                raise Crash(at)

    return hook


@pytest.mark.parametrize("stage", STAGES)
def test_crash_at_each_step_is_recovered_exactly_once(recorded, db, redis_client, prefix, stage):
    with pytest.raises(Crash):
        load_stream(
            redis_client, db, prefix=prefix, consumer="worker-1", batch_size=1000,
            crash_hook=crash_at(stage),
        )  # fmt: skip
    committed = 2000 if stage != "before_commit" else 1000
    assert postgres_counts(db) == (committed, committed)

    stats = load_stream(redis_client, db, prefix=prefix, consumer="worker-2", reclaim_idle_ms=0)
    assert postgres_counts(db) == (recorded, recorded)  # 0 lost, 0 counted twice
    assert leftovers(redis_client, prefix) == {"acme": (0, 0), "beta": (0, 0)}
    assert stats.reclaimed >= 1  # XAUTOCLAIM took the dead worker's pending entries
    assert stats.rows_loaded == recorded - committed
    assert stats.duplicates_skipped == (1000 if stage == "after_commit" else 0)
    assert stats.oldest_pending_seconds == 0


def test_sigkill_between_xdel_and_xack_is_recovered_by_the_next_run(
    recorded, db, redis_client, prefix
):
    """A real SIGKILL of a loader process (no exception handler, no finally runs) at the step
    the in-process crash cannot fake best; test_loader.py kills around the commit."""
    stage = "after_delete"
    code = textwrap.dedent(
        f"""
        import os, signal, redis
        from meterline.core.db import get_engine
        from ingestion.loader import load_stream
        seen = []
        def hook(at):
            if at == {stage!r}:
                seen.append(at)
                if len(seen) == 2:
                    os.kill(os.getpid(), signal.SIGKILL)
        load_stream(redis.Redis.from_url(os.environ["REDIS_URL"]),
                    get_engine(os.environ["DATABASE_URL"]), prefix={prefix!r},
                    consumer="killed", batch_size=1000, crash_hook=hook)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], env=os.environ.copy(), timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert postgres_counts(db) == (2000, 2000)

    stats = load_stream(redis_client, db, prefix=prefix, consumer="survivor", reclaim_idle_ms=0)
    assert postgres_counts(db) == (recorded, recorded)
    assert leftovers(redis_client, prefix) == {"acme": (0, 0), "beta": (0, 0)}
    assert stats.reclaimed >= 1
