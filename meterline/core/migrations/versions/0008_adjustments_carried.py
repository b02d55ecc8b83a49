"""Adjustments carried forward, customer balance credits, balance fields in reconciliation.

Revision ID: 0008_adjustments_carried
Revises: 0007_pricing_rules
Create Date: 2026-12-03

- ``meterline.invoices.stripe_balance_transaction_id``: a month whose total (its lines plus
  the adjustments carried to it) is negative is not invoiced; the credit is issued on the
  Stripe customer balance (status ``crediting`` while it is issued, ``credited`` after) and
  this is the customer balance transaction's id.
- ``meterline.invoice_reconciliation.balance_applied`` / ``amount_due``: Stripe's
  ``starting_balance`` (the customer balance the invoice applied: a credit is negative, a
  debit such as a minimum-charge carry positive) and ``amount_due``, reported next to the
  compared ``total``.

Only columns are added; no amount changes.
"""

from alembic import op

revision = "0008_adjustments_carried"
down_revision = "0007_pricing_rules"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        alter table meterline.invoices
            add column stripe_balance_transaction_id text unique;
        comment on column meterline.invoices.stripe_balance_transaction_id is
            'Stripe customer balance transaction of a negative month (status credited).';
        alter table meterline.invoice_reconciliation
            add column balance_applied bigint,
            add column amount_due bigint;
        comment on column meterline.invoice_reconciliation.balance_applied is
            'Stripe starting_balance applied to the invoice (minor units; negative = credit).';
        comment on column meterline.invoice_reconciliation.amount_due is
            'Stripe amount_due (total + balance applied, floored at 0; minor units).';
        """
    )


def downgrade() -> None:
    op.execute(
        """
        alter table meterline.invoice_reconciliation
            drop column amount_due,
            drop column balance_applied;
        alter table meterline.invoices drop column stripe_balance_transaction_id;
        """
    )
