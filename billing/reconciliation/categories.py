"""The reconciliation categories, in report order, and which of them need action.

- ``matched``: Stripe's total equals the expected amount and the invoice is in good standing.
- ``adjustment_explained`` (explained): the expected amount grew after the invoice was
  finalized because usage was loaded late; the difference was billed (or will be billed, on
  the next run) as a prior-period adjustment line on a later invoice.
- ``replaced`` (explained): a voided invoice superseded by another live invoice of the month
  (the live one is compared with the expected amount on its own row).
- ``amount_mismatch``: a live Stripe invoice whose total differs from the expected amount.
- ``missing_in_stripe``: the tenant owes money but Stripe has no live invoice for the month.
- ``unexpected_in_stripe``: Stripe has an invoice for a tenant that owes nothing.
- ``duplicate_in_stripe``: a second (third...) live invoice for the same tenant and month.
- ``past_due``: open in Stripe and past its due date (a failed automatic payment included):
  the amount is right, the money has not come in; chase the customer.
- ``status_issue``: voided without replacement, uncollectible, or still a draft.

Every row also says what Stripe reports as paid (``amount_paid``).
"""

from __future__ import annotations

CATEGORIES = (
    "matched",
    "adjustment_explained",
    "replaced",
    "amount_mismatch",
    "missing_in_stripe",
    "unexpected_in_stripe",
    "duplicate_in_stripe",
    "past_due",
    "status_issue",
)
UNEXPLAINED = frozenset(
    {
        "amount_mismatch",
        "missing_in_stripe",
        "unexpected_in_stripe",
        "duplicate_in_stripe",
        "past_due",
        "status_issue",
    }
)
EXPLAINED = tuple(c for c in CATEGORIES if c not in UNEXPLAINED)
