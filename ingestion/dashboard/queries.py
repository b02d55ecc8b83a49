"""What the dashboard shows, read from the live Redis counters and the dbt marts.

- Current-month usage, limits, percentages and remaining amounts come from the live counters
  (:func:`ingestion.usage.live_usage`), the same numbers the quota check enforces.
- Daily trends, estimated and projected cost, MRR, cost allocation and margin come from the
  marts in schema ``analytics`` as of the last pipeline run (``meterline pipeline run``).
- Alerts and invoices come from ``meterline.alerts`` and ``meterline.invoices``.

Every function takes the tenant id it may read, so a tenant's request can only reach its own
rows. Money is integer minor units with a ``currency``; quantities are Decimals.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Connection, Engine, text

from alerts.thresholds import DEFAULT_THRESHOLDS
from ingestion.usage import MeterUsage, all_live_usage, live_usage, month_start
from meterline.core import clock

MARTS = (
    "analytics.fct_usage_daily",
    "analytics.fct_tenant_overview",
    "analytics.fct_invoice_lines",
    "analytics.fct_invoices",
    "analytics.fct_mrr",
    "analytics.fct_cost_allocation",
)
CostEstimator = Callable[[str, list[MeterUsage]], dict[str, Decimal]]


def level(percent: float | None, thresholds: Sequence[int] = DEFAULT_THRESHOLDS) -> int:
    """The highest threshold reached (0 below the first): the quota bar's colour class."""
    if percent is None:
        return 0
    reached = [t for t in sorted(thresholds) if percent >= t]
    return reached[-1] if reached else 0


def quota_status(percent: float | None, thresholds: Sequence[int] = DEFAULT_THRESHOLDS) -> str:
    if percent is None:
        return "ok"
    if percent >= 100:
        return "exceeded"
    return "warning" if percent >= min(thresholds) else "ok"


def marts_available(conn: Connection) -> bool:
    names = conn.execute(
        text(
            "select count(to_regclass(n)) = cardinality(cast(:names as text[])) "
            "from unnest(cast(:names as text[])) as n"
        ),
        {"names": list(MARTS)},
    ).scalar()
    return bool(names)


def _num(value):
    if value is None:
        return None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value.normalize())
    return value


