"""Invoicing's records: ``meterline.invoices``, ``meterline.invoice_lines``,
``meterline.stripe_customers`` (and the tenant's name, email and currency it reads)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, text

from billing.collection import Collection
from billing.invoicing.expected import ExpectedLine
from meterline.core import clock


def recorded_invoice(conn: Connection, tenant_id: str, period: date) -> Any | None:
    """The tenant's ``meterline.invoices`` row of ``period`` (Stripe id and status), if any."""
    return conn.execute(
        text(
            "select stripe_invoice_id, status, stripe_balance_transaction_id, amount_due "
            "from meterline.invoices "
            "where tenant_id = :t and period = :p"
        ),
        {"t": tenant_id, "p": period},
    ).first()


def update_status(conn: Connection, tenant_id: str, period: date, status: str) -> None:
    """Move the recorded status towards ``status`` as ``meterline.next_invoice_status`` allows
    (a paid invoice never goes back to open, whatever order Stripe's news arrives in)."""
    conn.execute(
        text(
            """
            update meterline.invoices
            set status = meterline.next_invoice_status(status, :s),
                status_changed_at = case when meterline.next_invoice_status(status, :s) = status
                                         then status_changed_at else :at end
            where tenant_id = :t and period = :p
            """
        ),
        {"s": status, "t": tenant_id, "p": period, "at": clock.now()},
    )


def forget_stripe_invoice(conn: Connection, tenant_id: str, period: date) -> None:
    """The month's draft was deleted in Stripe: its id is no longer the month's invoice."""
    conn.execute(
        text(
            "update meterline.invoices set stripe_invoice_id = null "
            "where tenant_id = :t and period = :p"
        ),
        {"t": tenant_id, "p": period},
    )


def record_invoice(
    conn: Connection,
    tenant_id: str,
    period: date,
    *,
    status: str,
    currency: str,
    amount_due: int,
    usage_cutoff: datetime,
    stripe_invoice_id: str | None = None,
    stripe_customer_id: str | None = None,
    finalized_at: datetime | None = None,
    stripe_balance_transaction_id: str | None = None,
    due_at: datetime | None = None,
) -> None:
    """Insert or update the month's row; the status moves as ``next_invoice_status`` allows."""
    conn.execute(
        text(
            """
            insert into meterline.invoices
                (tenant_id, period, stripe_invoice_id, stripe_customer_id, status, currency,
                 amount_due, usage_cutoff, finalized_at, stripe_balance_transaction_id, due_at)
            values (:t, :p, :inv, :cus, :status, :cur, :amount, :cutoff, :fin, :txn, :due)
            on conflict (tenant_id, period) do update set
                stripe_invoice_id = coalesce(excluded.stripe_invoice_id, meterline.invoices.stripe_invoice_id),
                stripe_customer_id = coalesce(excluded.stripe_customer_id, meterline.invoices.stripe_customer_id),
                stripe_balance_transaction_id = coalesce(excluded.stripe_balance_transaction_id,
                                                         meterline.invoices.stripe_balance_transaction_id),
                status = meterline.next_invoice_status(meterline.invoices.status, excluded.status),
                currency = excluded.currency,
                amount_due = excluded.amount_due, usage_cutoff = excluded.usage_cutoff,
                finalized_at = coalesce(excluded.finalized_at, meterline.invoices.finalized_at),
                due_at = coalesce(excluded.due_at, meterline.invoices.due_at)
            """
        ),
        {
            "t": tenant_id,
            "p": period,
            "inv": stripe_invoice_id,
            "cus": stripe_customer_id,
            "status": status,
            "cur": currency,
            "amount": amount_due,
            "cutoff": usage_cutoff,
            "fin": finalized_at,
            "txn": stripe_balance_transaction_id,
            "due": due_at,
        },
    )


def record_lines(
    conn: Connection,
    tenant_id: str,
    period: date,
    lines: Sequence[ExpectedLine],
    item_ids: dict[str, str | None],
) -> None:
    """Replace the tenant's ``meterline.invoice_lines`` of ``period`` (with Stripe item ids)."""
    conn.execute(
        text("delete from meterline.invoice_lines where tenant_id = :t and period = :p"),
        {"t": tenant_id, "p": period},
    )
    for line in lines:
        conn.execute(
            text(
                """
                insert into meterline.invoice_lines
                    (tenant_id, period, line_key, meter, description, quantity, amount, currency,
                     stripe_invoice_item_id)
                values (:t, :p, :k, :m, :d, :q, :a, :c, :ii)
                """
            ),
            {
                "t": tenant_id,
                "p": period,
                "k": line.line_key,
                "m": line.meter,
                "d": line.description,
                "q": line.quantity,
                "a": line.amount,
                "c": line.currency,
                "ii": item_ids.get(line.line_key),
            },
        )


def tenant_customer(conn: Connection, tenant_id: str) -> Any | None:
    """The tenant's name, email and recorded Stripe customer id (None: no such tenant)."""
    return conn.execute(
        text(
            """
            select c.stripe_customer_id, t.name, t.email
            from meterline.tenants t
            left join meterline.stripe_customers c using (tenant_id)
            where t.tenant_id = :t
            """
        ),
        {"t": tenant_id},
    ).first()


def record_customer(conn: Connection, tenant_id: str, customer_id: str) -> None:
    conn.execute(
        text(
            """
            insert into meterline.stripe_customers (tenant_id, stripe_customer_id)
            values (:t, :c)
            on conflict (tenant_id) do update
                set stripe_customer_id = excluded.stripe_customer_id, synced_at = now()
            """
        ),
        {"t": tenant_id, "c": customer_id},
    )


def tenant_currency(conn: Connection, tenant_id: str) -> str | None:
    return conn.execute(
        text("select trim(currency) from meterline.tenants where tenant_id = :t"),
        {"t": tenant_id},
    ).scalar()


def invoice_counts(conn: Connection) -> dict[str, int]:
    """Tenant-months in ``meterline.invoices`` by status: ``pending``/``draft`` are runs that
    stopped before finalizing (failed, or still running), ``skipped`` below the minimum, the
    rest Stripe's status. What ``/metrics`` reports as ``meterline_invoices``."""
    rows = conn.execute(
        text("select status, count(*) from meterline.invoices group by status")
    ).all()
    return {status: int(n) for status, n in rows}


def collection_terms(
    conn: Connection, tenant_id: str, start: datetime, end: datetime
) -> Collection:
    """How the invoice of the month ``[start, end)`` is collected: the terms of the plan
    version in force last in that month (the catalog's default when none was)."""
    row = conn.execute(
        text(
            """
            select p.collection_method, p.days_until_due, p.auto_advance
            from meterline.plan_in_force f
            join meterline.plans p using (plan_id, plan_version)
            where f.tenant_id = :t and f.in_force && tstzrange(:start, :end, '[)')
            order by f.effective_from desc
            limit 1
            """
        ),
        {"t": tenant_id, "start": start, "end": end},
    ).first()
    return Collection(*row) if row else Collection()
