"""What each tenant is expected to have been invoiced for a month, and what Meterline recorded.

Read from Postgres in one connection: the mart's amount owed now, the ``meterline.invoices``
record (with the adjustments carried on that invoice), adjustments of this month billed on
later invoices, the tenants' currencies, and how many events were loaded after finalization.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from billing.invoicing.adjustments import BILLED
from billing.invoicing.expected import LINES_TABLE, require_lines_table, set_utc
from billing.money import format_minor
from meterline.core.periods import month_bounds


@dataclass(frozen=True)
class MonthExpectations:
    owed: dict[str, tuple[int, str]]  # tenant -> (amount owed now, currency)
    records: dict[str, Any]  # tenant -> meterline.invoices row (+ carried_adjustments)
    billed_later: dict[str, list[tuple[int, date, str | None]]]  # (amount, period, invoice)
    tenant_currency: dict[str, str]
    late_events: dict[str, list[LateEvents]]  # tenant -> per meter, loaded after finalization
    carried: dict[str, list[str]]  # tenant -> what the adjustments on this invoice are for


@dataclass(frozen=True)
class LateEvents:
    """A meter's events of the month loaded after the invoice was finalized (or skipped)."""

    meter: str
    count: int
    first_loaded_at: datetime
    last_loaded_at: datetime

    def describe(self) -> str:
        when = f"{self.first_loaded_at:%Y-%m-%d %H:%M}"
        if self.last_loaded_at != self.first_loaded_at:
            when += f" to {self.last_loaded_at:%Y-%m-%d %H:%M}"
        return f"{self.count} {self.meter} event(s) loaded {when} UTC"


def describe_late_events(late: list[LateEvents]) -> str:
    """``3 api_calls event(s) loaded 2026-10-05 10:00 to 2026-10-06 09:00 UTC; ...``"""
    return "; ".join(item.describe() for item in late)


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
            carried=_carried(conn, period),
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
                       i.amount_due, i.finalized_at, i.usage_cutoff, i.stripe_customer_id,
                       i.stripe_balance_transaction_id,
                       coalesce(sum(l.amount) filter (where l.line_key like 'adjustment:%'), 0)
                           as carried_adjustments
                from meterline.invoices i
                left join meterline.invoice_lines l using (tenant_id, period)
                where i.period = :p
                group by i.tenant_id, i.stripe_invoice_id, i.status, i.currency,
                         i.amount_due, i.finalized_at, i.usage_cutoff, i.stripe_customer_id,
                         i.stripe_balance_transaction_id
                """
            ),
            {"p": period},
        )
    }


def _billed_later(conn: Connection, period: date) -> dict[str, list[tuple[int, date, str | None]]]:
    """Adjustment lines for ``period`` that later invoices billed (finalized in Stripe or
    credited), per tenant; those on a skipped or voided invoice are carried again later."""
    billed_later: dict[str, list[tuple[int, date, str | None]]] = defaultdict(list)
    for r in conn.execute(
        text(
            """
            select l.tenant_id, l.period, sum(l.amount) as amount, i.stripe_invoice_id
            from meterline.invoice_lines l
            join meterline.invoices i using (tenant_id, period)
            where l.line_key like :prefix and l.period <> :p and i.status = any(:billed)
            group by l.tenant_id, l.period, i.stripe_invoice_id
            """
        ),
        {"prefix": f"adjustment:{period:%Y-%m}:%", "p": period, "billed": list(BILLED)},
    ):
        billed_later[r.tenant_id].append((int(r.amount), r.period, r.stripe_invoice_id))
    return billed_later


def _carried(conn: Connection, period: date) -> dict[str, list[str]]:
    """Per tenant: each earlier month's adjustment on this month's invoice, with its cause
    (the late events loaded after that month's invoice, or the month was below the minimum)."""
    rows = conn.execute(
        text(
            """
            select l.tenant_id, split_part(l.line_key, ':', 2) as tag, sum(l.amount) as amount,
                   trim(min(l.currency)) as currency, min(p.status) as prior_status
            from meterline.invoice_lines l
            left join meterline.invoices p
              on p.tenant_id = l.tenant_id
             and p.period = to_date(split_part(l.line_key, ':', 2) || '-01', 'YYYY-MM-DD')
            where l.period = :p and l.line_key like 'adjustment:%'
            group by l.tenant_id, split_part(l.line_key, ':', 2)
            order by l.tenant_id, tag
            """
        ),
        {"p": period},
    ).all()
    late_by_month: dict[str, dict[str, list[LateEvents]]] = {}
    carried: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        if r.tag not in late_by_month:
            late_by_month[r.tag] = _late_events(conn, date.fromisoformat(f"{r.tag}-01"))
        late = late_by_month[r.tag].get(r.tenant_id, [])
        if r.prior_status == "skipped":
            cause = "its invoice was below the minimum amount, carried forward"
        elif late:
            cause = describe_late_events(late)
        else:
            cause = "no late events found; the month was re-rated"
        carried[r.tenant_id].append(
            f"{r.tag} adjustment {format_minor(int(r.amount), r.currency)} ({cause})"
        )
    return dict(carried)


def _late_events(conn: Connection, period: date) -> dict[str, list[LateEvents]]:
    """Per tenant and meter: the month's events loaded after its invoice was finalized (or,
    not finalized, after its usage cutoff) - the events behind an adjustment."""
    start, end = month_bounds(period)
    late: dict[str, list[LateEvents]] = defaultdict(list)
    for r in conn.execute(
        text(
            """
            select e.tenant_id, e.meter, count(*) as n,
                   min(e.loaded_at) as first_loaded, max(e.loaded_at) as last_loaded
            from raw.usage_events e
            join meterline.invoices i on i.tenant_id = e.tenant_id and i.period = :p
            where e.occurred_at >= :start and e.occurred_at < :end
              and e.loaded_at > coalesce(i.finalized_at, i.usage_cutoff)
            group by e.tenant_id, e.meter
            order by e.tenant_id, e.meter
            """
        ),
        {"p": period, "start": start, "end": end},
    ):
        late[r.tenant_id].append(LateEvents(r.meter, int(r.n), r.first_loaded, r.last_loaded))
    return dict(late)
