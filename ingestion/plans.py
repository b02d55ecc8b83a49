"""Plan limits: read from Postgres and cached in Redis as one hash per tenant
(``<prefix>:{t}:plan``), which the Lua script reads.

``load_plans`` gives the plan in force now (live usage pages). The cache holds the tenant's
plan *history* from a recent instant on (``load_plan_history``: every term of the view
``meterline.plan_in_force`` since ``covers``), so the script judges each event against the
plan in force at the event's own timestamp; an event older than ``covers`` makes the script
answer ``STALE`` and the recorder reloads the cache from that event's time. Limits are those of
the plan version each term pays (``plan_version``).

The cache expires after ``PLAN_CACHE_TTL`` seconds as a safety net; a plan change
(``meterline tenants set-plan``, ``meterline plans migrate``), a cancellation or a catalog load
calls :func:`invalidate_plan_cache`, so the change takes effect with the very next batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Engine, text

from ingestion import keys
from ingestion.validation import COUNTER_CAPACITY
from meterline.core import clock

PLAN_CACHE_TTL = 300

_PLANS_SQL = """
with current_plan as (
    select tenant_id, plan_id, plan_version from meterline.plan_in_force
    where in_force @> cast(:at as timestamptz)
)
select t.tenant_id, t.status, c.plan_id, p.upgrade_to, p.name as plan_name, p.currency,
       m.meter, m.aggregation, m.unit, m.unique_dimension, pm.limit_quantity, pm.hard_limit,
       (pm.meter is not null) as in_plan
from meterline.tenants t
left join current_plan c on c.tenant_id = t.tenant_id
left join meterline.plans p on p.plan_id = c.plan_id and p.plan_version = c.plan_version
cross join meterline.meters m
left join meterline.plan_meters pm
  on pm.plan_id = c.plan_id and pm.plan_version = c.plan_version and pm.meter = m.meter
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


_HISTORY_SQL = """
select t.tenant_id, t.status, pf.plan_id, p.upgrade_to,
       (extract(epoch from pf.effective_from) * 1000000)::bigint as from_us,
       (extract(epoch from pf.effective_to) * 1000000)::bigint as to_us,
       pm.meter, pm.limit_quantity, pm.hard_limit
from meterline.tenants t
left join meterline.plan_in_force pf
  on pf.tenant_id = t.tenant_id and pf.in_force && tstzrange(cast(:covers as timestamptz), null)
left join meterline.plans p on p.plan_id = pf.plan_id and p.plan_version = pf.plan_version
left join meterline.plan_meters pm
  on pm.plan_id = pf.plan_id and pm.plan_version = pf.plan_version
where t.tenant_id = any(:ids)
order by t.tenant_id, pf.effective_from, pm.meter
"""


@dataclass
class PlanTerm:
    """One plan term (a row of the view ``meterline.plan_in_force``) and its limits."""

    plan_id: str
    upgrade_to: str | None
    from_us: int
    to_us: int | None
    limits: dict[str, tuple[Decimal | None, bool]] = field(default_factory=dict)


@dataclass
class PlanHistory:
    """A tenant's plan terms that overlap ``[covers, infinity)``, oldest first."""

    tenant_id: str
    status: str
    covers_us: int
    terms: list[PlanTerm] = field(default_factory=list)


def load_plan_history(
    engine: Engine, tenant_ids: Iterable[str], *, covers: datetime
) -> dict[str, PlanHistory]:
    """The plan terms in force at any instant from ``covers`` on (the view
    ``meterline.plan_in_force``, the one rule of "the plan at an instant"), with their limits."""
    covers_us = int(covers.timestamp() * 1_000_000)
    histories: dict[str, PlanHistory] = {}
    with engine.connect() as conn:
        rows = conn.execute(text(_HISTORY_SQL), {"ids": list(tenant_ids), "covers": covers})
        for row in rows:
            history = histories.get(row.tenant_id)
            if history is None:
                history = histories[row.tenant_id] = PlanHistory(
                    row.tenant_id, row.status, covers_us
                )
            if row.plan_id is None:
                continue
            if not history.terms or history.terms[-1].from_us != row.from_us:
                history.terms.append(PlanTerm(row.plan_id, row.upgrade_to, row.from_us, row.to_us))
            if row.meter is not None:
                history.terms[-1].limits[row.meter] = (row.limit_quantity, bool(row.hard_limit))
    return histories


def plan_hash(history: PlanHistory) -> dict[str, str]:
    """The Redis representation the script reads (ingestion/lua/record.lua):
    ``_status``, ``_covers`` (epoch µs), ``_n`` terms, per term ``i`` (1 = oldest)
    ``_seg:<i>`` = ``<from µs>|<to µs or empty>|<plan>|<upgrade>`` and
    ``<i>:<meter>`` = ``<limit in micro-units>|<1 if hard>`` (a limit above the counter
    capacity is stored as the capacity: it can never be reached anyway)."""
    status = history.status if history.terms or history.status != "active" else "no_plan"
    fields = {
        "_status": status,
        "_covers": str(history.covers_us),
        "_n": str(len(history.terms)),
    }
    for i, term in enumerate(history.terms, start=1):
        to_us = "" if term.to_us is None else str(term.to_us)
        fields[f"_seg:{i}"] = f"{term.from_us}|{to_us}|{term.plan_id}|{term.upgrade_to or ''}"
        for meter, (limit, hard) in term.limits.items():
            micro = "" if limit is None else str(min(COUNTER_CAPACITY, int(limit * keys.MICRO)))
            fields[f"{i}:{meter}"] = f"{micro}|{1 if hard else 0}"
    return fields


def cache_plans(
    redis, prefix: str, histories: Iterable[PlanHistory], *, ttl: int = PLAN_CACHE_TTL
) -> None:
    pipe = redis.pipeline(transaction=False)
    for history in histories:
        key = keys.plan_key(prefix, history.tenant_id)
        pipe.delete(key)
        pipe.hset(key, mapping=plan_hash(history))
        pipe.expire(key, ttl)
    pipe.execute()


def refresh_plan_cache(
    redis,
    engine: Engine,
    *,
    prefix: str,
    tenant_ids: Iterable[str],
    covers: datetime,
    ttl: int = PLAN_CACHE_TTL,
) -> dict[str, PlanHistory]:
    """Load the tenants' plan terms from ``covers`` on into the Redis cache.

    A tenant that does not exist gets a ``_status=missing`` entry so the script refuses it.
    """
    wanted = list(tenant_ids)
    histories = load_plan_history(engine, wanted, covers=covers)
    covers_us = int(covers.timestamp() * 1_000_000)
    missing = [PlanHistory(t, "missing", covers_us) for t in wanted if t not in histories]
    cache_plans(redis, prefix, [*histories.values(), *missing], ttl=ttl)
    return histories


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
