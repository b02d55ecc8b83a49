"""Plan limits: read from Postgres (the tenant's current subscription -> ``plan_meters``) and
cached in Redis as one hash per tenant (``<prefix>:{t}:plan``), which the Lua script reads.

The cache expires after ``PLAN_CACHE_TTL`` seconds as a safety net; a plan change
(``meterline tenants set-plan``), a cancellation or a catalog load calls
:func:`invalidate_plan_cache`, so the change takes effect with the very next batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Engine, text

from ingestion import keys
from meterline.core import clock

PLAN_CACHE_TTL = 300

_PLANS_SQL = """
with current_plan as (
    select tenant_id, plan_id from meterline.plan_in_force
    where in_force @> cast(:at as timestamptz)
)
select t.tenant_id, t.status, c.plan_id, p.upgrade_to, p.name as plan_name, p.currency,
       m.meter, m.aggregation, m.unit, m.unique_dimension, pm.limit_quantity, pm.hard_limit,
       (pm.meter is not null) as in_plan
from meterline.tenants t
left join current_plan c on c.tenant_id = t.tenant_id
left join meterline.plans p on p.plan_id = c.plan_id
cross join meterline.meters m
left join meterline.plan_meters pm on pm.plan_id = c.plan_id and pm.meter = m.meter
{where}
order by t.tenant_id, m.meter
"""


@dataclass(frozen=True)
class MeterLimit:
    meter: str
    aggregation: str
    unit: str
    unique_dimension: str | None
    limit: Decimal | None
    hard_limit: bool
    in_plan: bool


@dataclass(frozen=True)
class PlanInfo:
    tenant_id: str
    status: str
    plan_id: str | None
    plan_name: str | None
    upgrade_to: str | None
    currency: str | None
    meters: dict[str, MeterLimit] = field(default_factory=dict)


def load_plans(
    engine: Engine, tenant_ids: Iterable[str] | None = None, *, at: datetime | None = None
) -> dict[str, PlanInfo]:
    """Current plan and per-meter limits of the given tenants (all tenants when None)."""
    params: dict = {"at": at or clock.now()}
    where = ""
    if tenant_ids is not None:
        params["ids"] = list(tenant_ids)
        where = "where t.tenant_id = any(:ids)"
    plans: dict[str, PlanInfo] = {}
    with engine.connect() as conn:
        for row in conn.execute(text(_PLANS_SQL.format(where=where)), params):
            info = plans.get(row.tenant_id)
            if info is None:
                info = plans[row.tenant_id] = PlanInfo(
                    tenant_id=row.tenant_id,
                    status=row.status,
                    plan_id=row.plan_id,
                    plan_name=row.plan_name,
                    upgrade_to=row.upgrade_to,
                    currency=(row.currency or "").strip() or None,
                )
            info.meters[row.meter] = MeterLimit(
                meter=row.meter,
                aggregation=row.aggregation,
                unit=row.unit,
                unique_dimension=row.unique_dimension,
                limit=row.limit_quantity,
                hard_limit=bool(row.hard_limit),
                in_plan=bool(row.in_plan),
            )
    return plans


def plan_hash(info: PlanInfo) -> dict[str, str]:
    """The Redis representation: ``<meter>`` -> ``<limit in micro-units>|<1 if hard>``."""
    fields = {
        "_status": info.status,
        "_plan": info.plan_id or "",
        "_upgrade": info.upgrade_to or "",
    }
    for meter, limit in info.meters.items():
        micro = "" if limit.limit is None else str(int(limit.limit * keys.MICRO))
        fields[meter] = f"{micro}|{1 if limit.hard_limit else 0}"
    return fields


def cache_plans(
    redis, prefix: str, plans: Iterable[PlanInfo], *, ttl: int = PLAN_CACHE_TTL
) -> None:
    pipe = redis.pipeline(transaction=False)
    for info in plans:
        key = keys.plan_key(prefix, info.tenant_id)
        pipe.delete(key)
        pipe.hset(key, mapping=plan_hash(info))
        pipe.expire(key, ttl)
    pipe.execute()


def refresh_plan_cache(
    redis, engine: Engine, *, prefix: str, tenant_ids: Iterable[str], ttl: int = PLAN_CACHE_TTL
) -> dict[str, PlanInfo]:
    """Load the tenants' plans from Postgres into the Redis cache; returns what was loaded.

    A tenant that does not exist gets a ``_status=missing`` entry so the script refuses it.
    """
    wanted = list(tenant_ids)
    plans = load_plans(engine, wanted)
    missing = [
        PlanInfo(
            tenant_id=t,
            status="missing",
            plan_id=None,
            plan_name=None,
            upgrade_to=None,
            currency=None,
        )
        for t in wanted
        if t not in plans
    ]
    cache_plans(redis, prefix, [*plans.values(), *missing], ttl=ttl)
    return plans


def invalidate_plan_cache(redis, *, prefix: str, tenant_id: str | None = None) -> int:
    """Drop the cached plan of one tenant (or of every tenant when ``tenant_id`` is None), so
    the next batch reloads it from Postgres. Returns the number of cache entries dropped."""
    if tenant_id is not None:
        return int(redis.delete(keys.plan_key(prefix, tenant_id)))
    dropped = 0
    batch: list = []
    for key in redis.scan_iter(match=f"{prefix}:{{*}}:plan", count=1000):
        batch.append(key)
        if len(batch) >= 500:
            dropped += int(redis.delete(*batch))
            batch.clear()
    if batch:
        dropped += int(redis.delete(*batch))
    return dropped
