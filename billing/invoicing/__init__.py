"""Monthly Stripe invoices: one per charged tenant and month, safe to re-run and to resume.

Source of truth for what a tenant owes is the dbt mart ``analytics.fct_invoice_lines``
(rated per line in minor units, ``tenant_id, month, line_key, line_type, meter, plan_id,
quantity, amount, currency, description``). For every tenant with a charge this:

1. syncs the Stripe customer (metadata ``meterline_tenant_id``; ``meterline.stripe_customers``);
2. looks for the tenant's invoice of the month - ``meterline.invoices`` first, then Stripe
   (the customer's invoices with metadata ``meterline_period``) - so a partial run resumes;
3. creates a draft invoice (``pending_invoice_items_behavior=exclude``, metadata
   ``meterline_tenant_id`` + ``meterline_period``), one invoice item per line, finalizes it;
4. records invoice and lines with their Stripe ids and status in ``meterline.invoices`` /
   ``meterline.invoice_lines``.

Every create call carries an idempotency key derived from tenant, period and line (and the
draft invoice id and amount for items, so a changed draft never replays a stale item);
429/409/5xx/network errors are retried with exponential backoff (``billing.stripe_client``).
A finalized invoice is never edited: re-running a finalized month changes nothing.

Prior-period adjustments (computed in Python, not in SQL): see ``adjustments``.

The modules, one job each:

- ``expected``: the month's expected lines, read from ``analytics.fct_invoice_lines``;
- ``adjustments``: prior-period adjustment lines for usage loaded after finalization;
- ``stripe_sync``: the Stripe calls (customer, invoice, items, finalize) with idempotency keys;
- ``store``: writes to ``meterline.invoices`` / ``meterline.invoice_lines`` / ``stripe_customers``;
- ``run``: ``create_invoices``: the advisory lock and the per-tenant flow, step by step;
- ``report``: the run's outcome (``InvoiceRunResult``: summary and markdown);
- ``errors``: ``InvoicingError``.
"""

from billing.invoicing.adjustments import compute_adjustments
from billing.invoicing.errors import InvoicingError
from billing.invoicing.expected import ExpectedLine, read_expected_lines
from billing.invoicing.report import InvoiceRunResult, TenantInvoice
from billing.invoicing.run import create_invoices

__all__ = [
    "ExpectedLine",
    "InvoiceRunResult",
    "InvoicingError",
    "TenantInvoice",
    "compute_adjustments",
    "create_invoices",
    "read_expected_lines",
]
