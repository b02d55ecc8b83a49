"""Monthly reconciliation: what tenants owe (dbt marts + invoice records) against Stripe.

Per tenant and month, one row per Stripe invoice (or one row when Stripe has none), in one of
the categories of ``categories`` (matched, adjustment_explained, replaced, amount_mismatch,
missing_in_stripe, unexpected_in_stripe, duplicate_in_stripe, status_issue).

Expected amount = ``sum(analytics.fct_invoice_lines.amount)`` of the tenant's month (equal to
``fct_invoices``, tested in dbt) plus the prior-period adjustment lines Meterline put on that
month's invoice. A tenant whose total was below the minimum amount (recorded ``skipped``) is
expected to have no invoice. Stripe's invoices are found by lists (never by search alone,
which is eventually consistent; see ``stripe_invoices``) and metadata ``meterline_period``.

Results replace the month's rows in ``meterline.invoice_reconciliation``; a CSV and a
self-contained HTML report are written to ``<reports_dir>/<YYYY-MM>/``.

The modules, one job each:

- ``categories``: the categories and which of them are explained;
- ``expected``: what each tenant owes and what Meterline recorded (Postgres);
- ``stripe_invoices``: the month's invoices in Stripe, per tenant;
- ``compare``: categorising each tenant's invoices, step by step;
- ``result``: ``ReconciliationRow`` and ``ReconciliationResult``;
- ``store``: ``meterline.invoice_reconciliation``;
- ``reports``: CSV, HTML and markdown;
- ``run``: ``reconcile``, which does the above in order.
"""

from billing.reconciliation.categories import CATEGORIES, EXPLAINED, UNEXPLAINED
from billing.reconciliation.result import ReconciliationResult, ReconciliationRow
from billing.reconciliation.run import reconcile

__all__ = [
    "CATEGORIES",
    "EXPLAINED",
    "UNEXPLAINED",
    "ReconciliationResult",
    "ReconciliationRow",
    "reconcile",
]
