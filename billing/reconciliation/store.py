"""``meterline.invoice_reconciliation``: a month's rows, replaced on every run."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, text

from billing.reconciliation.result import ReconciliationRow


def store_rows(engine: Engine, period: date, rows: list[ReconciliationRow]) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("delete from meterline.invoice_reconciliation where period = :p"), {"p": period}
        )
        for row in rows:
            conn.execute(
                text(
                    """
                    insert into meterline.invoice_reconciliation
                        (period, tenant_id, stripe_invoice_id, currency, expected_amount,
                         stripe_amount, difference, category, explanation, balance_applied,
                         amount_due, amount_paid)
                    values (:p, :t, :inv, :cur, :exp, :str, :diff, :cat, :why, :bal, :due, :paid)
                    """
                ),
                {
                    "p": period,
                    "t": row.tenant_id,
                    "inv": row.stripe_invoice_id,
                    "cur": row.currency,
                    "exp": row.expected_amount,
                    "str": row.stripe_amount,
                    "diff": row.difference,
                    "cat": row.category,
                    "why": row.explanation,
                    "bal": row.balance_applied,
                    "due": row.amount_due,
                    "paid": row.amount_paid,
                },
            )
