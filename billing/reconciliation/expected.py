"""What each tenant is expected to have been invoiced for a month, and what Meterline recorded.

Read from Postgres in one connection: the mart's amount owed now, the ``meterline.invoices``
record (with the adjustments carried on that invoice), adjustments of this month billed on
later invoices, the tenants' currencies, and how many events were loaded after finalization.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine, text

from billing.invoicing.expected import LINES_TABLE, require_lines_table, set_utc
from meterline.core.periods import month_bounds


@dataclass(frozen=True)
class MonthExpectations:
    owed: dict[str, tuple[int, str]]  # tenant -> (amount owed now, currency)
    records: dict[str, Any]  # tenant -> meterline.invoices row (+ carried_adjustments)
    billed_later: dict[str, list[tuple[int, date, str | None]]]  # (amount, period, invoice)
    tenant_currency: dict[str, str]
    late_events: dict[str, int]  # tenant -> events loaded after the invoice was finalized


def read_expectations(engine: Engine, period: date) -> MonthExpectations:
    with engine.connect() as conn:
        require_lines_table(conn)
        set_utc(conn)
        return MonthExpectations(
            owed=_owed(conn, period),
            records=_records(conn, period),
            billed_later=_billed_later(conn, period),
            tenant_currency=dict(
                conn.execute(text("select tenant_id, trim(currency) from meterline.tenants")).all()
            ),
            late_events=_late_events(conn, period),
        )


def _owed(conn: Connection, period: date) -> dict[str, tuple[int, str]]:
    return {
        r.tenant_id: (int(r.amount), r.currency)
        for r in conn.execute(
            text(
                f"""
                select tenant_id, sum(amount) as amount, min(upper(trim(currency))) as currency
                from {LINES_TABLE} where month::date = :p group by tenant_id
                """
            ),
            {"p": period},
        )
    }


def _records(conn: Connection, period: date) -> dict[str, Any]:
    return {
        r.tenant_id: r
        for r in conn.execute(
            text(
                """
                select i.tenant_id, i.stripe_invoice_id, i.status, trim(i.currency) as currency,
                       i.amount_due, i.finalized_at, i.usage_cutoff,
                       coalesce(sum(l.amount) filter (where l.line_key like 'adjustment:%'), 0)
                           as carried_adjustments
                from meterline.invoices i
                left join meterline.invoice_lines l using (tenant_id, period)
                where i.period = :p
                group by i.tenant_id, i.stripe_invoice_id, i.status, i.currency,
                         i.amount_due, i.finalized_at, i.usage_cutoff
                """
            ),
            {"p": period},
        )
    }


def _billed_later(conn: Connection, period: date) -> dict[str, list[tuple[int, date, str | None]]]:
    """Adjustment lines for ``period`` that later invoices carried, per tenant."""
    billed_later: dict[str, list[tuple[int, date, str | None]]] = defaultdict(list)
    for r in conn.execute(
        text(
            """
            select l.tenant_id, l.period, sum(l.amount) as amount, i.stripe_invoice_id
            from meterline.invoice_lines l
            join meterline.invoices i using (tenant_id, period)
            where l.line_key like :prefix and l.period <> :p
            group by l.tenant_id, l.period, i.stripe_invoice_id
            """
        ),
        {"prefix": f"adjustment:{period:%Y-%m}:%", "p": period},
    ):
        billed_later[r.tenant_id].append((int(r.amount), r.period, r.stripe_invoice_id))
    return billed_later


def _late_events(conn: Connection, period: date) -> dict[str, int]:
    start, end = month_bounds(period)
    return {
        r.tenant_id: int(r.n)
        for r in conn.execute(
            text(
                """
                select e.tenant_id, count(*) as n
                from raw.usage_events e
                join meterline.invoices i on i.tenant_id = e.tenant_id and i.period = :p
                where e.occurred_at >= :start and e.occurred_at < :end
                  and e.loaded_at > coalesce(i.finalized_at, i.usage_cutoff)
                group by e.tenant_id
                """
            ),
            {"p": period, "start": start, "end": end},
        )
    }
