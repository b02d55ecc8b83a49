"""The tenant page's summary: profile, this month's live usage per meter, and the cost so far
and projected for the month.

- Usage, limits, percentages and remaining amounts come from the live counters
  (:func:`ingestion.usage.live_usage`), the same numbers the quota check enforces.
- Estimated and projected cost come from the marts (``fct_tenant_overview``, ``fct_invoices``,
  ``fct_invoice_lines``) as of the last pipeline run; before the first run, from the live
  counters through the cost estimator.

Money is integer minor units with a ``currency``; quantities are Decimals.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Connection, Engine, text

from ingestion.api.usage_endpoint import CostEstimator
from ingestion.usage import MeterUsage, live_usage, month_start
from meterline.core import clock
from meterline.core.numbers import json_number
from meterline.core.quota_levels import DEFAULT_THRESHOLDS, level
from portal.marts import marts_available


def tenant_profile(conn: Connection, tenant_id: str, at: datetime) -> dict | None:
    row = conn.execute(
        text(
            """
            select t.tenant_id, t.name, t.status, t.currency, s.plan_id, p.name as plan_name
            from meterline.tenants t
            left join lateral (
                select f.plan_id, f.plan_version from meterline.plan_in_force f
                where f.tenant_id = t.tenant_id and f.in_force @> cast(:at as timestamptz)
            ) s on true
            left join meterline.plans p
              on p.plan_id = s.plan_id and p.plan_version = s.plan_version
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
    """Profile, live usage per meter and the cost so far / projected for this month; None
    when the tenant does not exist."""
    now = now or clock.now()
    month = month_start(now)
    with engine.connect() as conn:
        profile = tenant_profile(conn, tenant_id, now)
        if profile is None:
            return None
        marts = marts_available(conn)
        costs = _mart_costs(conn, tenant_id, month.date()) if marts else None
        loaded = _usage_loaded_until(conn, tenant_id) if marts else None
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


def _usage_loaded_until(conn: Connection, tenant_id: str) -> datetime | None:
    """The newest loaded event in the tenant's daily rollup: how fresh the marts are."""
    return conn.execute(
        text("select max(max_loaded_at) from analytics.fct_usage_daily where tenant_id = :t"),
        {"t": tenant_id},
    ).scalar()


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
                "quantity": json_number(line.quantity),
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
