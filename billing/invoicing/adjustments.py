"""Prior-period adjustments: what an earlier month owes that Stripe has not billed yet.

A line counts as billed only when it reached Stripe: on an invoice finalized there (``open``,
``payment_failed``, ``paid``, ``uncollectible``) or in a credit on the customer balance (``credited``). Skipped,
voided, draft, pending and failed invoices bill nothing.

For each earlier month (``ADJUSTMENT_LOOKBACK_MONTHS`` back) whose invoice was billed or
skipped: ``fct_invoice_lines`` of that month *now* (with usage loaded late) minus the month's
own lines if its invoice was billed (a skipped month's own lines are carried whole) minus the
adjustments of that month already billed on other invoices, per line. A non-zero difference
becomes an ``adjustment:<YYYY-MM>:<line_key>`` line on this month's invoice. So adjustments
put on a skipped or voided invoice are carried again, and nothing is billed twice. Rating the
month as a whole (not the late events alone) keeps graduated tiers exact. A finalized invoice
itself is never touched. A voided month's own lines are not billed again (voiding forgives).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from billing.invoicing.expected import ExpectedLine, mart_lines_by_key, meter_units, set_utc
from billing.rating import describe_usage
from meterline.core.periods import add_months

FINALIZED = ("open", "payment_failed", "paid", "uncollectible")  # finalized in Stripe, not void
BILLED = (*FINALIZED, "credited")  # what reached Stripe
CARRIED = ("skipped",)  # below the minimum (or nothing owed): its own lines carried whole
ADJUSTABLE = BILLED + CARRIED  # a voided month is not topped up
ADJUSTMENT_LOOKBACK_MONTHS = 12


def compute_adjustments(
    conn: Connection, tenant_id: str, period: date, currency: str
) -> list[ExpectedLine]:
    """Prior-period adjustment lines for ``tenant_id`` to put on the invoice of ``period``."""
    set_utc(conn)
    units = meter_units(conn)
    lines: list[ExpectedLine] = []
    for prior_period, status in _adjustable_periods(conn, tenant_id, period):
        tag = f"{prior_period:%Y-%m}"
        mart = mart_lines_by_key(conn, tenant_id, prior_period)
        billed = _billed_lines(conn, tenant_id, prior_period) if status in BILLED else {}
        adjusted = _adjusted_elsewhere(conn, tenant_id, tag, period)
        reason = (
            f"carried forward: the {tag} invoice was below the minimum amount"
            if status in CARRIED
            else "usage loaded after that invoice was finalized"
        )
        for line_key in sorted(set(mart) | set(billed) | set(adjusted)):
            m = mart.get(line_key)
            if m is not None and m.currency != currency:
                continue
            b = billed.get(line_key)
            done_q, done_a = adjusted[line_key]
            delta = (int(m.amount) if m else 0) - (int(b.amount) if b else 0) - done_a
            if delta == 0:
                continue
            qty = (
                (Decimal(m.quantity or 0) if m else Decimal(0))
                - (Decimal(b.quantity) if b else Decimal(0))
                - done_q
            )
            lines.append(_adjustment_line(tag, line_key, m, qty, delta, currency, units, reason))
    return lines


def _adjustable_periods(conn: Connection, tenant_id: str, period: date) -> list[tuple[date, str]]:
    """Earlier months in the lookback window whose invoice was billed or skipped, with status."""
    return list(
        conn.execute(
            text(
                """
                select period, status from meterline.invoices
                where tenant_id = :t and period < :p and period >= :earliest
                  and status = any(:statuses)
                  and (stripe_invoice_id is not null or status <> all(:finalized))
                order by period
                """
            ),
            {
                "t": tenant_id,
                "p": period,
                "earliest": add_months(period, -ADJUSTMENT_LOOKBACK_MONTHS),
                "statuses": list(ADJUSTABLE),
                "finalized": list(FINALIZED),
            },
        ).all()
    )


def _billed_lines(conn: Connection, tenant_id: str, prior_period: date) -> dict[str, Any]:
    """What the invoice of ``prior_period`` itself billed, by ``line_key`` (no adjustments)."""
    return {
        r.line_key: r
        for r in conn.execute(
            text(
                """
                select line_key, quantity, amount from meterline.invoice_lines
                where tenant_id = :t and period = :p and line_key not like 'adjustment:%'
                """
            ),
            {"t": tenant_id, "p": prior_period},
        )
    }


def _adjusted_elsewhere(
    conn: Connection, tenant_id: str, tag: str, period: date
) -> dict[str, tuple[Decimal, int]]:
    """Adjustments of month ``tag`` already billed on other invoices (finalized in Stripe or
    credited): original line -> (qty, amount). Those on skipped or voided invoices are not."""
    adjusted: dict[str, tuple[Decimal, int]] = defaultdict(lambda: (Decimal(0), 0))
    for r in conn.execute(
        text(
            """
            select l.line_key, l.quantity, l.amount
            from meterline.invoice_lines l
            join meterline.invoices i using (tenant_id, period)
            where l.tenant_id = :t and l.line_key like :prefix and l.period <> :current
              and i.status = any(:billed)
            """
        ),
        {
            "t": tenant_id,
            "prefix": f"adjustment:{tag}:%",
            "current": period,
            "billed": list(BILLED),
        },
    ):
        original = r.line_key.split(":", 2)[2]
        q, a = adjusted[original]
        adjusted[original] = (q + Decimal(r.quantity), a + int(r.amount))
    return adjusted


def _adjustment_line(
    tag: str,
    line_key: str,
    mart_row: Any,
    qty: Decimal,
    delta: int,
    currency: str,
    units: dict[str, str],
    reason: str,
) -> ExpectedLine:
    meter = mart_row.meter if mart_row else None
    if meter:
        usage = describe_usage(meter, abs(qty), units.get(meter))
        sign = "+" if qty >= 0 else "-"
        what = usage.replace(": ", f": {sign}", 1)
    else:
        what = line_key
    return ExpectedLine(
        line_key=f"adjustment:{tag}:{line_key}",
        line_type="adjustment",
        meter=meter,
        plan_id=None,
        quantity=qty,
        amount=delta,
        currency=currency,
        description=f"Prior-period adjustment {tag} - {what} ({reason})",
    )


def pending_adjustment_tenants(conn: Connection, period: date) -> set[str]:
    """Tenants with a billed or skipped invoice in the lookback window (candidates for
    adjustments and carried lines)."""
    return set(
        conn.execute(
            text(
                """
                select distinct tenant_id from meterline.invoices
                where period < :p and period >= :earliest and status = any(:s)
                """
            ),
            {
                "p": period,
                "earliest": add_months(period, -ADJUSTMENT_LOOKBACK_MONTHS),
                "s": list(ADJUSTABLE),
            },
        ).scalars()
    )