def page_of(items: list, page: int, per_page: int) -> dict:
    total = len(items)
    pages = max(1, -(-total // per_page))
    start = (page - 1) * per_page
    return {
        "items": items[start : start + per_page],
        "page": page,
        "per_page": per_page,
        "total": total,
        "pages": pages,
    }


# --- tenant ----------------------------------------------------------------------------------
def tenant_profile(conn: Connection, tenant_id: str, at: datetime) -> dict | None:
    row = conn.execute(
        text(
            """
            select t.tenant_id, t.name, t.status, t.currency, s.plan_id, p.name as plan_name
            from meterline.tenants t
            left join lateral (
                select plan_id from meterline.subscriptions s
                where s.tenant_id = t.tenant_id and s.effective_from <= :at
                  and (s.effective_to is null or s.effective_to > :at)
                order by s.effective_from desc limit 1
            ) s on true
            left join meterline.plans p on p.plan_id = s.plan_id
            where t.tenant_id = :t
            """
        ),
        {"t": tenant_id, "at": at},
    ).first()
    if row is None:
        return None
    return {
        "tenant_id": row.tenant_id,
        "name": row.name,
        "status": row.status,
        "currency": row.currency.strip(),
        "plan": row.plan_id,
        "plan_name": row.plan_name,
    }


def meter_rows(
    usage: list[MeterUsage], thresholds: Sequence[int] = DEFAULT_THRESHOLDS
) -> list[dict]:
    rows = []
    for item in usage:
        data = item.as_dict()
        rows.append(
            {
                "meter": data["meter"],
                "unit": data["unit"],
                "aggregation": data["aggregation"],
                "quantity": data["quantity"],
                "limit": data["limit"],
                "remaining": data["remaining"],
                "percent": data["percent"],
                "hard_limit": data["hard_limit"],
                "refused": data["refused"],
                "level": level(item.percent, thresholds),
            }
        )
    return rows


def tenant_summary(
    engine: Engine,
    redis,
    tenant_id: str,
    *,
    prefix: str,
    now: datetime | None = None,
    thresholds: Sequence[int] = DEFAULT_THRESHOLDS,
    cost_estimator: CostEstimator | None = None,
) -> dict | None:
    """Profile, live usage per meter and the cost so far / projected for this month."""
    now = now or clock.now()
    month = month_start(now)
    with engine.connect() as conn:
        profile = tenant_profile(conn, tenant_id, now)
        if profile is None:
            return None
        marts = marts_available(conn)
        costs = _mart_costs(conn, tenant_id, month.date()) if marts else None
        loaded = (
            conn.execute(
                text(
                    "select max(max_loaded_at) from analytics.fct_usage_daily where tenant_id = :t"
                ),
                {"t": tenant_id},
            ).scalar()
            if marts
            else None
        )
    try:
        usage = live_usage(redis, engine, tenant_id, prefix=prefix, month=month)
    except KeyError:
        usage = []
    if costs is None and cost_estimator is not None and usage:
        costs = _live_costs(tenant_id, usage, profile["currency"], cost_estimator)
    return {
        **profile,
        "month": month.strftime("%Y-%m"),
        "thresholds": list(thresholds),
        "meters": meter_rows(usage, thresholds),
        "costs": costs,
        "marts": marts,
        "usage_loaded_until": loaded.isoformat() if loaded else None,
    }


def _mart_costs(conn: Connection, tenant_id: str, month: date) -> dict | None:
    overview = conn.execute(
        text(
            "select estimated_cost, projected_cost, currency from analytics.fct_tenant_overview "
            "where tenant_id = :t"
        ),
        {"t": tenant_id},
    ).first()
    if overview is None:
        return None
    invoice = conn.execute(
        text(
            "select base_fee_amount, usage_amount from analytics.fct_invoices "
            "where tenant_id = :t and month = :m"
        ),
        {"t": tenant_id, "m": month},
    ).first()
    lines = conn.execute(
        text(
            "select line_key, line_type, meter, description, quantity, amount "
            "from analytics.fct_invoice_lines where tenant_id = :t and month = :m "
            "order by line_type, meter nulls first"
        ),
        {"t": tenant_id, "m": month},
    ).all()
    base_fee = int(invoice.base_fee_amount) if invoice else 0
    projected = int(overview.projected_cost)
    return {
        "source": "marts",
        "currency": overview.currency.strip(),
        "estimated_cost": int(overview.estimated_cost),
        "projected_cost": projected,
        "base_fee": base_fee,
        "usage_so_far": int(invoice.usage_amount) if invoice else 0,
        "projected_usage": projected - base_fee,
        "lines": [
            {
                "line_key": line.line_key,
                "type": line.line_type,
                "meter": line.meter,
                "description": line.description,
                "quantity": _num(line.quantity),
                "amount": int(line.amount),
            }
            for line in lines
        ],
    }


def _live_costs(tenant_id, usage, currency, cost_estimator) -> dict:
    """Before the first pipeline run: per-meter usage cost from the live counters (major
    units, as text) - no base fee, no projection."""
    costs = cost_estimator(tenant_id, usage)
    return {
        "source": "live",
        "currency": currency,
        "usage_so_far_major": str(sum(costs.values(), Decimal(0))),
        "lines": [
            {"meter": meter, "description": meter, "amount_major": str(amount)}
            for meter, amount in sorted(costs.items())
        ],
    }


def usage_trend(engine: Engine, tenant_id: str, *, days: int, today: date) -> list[dict]:
    """Per meter, the daily quantities of the last ``days`` days (today included) from
    ``analytics.fct_usage_daily``, zero-filled; the meters of the current plan are listed
    even without usage."""
    start = today - timedelta(days=days - 1)
    with engine.connect() as conn:
        if not marts_available(conn):
            return []
        meters = conn.execute(
            text(
                """
                select pm.meter from meterline.subscriptions s
                join meterline.plan_meters pm on pm.plan_id = s.plan_id
                where s.tenant_id = :t and s.effective_from <= :at
                  and (s.effective_to is null or s.effective_to > :at)
                """
            ),
            {"t": tenant_id, "at": clock.now()},
        ).scalars()
        series: dict[str, dict[date, Decimal]] = {m: {} for m in meters}
        aggregations = dict(
            conn.execute(text("select meter, aggregation from meterline.meters")).all()
        )
        rows = conn.execute(
            text(
                "select meter, day, quantity from analytics.fct_usage_daily "
                "where tenant_id = :t and day >= :s and day <= :e order by meter, day"
            ),
            {"t": tenant_id, "s": start, "e": today},
        ).all()
    for row in rows:
        series.setdefault(row.meter, {})[row.day] = row.quantity
    out = []
    for meter in sorted(series):
        values = series[meter]
        points = [values.get(start + timedelta(days=i), Decimal(0)) for i in range(days)]
        out.append(
            {
                "meter": meter,
                "aggregation": aggregations.get(meter),
                "start": start.isoformat(),
                "days": days,
                "values": [_num(v) for v in points],
                "total": _num(sum(points, Decimal(0))),
                "peak": _num(max(points, default=Decimal(0))),
                "_points": points,
            }
        )
    return out


def tenant_alerts(engine: Engine, tenant_id: str) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                """
                select meter, period_start, threshold, usage_percent, quantity, limit_quantity,
                       channel, delivery_status, fired_at, delivered_at
                from meterline.alerts where tenant_id = :t
                order by fired_at desc, threshold desc, meter, channel
                """
            ),
            {"t": tenant_id},
        ).all()
    return [
        {
            "meter": r.meter,
            "period": r.period_start.strftime("%Y-%m"),
            "threshold": r.threshold,
            "usage_percent": _num(r.usage_percent),
            "quantity": _num(r.quantity),
            "limit": _num(r.limit_quantity),
            "channel": r.channel,
            "delivery_status": r.delivery_status,
            "fired_at": r.fired_at.isoformat(),
        }
        for r in rows
    ]


