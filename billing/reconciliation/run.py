"""``reconcile``: read what is expected, fetch Stripe's invoices (and the customer balance
credits of negative months), compare, store, report."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import stripe
from sqlalchemy import Engine

from billing.reconciliation.compare import compare
from billing.reconciliation.expected import read_expectations
from billing.reconciliation.reports import write_reports
from billing.reconciliation.result import ReconciliationResult
from billing.reconciliation.store import store_rows
from billing.reconciliation.stripe_credits import recorded_credits
from billing.reconciliation.stripe_invoices import invoices_by_tenant
from billing.stripe_client import RetryPolicy
from meterline.core import clock
from meterline.core.installation import install_id
from meterline.core.periods import month_bounds, month_start


def reconcile(
    engine: Engine,
    stripe_client: stripe.StripeClient,
    period: date,
    *,
    reports_dir: str | Path,
    retry: RetryPolicy | None = None,
    now: datetime | None = None,
    install: str | None = None,
) -> ReconciliationResult:
    """Compare the month's expected invoices with Stripe; store rows and write the reports.

    Only this installation's invoices are considered (``install``, default: this database's
    installation id): another install sharing the Stripe account is neither matched nor
    reported as unexpected."""
    period = month_start(period)
    retry = retry or RetryPolicy()
    now = now or clock.now()
    expected = read_expectations(engine, period)
    start, _ = month_bounds(period)
    created = (int(start.timestamp()), int(max(now, clock.now()).timestamp()) + 1)
    invoices = invoices_by_tenant(
        stripe_client,
        f"{period:%Y-%m}",
        install or install_id(engine),
        retry,
        expected.records,
        created,
    )
    credits = recorded_credits(stripe_client, retry, expected.records)
    result = ReconciliationResult(
        period=period, rows=compare(period, expected, invoices, now, credits)
    )
    store_rows(engine, period, result.rows)
    write_reports(result, Path(reports_dir))
    return result
