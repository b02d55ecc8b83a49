"""The dbt marts the portal reads, and whether they exist yet (before the first
``meterline pipeline run`` they do not: the pages then show live figures only)."""

from __future__ import annotations

from sqlalchemy import Connection, text

MARTS = (
    "analytics.fct_usage_daily",
    "analytics.fct_tenant_overview",
    "analytics.fct_invoice_lines",
    "analytics.fct_invoices",
    "analytics.fct_mrr",
    "analytics.fct_cost_allocation",
)


def marts_available(conn: Connection) -> bool:
    names = conn.execute(
        text(
            "select count(to_regclass(n)) = cardinality(cast(:names as text[])) "
            "from unnest(cast(:names as text[])) as n"
        ),
        {"names": list(MARTS)},
    ).scalar()
    return bool(names)
