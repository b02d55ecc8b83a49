"""Real outages mid-load: Redis killed (SIGKILL) and restarted from its append-only file, and
Postgres cut off (the loader's backend terminated, new connections refused) and restored.
After recovery: 0 events lost, 0 counted twice, nothing left in the streams or pending lists,
and no good row turned into a dead letter by the outage."""

from __future__ import annotations

import socket
import subprocess
import time
from datetime import UTC, datetime

import psycopg
import pytest
import redis as redis_lib
import sqlalchemy.exc
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import text
from sqlalchemy.engine import make_url

from ingestion import keys
from ingestion.dead_letters import count_dead_letters
from ingestion.loader import load_stream
from ingestion.recorder import UsageRecorder
from meterline.core.tenants import create_tenant

NOW = datetime.now(UTC).replace(microsecond=0)  # each test starts here (conftest)
EVENTS = 3000
TENANTS = ("acme", "beta")


class RedisServer:
    """Our own redis-server with AOF (fsync always), killable and restartable on one port."""

    def __init__(self, directory) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.directory = directory
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        probe = redis_lib.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                if probe.ping():
                    break
            except redis_lib.exceptions.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        probe.close()

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no shutdown, no final AOF rewrite
        self.proc.wait(timeout=10)

    def client(self) -> redis_lib.Redis:
        # fail fast while the server is down (the default client retries with backoff)
        return redis_lib.Redis(
            port=self.port,
            socket_timeout=2,
            socket_connect_timeout=0.5,
            retry=Retry(NoBackoff(), 0),
        )


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.proc and server.proc.poll() is None:
        server.proc.terminate()
        server.proc.wait(timeout=10)


def record(db, client, prefix: str) -> None:
    recorder = UsageRecorder(client, db, prefix=prefix)
    for tenant in TENANTS:
        create_tenant(db, tenant, "payg")
    for start in range(0, EVENTS, 500):
        tenant = TENANTS[start * len(TENANTS) // EVENTS]
        recorder.record(
            [
                {"id": f"e{i}", "tenant_id": tenant, "meter": "api_calls", "value": 2}
                for i in range(start, start + 500)
            ]
        )


def outcome(db, client, prefix: str) -> dict[str, int]:
    with db.connect() as conn:
        rows, distinct, quantity = conn.execute(
            text(
                "select count(*), count(distinct (tenant_id, event_id)), coalesce(sum(value), 0) "
                "from raw.usage_events"
            )
        ).one()
    left = sum(client.xlen(keys.stream_key(prefix, t)) for t in TENANTS)
    pending = sum(
        client.xpending(keys.stream_key(prefix, t), keys.GROUP)["pending"] for t in TENANTS
    )
    return {
        "lost": EVENTS - distinct,
        "double_counted": rows - distinct,
        "quantity": int(quantity),
        "left_in_streams": left,
        "pending": pending,
        "dead_letters": count_dead_letters(db),
    }


CLEAN = {"lost": 0, "double_counted": 0, "quantity": 2 * EVENTS, "left_in_streams": 0,
         "pending": 0, "dead_letters": 0}  # fmt: skip


def on_second(stage: str, action):
    seen = []

    def hook(at: str) -> None:
        if at == stage:
            seen.append(at)
            if len(seen) == 2:
                action()

    return hook


@pytest.mark.parametrize("stage", ["after_commit", "after_delete"])
def test_redis_killed_mid_load_and_restarted_loses_and_doubles_nothing(db, own_redis, stage):
    client, prefix = own_redis.client(), "mlfault"
    record(db, client, prefix)
    with pytest.raises(redis_lib.exceptions.ConnectionError):
        load_stream(
            client, db, prefix=prefix, batch_size=1000, crash_hook=on_second(stage, own_redis.kill)
        )
    with pytest.raises(redis_lib.exceptions.ConnectionError):  # still down: the run fails fast
        load_stream(client, db, prefix=prefix)

    own_redis.start()  # same port, same directory: the AOF is replayed
    stats = load_stream(client, db, prefix=prefix, consumer="after-restart", reclaim_idle_ms=0)
    result = outcome(db, client, prefix)
    print(f"\nredis killed at {stage} of batch 2, restarted: {result}, recovery run {stats}")
    assert result == CLEAN
    assert stats.reclaimed >= 1  # the killed run's pending entries, via XAUTOCLAIM


@pytest.fixture
def cut_off_postgres(test_services):
    """Cut the test database off (terminate its backends, refuse new connections), restore."""
    url = make_url(test_services.database_url)
    name = url.database
    admin = psycopg.connect(
        url.set(database="postgres").render_as_string(hide_password=False), autocommit=True
    )

    def cut() -> None:
        admin.execute(f'alter database "{name}" with allow_connections false')
        admin.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", (name,)
        )

    def restore() -> None:
        admin.execute(f'alter database "{name}" with allow_connections true')

    try:
        yield cut, restore
    finally:
        restore()
        admin.close()


def test_postgres_cut_off_mid_load_and_restored_loses_and_doubles_nothing(
    db, redis_client, test_services, cut_off_postgres
):
    cut, restore = cut_off_postgres
    prefix = test_services.redis_prefix
    record(db, redis_client, prefix)
    db_errors = (psycopg.OperationalError, sqlalchemy.exc.OperationalError)
    with pytest.raises(db_errors):  # the loader's backend dies just before its commit
        load_stream(redis_client, db, prefix=prefix, batch_size=1000,
                    crash_hook=on_second("before_commit", cut))  # fmt: skip
    with pytest.raises(db_errors):  # during the outage a run fails, sets nothing aside
        load_stream(redis_client, db, prefix=prefix)

    restore()
    stats = load_stream(redis_client, db, prefix=prefix)  # the pool reconnects (pre-ping)
    result = outcome(db, redis_client, prefix)
    print(f"\npostgres cut off before commit of batch 2, restored: {result}, recovery run {stats}")
    assert result == CLEAN
    assert stats.rows_loaded == EVENTS - 1000 and stats.duplicates_skipped == 0
