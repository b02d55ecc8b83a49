"""`meterline reconcile` exits non-zero when the month has unexplained differences, so a cron
job or a script notices; a month that reconciles exits 0. Real dbt build, Dagster jobs and
the Stripe emulator through the official SDK."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import stripe
from sqlalchemy import text
from typer.testing import CliRunner

from meterline.cli.app import app
from meterline.core import clock
from meterline.core.periods import add_months
from meterline.core.tenants import create_tenant


def test_reconcile_fails_on_an_unexplained_difference_and_passes_when_all_match(db, test_services):
    from meterline.cli.pipeline import run_job

    month = add_months(clock.today().replace(day=1), -2)  # closed and past the grace period
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    create_tenant(db, "acme", "starter", at=start - timedelta(days=40))  # base fee only
    assert run_job("dbt_hourly").success
    runner = CliRunner()
    invoiced = runner.invoke(app, ["invoice", "--month", f"{month:%Y-%m}"])
    assert invoiced.exit_code == 0, (invoiced.output, invoiced.exception)

    matched = runner.invoke(app, ["reconcile", "--month", f"{month:%Y-%m}"])
    assert matched.exit_code == 0, (matched.output, matched.exception)
    assert "matched" in matched.output and "unexplained" not in matched.output

    with db.connect() as conn:
        invoice_id = conn.execute(
            text("select stripe_invoice_id from meterline.invoices where tenant_id = 'acme'")
        ).scalar_one()
    client = stripe.StripeClient(
        "sk_test_meterline_tests", base_addresses={"api": test_services.stripe_api_base}
    )
    client.v1.invoices.void_invoice(invoice_id)  # voided in Stripe, nothing replaces it

    failed = runner.invoke(app, ["reconcile", "--month", f"{month:%Y-%m}"])
    assert failed.exit_code == 1
    assert "status_issue" in failed.output
    message = str(failed.exception)
    assert f"reconciliation of {month:%Y-%m}: 1 invoice(s) with unexplained differences" in message
    assert "reconciliation.html" in message and "\n" not in message
