"""Margins per tenant (``analytics.fct_cost_allocation``) and the MRR bridge
(``analytics.fct_mrr_summary``), read from the dbt marts as plain data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, text


@dataclass(frozen=True)
class TenantMargin:
    tenant_id: str
    revenue: Decimal | None
    cost: Decimal | None
    margin: Decimal | None
    currency: str | None


def lowest_margins(engine: Engine, month: date, limit: int) -> list[TenantMargin]:
    """The ``limit`` tenants with the lowest margin (revenue - allocated cost) in ``month``."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                """
                select tenant_id, sum(revenue) as revenue, sum(allocated_cost) as cost,
                       sum(revenue) - sum(allocated_cost) as margin, min(currency) as currency
                from analytics.fct_cost_allocation where month = :month
                group by tenant_id order by margin asc limit :n
                """
            ),
            {"month": month, "n": limit},
        ).all()
    return [TenantMargin(*row) for row in rows]


def mrr_bridge(engine: Engine, months: int = 4) -> list[dict[str, Any]]:
    """The last ``months`` rows of the MRR bridge, oldest first, as column -> value."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("select * from analytics.fct_mrr_summary order by month desc limit :n"),
            {"n": months},
        ).all()
    return [dict(row._mapping) for row in reversed(rows)]
