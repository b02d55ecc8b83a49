"""The admin overview: every tenant, highest percentage of any limit first (live counters;
the marts' figure when a tenant has no live counters), with estimated and projected cost, MRR,
allocated infrastructure cost and margin from the marts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import Connection, Engine, Row, text

from ingestion.usage import MeterUsage, all_live_usage, month_start
from meterline.core import clock
from meterline.core.numbers import json_number
from meterline.core.quota_levels import DEFAULT_THRESHOLDS, level, quota_status
from portal.marts import marts_available

_ADMIN_BASE = """
with current_plan as (
    select tenant_id, plan_id from meterline.plan_in_force
    where in_force @> cast(:at as timestamptz)
)
select t.tenant_id, t.name, t.status, t.currency, cp.plan_id{extra_columns}
from meterline.tenants t
left join current_plan cp on cp.tenant_id = t.tenant_id
{extra_joins}
"""
_ADMIN_MART_COLUMNS = """,
    o.top_meter, o.top_percent, o.quota_status, o.estimated_cost, o.projected_cost,
    o.currency as cost_currency, coalesce(m.mrr, 0) as mrr, m.currency as mrr_currency,
    a.allocated_cost, a.revenue, a.gross_margin, a.margin_pct, a.currency as alloc_currency"""
_ADMIN_MART_JOINS = """
left join analytics.fct_tenant_overview o on o.tenant_id = t.tenant_id
left join analytics.fct_mrr m on m.tenant_id = t.tenant_id and m.month = :month
left join (
    select tenant_id, max(tenant_allocated_cost) as allocated_cost, max(revenue) as revenue,
           max(gross_margin) as gross_margin, max(margin_pct) as margin_pct, max(currency) as currency
    from analytics.fct_cost_allocation where month = :finance_month
    group by tenant_id
) a on a.tenant_id = t.tenant_id
"""


def admin_overview(
    engine: Engine,
    redis,
    *,
    prefix: str,
    now: datetime | None = None,
    thresholds: Sequence[int] = DEFAULT_THRESHOLDS,
) -> dict:
    """Every tenant with its top limit, quota status, cost, MRR, allocated cost and margin.
    ``finance_month`` is the newest month with allocated costs (usually the last closed one)."""
    now = now or clock.now()
    month = month_start(now).date()
    with engine.connect() as conn:
        marts = marts_available(conn)
        finance_month = _finance_month(conn, month) if marts else None
        rows = _tenant_rows(conn, now, month, finance_month, marts)
        plans = [
            r[0]
            for r in conn.execute(
                text("select plan_id from meterline.plan_latest order by base_fee, plan_id")
            )
        ]
    live = all_live_usage(redis, engine, prefix=prefix, month=month)
    items = [_item(row, live.get(row.tenant_id, []), marts, thresholds) for row in rows]
    items.sort(
        key=lambda i: (
            -(i["max_percent"] if i["max_percent"] is not None else -1),
            i["tenant_id"],
        )
    )
    return {
        "month": month.strftime("%Y-%m"),
        "finance_month": finance_month.strftime("%Y-%m") if finance_month else None,
        "marts": marts,
        "plans": plans,
        "items": items,
    }


def _finance_month(conn: Connection, month: date) -> date | None:
    return conn.execute(
        text("select max(month) from analytics.fct_cost_allocation where month <= :m"),
        {"m": month},
    ).scalar()


def _tenant_rows(
    conn: Connection, now: datetime, month: date, finance_month: date | None, marts: bool
) -> list[Row]:
    sql = _ADMIN_BASE.format(
        extra_columns=_ADMIN_MART_COLUMNS if marts else "",
        extra_joins=_ADMIN_MART_JOINS if marts else "",
    )
    return conn.execute(
        text(sql), {"at": now, "month": month, "finance_month": finance_month}
    ).all()


def _top_limit(row: Row, live: list[MeterUsage], marts: bool) -> tuple[float | None, str | None]:
    """The highest percentage of a limit and its meter: live, else the marts' figure."""
    usage = [u for u in live if u.percent is not None]
    top = max(usage, key=lambda u: (u.percent, u.meter), default=None)
    if top is not None and (top.percent > 0 or not marts or row.top_percent is None):
        return round(top.percent, 2), top.meter
    if marts and row.top_percent is not None:
        return float(row.top_percent), row.top_meter
    return None, None


def _item(row: Row, live: list[MeterUsage], marts: bool, thresholds: Sequence[int]) -> dict:
    percent, top_meter = _top_limit(row, live, marts)
    item = {
        "tenant_id": row.tenant_id,
        "name": row.name,
        "status": row.status,
        "plan": row.plan_id,
        "max_percent": percent,
        "top_meter": top_meter,
        "quota_status": quota_status(percent, thresholds),
        "level": level(percent, thresholds),
        "currency": row.currency.strip(),
    }
    if marts:
        item.update(
            estimated_cost=json_number(row.estimated_cost),
            projected_cost=json_number(row.projected_cost),
            currency=(row.cost_currency or row.currency).strip(),
            mrr=int(row.mrr),
            allocated_cost=json_number(row.allocated_cost),
            revenue=json_number(row.revenue),
            gross_margin=json_number(row.gross_margin),
            margin_pct=json_number(row.margin_pct),
        )
    return item
