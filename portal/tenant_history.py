"""The tenant page's history: daily usage per meter (``analytics.fct_usage_daily``), the alerts
it received (``meterline.alerts``) and its invoices (``meterline.invoices``).

Every function takes the tenant id it may read, so a tenant's request only reaches its own
rows."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import Engine, text

from meterline.core import clock
from meterline.core.numbers import json_number
from portal.marts import marts_available


def usage_trend(engine: Engine, tenant_id: str, *, days: int, today: date) -> list[dict]:
    """Per meter, the daily quantities of the last ``days`` days (today included) from
    ``analytics.fct_usage_daily``, zero-filled; the meters of the current plan are listed
    even without usage. ``_points`` (the Decimals) is for the chart, not for the JSON."""
    start = today - timedelta(days=days - 1)
    with engine.connect() as conn:
        if not marts_available(conn):
            return []
        meters = conn.execute(
            text(
                """
                select pm.meter from meterline.plan_in_force f
                join meterline.plan_meters pm
                  on pm.plan_id = f.plan_id and pm.plan_version = f.plan_version
                where f.tenant_id = :t and f.in_force @> cast(:at as timestamptz)
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
    return [
        _meter_trend(meter, aggregations.get(meter), series[meter], start, days)
        for meter in sorted(series)
    ]


def _meter_trend(
    meter: str, aggregation: str | None, values: dict[date, Decimal], start: date, days: int
) -> dict:
    points = [values.get(start + timedelta(days=i), Decimal(0)) for i in range(days)]
    return {
        "meter": meter,
        "aggregation": aggregation,
        "start": start.isoformat(),
        "days": days,
        "values": [json_number(v) for v in points],
        "total": json_number(sum(points, Decimal(0))),
        "peak": json_number(max(points, default=Decimal(0))),
        "_points": points,
    }


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
            "usage_percent": json_number(r.usage_percent),
            "quantity": json_number(r.quantity),
            "limit": json_number(r.limit_quantity),
            "channel": r.channel,
            "delivery_status": r.delivery_status,
            "fired_at": r.fired_at.isoformat(),
        }
        for r in rows
    ]


def tenant_invoices(engine: Engine, tenant_id: str) -> list[dict]:
    """The tenant's invoices, newest month first, with the status Stripe's webhooks last told
    (``paid``, ``payment_failed``, ``void``...); ``past_due``: open after its due date."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                """
                select period, stripe_invoice_id, status, currency, amount_due, created_at,
                       finalized_at, due_at, paid_at,
                       status in ('open', 'payment_failed') and due_at < :now as past_due
                from meterline.invoices where tenant_id = :t order by period desc
                """
            ),
            {"t": tenant_id, "now": clock.now()},
        ).all()
    return [
        {
            "period": r.period.strftime("%Y-%m"),
            "stripe_invoice_id": r.stripe_invoice_id,
            "status": r.status,
            "currency": r.currency.strip(),
            "amount_due": int(r.amount_due),
            "finalized_at": r.finalized_at.isoformat() if r.finalized_at else None,
            "due_at": r.due_at.isoformat() if r.due_at else None,
            "paid_at": r.paid_at.isoformat() if r.paid_at else None,
            "past_due": bool(r.past_due),
        }
        for r in rows
    ]
