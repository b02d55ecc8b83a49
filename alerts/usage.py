"""Current usage of every active tenant's limited meters: the live Redis counters of the
metering engine, with ``raw.usage_events`` in Postgres as the fallback."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal

from redis.exceptions import RedisError
from sqlalchemy import Engine, text

from alerts.thresholds import UsageRow
from ingestion import keys
from ingestion.aggregation import aggregated_quantity_sql
from meterline.core import clock, periods

log = logging.getLogger(__name__)

_LIMITS_SQL = """
select f.tenant_id, pm.meter, pm.limit_quantity, m.aggregation, m.unique_dimension
from meterline.plan_in_force f
join meterline.tenants t on t.tenant_id = f.tenant_id and t.status = 'active'
join meterline.plan_meters pm on pm.plan_id = f.plan_id and pm.plan_version = f.plan_version
 and pm.limit_quantity is not null
join meterline.meters m on m.meter = pm.meter
where f.in_force @> cast(:now as timestamptz)
order by f.tenant_id, pm.meter
"""

_PG_USAGE_SQL = f"""
select e.tenant_id, e.meter,
       {aggregated_quantity_sql(events="e", meters="m")} as quantity
from raw.usage_events e
join meterline.meters m on m.meter = e.meter
where e.tenant_id = any(:tenants) and e.occurred_at >= :start and e.occurred_at < :end
group by e.tenant_id, e.meter, m.aggregation, m.unique_dimension
"""


def current_usage(
    redis,
    engine: Engine,
    *,
    prefix: str,
    month: date | datetime | str | None = None,
    now: datetime | None = None,
) -> list[UsageRow]:
    """Usage of every active tenant's limited meters in ``month`` (a date, an instant or
    ``YYYY-MM``; default: this month).

    Source, per tenant: the live Redis counters of the metering engine (the month hash
    ``<prefix>:{t}:m:<YYYYMM>`` in micro-units, HyperLogLog/exact set for unique meters)
    when that hash exists - the same numbers the quota check enforces; otherwise (and for
    every tenant while Redis is unreachable) Postgres: ``raw.usage_events`` of the month
    aggregated per the meter's aggregation. Limits come from the tenant's current
    subscription (``plan_meters.limit_quantity``)."""
    if isinstance(month, str):
        start = periods.parse_month(month)
    else:
        start = periods.month_start(month or clock.now())
    at = now or clock.now()
    with engine.connect() as conn:
        limits = conn.execute(text(_LIMITS_SQL), {"now": at}).all()
    if not limits:
        return []
    by_tenant: dict[str, list] = {}
    for row in limits:
        by_tenant.setdefault(row.tenant_id, []).append(row)

    quantities: dict[tuple[str, str], Decimal] = {}
    sources: dict[str, str] = {}
    if redis is not None:
        try:
            quantities, live = _redis_usage(redis, prefix, f"{start:%Y%m}", by_tenant)
        except (RedisError, OSError) as exc:
            # Redis down: alerts keep working from Postgres (lagging by the loader's interval).
            log.warning("live usage: Redis unavailable (%s), reading raw.usage_events instead", exc)
            quantities, live = {}, []
        sources = dict.fromkeys(live, "redis")
    fallback = [t for t in by_tenant if t not in sources]
    if fallback:
        window_start, window_end = periods.month_bounds(start)
        with engine.connect() as conn:
            for row in conn.execute(
                text(_PG_USAGE_SQL),
                {"tenants": fallback, "start": window_start, "end": window_end},
            ):
                quantities[(row.tenant_id, row.meter)] = Decimal(row.quantity or 0)
    return [
        UsageRow(
            tenant_id=tenant,
            meter=row.meter,
            quantity=quantities.get((tenant, row.meter), Decimal(0)),
            limit=Decimal(row.limit_quantity),
            source=sources.get(tenant, "postgres"),
        )
        for tenant, rows in sorted(by_tenant.items())
        for row in rows
    ]


def _redis_usage(redis, prefix: str, month: str, by_tenant: Mapping[str, list]):
    """One pipeline: EXISTS + HMGET of each month hash, PFCOUNT/SCARD for unique meters."""
    pipe = redis.pipeline(transaction=False)
    plan: list[tuple] = []
    for tenant, rows in by_tenant.items():
        mkey = keys.month_key(prefix, tenant, month)
        pipe.exists(mkey)
        plain = [r.meter for r in rows if r.aggregation != "unique_count"]
        if plain:
            pipe.hmget(mkey, plain)
        uniques = [r.meter for r in rows if r.aggregation == "unique_count"]
        for meter in uniques:
            pipe.pfcount(keys.unique_month_key(prefix, tenant, meter, month))
            pipe.scard(keys.base(prefix, tenant) + f"us:{meter}:{month}")
        plan.append((tenant, plain, uniques))
    replies = iter(pipe.execute())
    quantities: dict[tuple[str, str], Decimal] = {}
    live: list[str] = []
    for tenant, plain, uniques in plan:
        exists = bool(next(replies))
        values = next(replies) if plain else []
        counts = [(next(replies), next(replies)) for _ in uniques]
        if not exists:
            continue
        live.append(tenant)
        for meter, raw in zip(plain, values, strict=True):
            micro = int(raw) if raw is not None else 0
            quantities[(tenant, meter)] = Decimal(micro) / keys.MICRO
        for meter, (approx, exact) in zip(uniques, counts, strict=True):
            quantities[(tenant, meter)] = Decimal(max(int(approx), int(exact)))
    return quantities, live
