"""A month's usage per tenant and the tenants closest to a limit, read from the dbt marts
(``analytics.fct_usage_monthly``, ``analytics.fct_tenant_overview``) as plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import Engine, text

from meterline.core import clock


@dataclass(frozen=True)
class TenantMonthUsage:
    tenant_id: str
    plan_id: str  # "canceled" when no plan is in force now
    quantities: dict[str, Decimal] = field(default_factory=dict)  # meter -> quantity


@dataclass(frozen=True)
class TenantNearLimit:
    tenant_id: str
    plan_id: str | None
    top_meter: str | None
    top_percent: Decimal | None
    estimated_cost: Decimal | None
    projected_cost: Decimal | None
    currency: str


def monthly_usage_by_tenant(engine: Engine, month: date) -> list[TenantMonthUsage]:
    """Every tenant (by id) with its plan in force now and its usage per meter in ``month``."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                """
                select t.tenant_id, coalesce(s.plan_id, 'canceled') as plan_id, u.meter, u.quantity
                from meterline.tenants t
                left join meterline.plan_in_force s
                  on s.tenant_id = t.tenant_id and s.in_force @> cast(:now as timestamptz)
                left join analytics.fct_usage_monthly u
                  on u.tenant_id = t.tenant_id and u.month = :month
                order by t.tenant_id
                """
            ),
            {"month": month, "now": clock.now()},
        ).all()
    plans: dict[str, str] = {}
    usage: dict[str, dict[str, Decimal]] = {}
    for tenant_id, plan_id, meter, quantity in rows:
        plans[tenant_id] = plan_id
        if meter:
            usage.setdefault(tenant_id, {})[meter] = quantity
    return [TenantMonthUsage(t, plan_id, usage.get(t, {})) for t, plan_id in plans.items()]


def closest_to_limit(engine: Engine, limit: int) -> list[TenantNearLimit]:
    """The ``limit`` tenants using the largest share of a plan limit, highest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                """
                select tenant_id, plan_id, top_meter, top_percent, estimated_cost, projected_cost, currency
                from analytics.fct_tenant_overview
                order by top_percent desc nulls last limit :n
                """
            ),
            {"n": limit},
        ).all()
    return [TenantNearLimit(*row) for row in rows]


def busiest_tenant(engine: Engine) -> str | None:
    """The tenant closest to a limit, or None before the marts have a tenant."""
    with engine.connect() as conn:
        return conn.execute(
            text(
                "select tenant_id from analytics.fct_tenant_overview "
                "order by top_percent desc nulls last limit 1"
            )
        ).scalar()
