"""`meterline pipeline run`, `invoice` and `reconcile`: the pipeline and the month's billing."""

from __future__ import annotations

import typer

from meterline.cli.arguments import parse_month
from meterline.cli.context import console, runtime

pipeline_app = typer.Typer(help="Ingest and transform.", no_args_is_help=True)


@pipeline_app.command("run")
def pipeline_run() -> None:
    """Load the stream and counters into Postgres and build every dbt model, now (in process)."""
    from meterline.cli.pipeline import run_pipeline

    rt = runtime()
    run_pipeline(rt, console)


def invoice(month: str = typer.Option(..., "--month", help="Billing month YYYY-MM.")) -> None:
    """Create the month's Stripe invoices (materializes that billing partition)."""
    from meterline.cli.billing import run_invoice

    period = parse_month(month)
    run_invoice(runtime(), console, period)


def reconcile(month: str = typer.Option(..., "--month", help="Billing month YYYY-MM.")) -> None:
    """Reconcile Stripe against the expected amounts and write the finance report.

    Exits 1 when any invoice has an unexplained difference (so a script or a cron job notices);
    the report says which and why."""
    from meterline.cli.billing import UnexplainedDifferences, run_reconcile

    period = parse_month(month)
    rt = runtime()
    unexplained = run_reconcile(rt, console, period)
    if unexplained:
        report = rt.settings.reports_dir / f"{period:%Y-%m}" / "reconciliation.html"
        raise UnexplainedDifferences(
            f"reconciliation of {period:%Y-%m}: {unexplained} invoice(s) with unexplained "
            f"differences; open {report} and fix them in Stripe or in Meterline, then run "
            f"`meterline reconcile --month {period:%Y-%m}` again"
        )