def tenant_invoices(engine: Engine, tenant_id: str) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                """
                select period, stripe_invoice_id, status, currency, amount_due, created_at,
                       finalized_at
                from meterline.invoices where tenant_id = :t order by period desc
                """
            ),
            {"t": tenant_id},
        ).all()
    return [
        {
            "period": r.period.strftime("%Y-%m"),
            "stripe_invoice_id": r.stripe_invoice_id,
            "status": r.status,
            "currency": r.currency.strip(),
            "amount_due": int(r.amount_due),
            "finalized_at": r.finalized_at.isoformat() if r.finalized_at else None,
        }
        for r in rows
    ]


# --- admin -----------------------------------------------------------------------------------
_ADMIN_BASE = """
with current_plan as (
    select distinct on (tenant_id) tenant_id, plan_id
    from meterline.subscriptions
    where effective_from <= :at and (effective_to is null or effective_to > :at)
    order by tenant_id, effective_from desc
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
    """Every tenant, highest percentage of any limit first (live counters; the marts'
    figure when a tenant has no live counters), with cost, MRR, allocated cost and margin.
    ``finance_month`` is the newest month with allocated costs (usually the last closed one)."""
    now = now or clock.now()
    month = month_start(now).date()
    with engine.connect() as conn:
        marts = marts_available(conn)
        finance_month = None
        if marts:
            finance_month = conn.execute(
                text("select max(month) from analytics.fct_cost_allocation where month <= :m"),
                {"m": month},
            ).scalar()
        sql = _ADMIN_BASE.format(
            extra_columns=_ADMIN_MART_COLUMNS if marts else "",
            extra_joins=_ADMIN_MART_JOINS if marts else "",
        )
        rows = conn.execute(
            text(sql), {"at": now, "month": month, "finance_month": finance_month}
        ).all()
        plans = [
            r[0]
            for r in conn.execute(
                text("select plan_id from meterline.plans order by base_fee, plan_id")
            )
        ]
    live = all_live_usage(redis, engine, prefix=prefix, month=month)
    items = []
    for row in rows:
        usage = [u for u in live.get(row.tenant_id, []) if u.percent is not None]
        top = max(usage, key=lambda u: (u.percent, u.meter), default=None)
        if top is not None and (top.percent > 0 or not marts or row.top_percent is None):
            percent, top_meter = round(top.percent, 2), top.meter
        elif marts and row.top_percent is not None:
            percent, top_meter = float(row.top_percent), row.top_meter
        else:
            percent, top_meter = None, None
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
                estimated_cost=_num(row.estimated_cost),
                projected_cost=_num(row.projected_cost),
                currency=(row.cost_currency or row.currency).strip(),
                mrr=int(row.mrr),
                allocated_cost=_num(row.allocated_cost),
                revenue=_num(row.revenue),
                gross_margin=_num(row.gross_margin),
                margin_pct=_num(row.margin_pct),
            )
        items.append(item)
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
