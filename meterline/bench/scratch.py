"""Where a benchmark runs: a scratch database, a Redis key prefix and a throwaway tenant, all
removed afterwards, so a benchmark never touches real data."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text

from ingestion import keys


@contextmanager
def scratch_database(database_url: str) -> Iterator[str]:
    """A migrated database ``<name>_bench_<random>`` next to ``database_url``, dropped after."""
    import psycopg
    from sqlalchemy.engine import make_url

    from meterline.core.db import get_engine, migrate
    from meterline.core.services import ensure_database

    url = make_url(database_url)
    name = f"{url.database}_bench_{secrets.token_hex(3)}"
    admin = url.set(database="postgres").render_as_string(hide_password=False)
    ensure_database(admin, name)
    scratch = url.set(database=name).render_as_string(hide_password=False)
    try:
        migrate(scratch)
        yield scratch
    finally:
        get_engine(scratch).dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def drop_prefix(redis, prefix: str) -> None:
    """Delete every key under ``<prefix>:``."""
    _unlink_matching(redis, f"{prefix}:*")


def _unlink_matching(redis, pattern: str) -> None:
    batch: list = []
    for key in redis.scan_iter(match=pattern, count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            redis.unlink(*batch)
            batch.clear()
    if batch:
        redis.unlink(*batch)


def redis_url_of(client) -> str:
    """The URL of a redis-py client's server, to open more connections (threads, processes)."""
    kw = client.connection_pool.connection_kwargs
    auth = ""
    if kw.get("password"):
        auth = f"{kw.get('username') or ''}:{kw['password']}@"
    if kw.get("path"):
        return f"unix://{auth}{kw['path']}?db={kw.get('db', 0)}"
    return f"redis://{auth}{kw.get('host', '127.0.0.1')}:{kw.get('port', 6379)}/{kw.get('db', 0)}"


@contextmanager
def bench_tenant(redis, engine: Engine, *, prefix: str) -> Iterator[str]:
    """A tenant ``bench-<random>`` on a plan without hard limits; afterwards it is removed with
    its events, snapshots and Redis keys."""
    from meterline.core.tenants import create_tenant

    tenant = f"bench-{secrets.token_hex(4)}"
    create_tenant(engine, tenant, _bench_plan(engine))
    try:
        yield tenant
    finally:
        _remove_tenant(redis, engine, prefix=prefix, tenant=tenant)


def _bench_plan(engine: Engine) -> str:
    """A plan without hard limits, preferring the largest api_calls limit (no refusals)."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                """
                select p.plan_id from meterline.plan_latest p
                where not exists (select 1 from meterline.plan_meters pm
                                  where pm.plan_id = p.plan_id
                                    and pm.plan_version = p.plan_version and pm.hard_limit)
                order by (select limit_quantity from meterline.plan_meters pm
                          where pm.plan_id = p.plan_id and pm.plan_version = p.plan_version
                            and pm.meter = 'api_calls') desc nulls last
                limit 1
                """
            )
        ).first()
    if row is None:
        raise RuntimeError("no plan without hard limits: run `meterline catalog load` first")
    return row[0]


def _remove_tenant(redis, engine: Engine, *, prefix: str, tenant: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("delete from raw.usage_events where tenant_id = :t"), {"t": tenant})
        conn.execute(text("delete from raw.counter_snapshots where tenant_id = :t"), {"t": tenant})
        conn.execute(text("delete from meterline.tenants where tenant_id = :t"), {"t": tenant})
    _unlink_matching(redis, f"{keys.base(prefix, tenant)}*")
    redis.srem(keys.streams_registry(prefix), tenant)
