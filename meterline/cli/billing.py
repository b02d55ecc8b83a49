"""`meterline invoice` and `meterline reconcile`: run the billing partitions through Dagster."""

from __future__ import annotations

from datetime import date

from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from meterline.cli.pipeline import run_job


def _announce_stripe(rt, console: Console) -> None:
    if rt.stripe_emulated:
        console.print(
            f"[yellow]Stripe: using the built-in emulator at {rt.stripe_api_base} "
            "(no real Stripe is called; set STRIPE_API_KEY to use Stripe)[/]"
        )


def run_invoice(
    rt, console: Console, period: date, *, announce: bool = True, limit: int | None = None
) -> None:
    """Invoice ``period`` and print its invoices (the ``limit`` largest, when given)."""
    if announce:
        _announce_stripe(rt, console)
    with console.status(f"invoicing {period:%Y-%m} (Dagster job invoice_month)..."):
        run_job("invoice_month", partition_key=period.isoformat())
    with rt.engine.connect() as conn:
        rows = conn.execute(
            text(
                """
                select i.tenant_id, i.status, i.amount_due, i.currency, i.stripe_invoice_id,
                       count(l.line_key) as lines
                from meterline.invoices i
                left join meterline.invoice_lines l using (tenant_id, period)
                where i.period = :period
                group by 1, 2, 3, 4, 5
                order by i.amount_due desc
                """
            ),
            {"period": period},
        ).all()
    hidden = len(rows) - limit if limit is not None and len(rows) > limit else 0
    table = Table(
        title=f"Invoices for {period:%B %Y}",
        caption=f"and {hidden} more in meterline.invoices" if hidden else None,
    )
    for column in ("tenant", "status", "amount", "lines", "stripe invoice"):
        table.add_column(column, justify="right" if column in ("amount", "lines") else "left")
    from billing.money import format_minor

    for row in rows[: len(rows) - hidden]:
        table.add_row(
            row.tenant_id, row.status, format_minor(row.amount_due, row.currency.strip()),
            str(row.lines), row.stripe_invoice_id or "-",
        )  # fmt: skip
    console.print(table)


class UnexplainedDifferences(RuntimeError):
    """The month's reconciliation found differences nobody explained: finance must look."""


def run_reconcile(rt, console: Console, period: date, *, announce: bool = True) -> int:
    """Reconcile ``period``, print the table by category and return how many invoices have
    unexplained differences (the ``meterline reconcile`` command fails when there are any)."""
    if announce:
        _announce_stripe(rt, console)
    with console.status(f"reconciling {period:%Y-%m} (Dagster job reconcile_month)..."):
        report = run_job("reconcile_month", partition_key=period.isoformat())
    with rt.engine.connect() as conn:
        rows = conn.execute(
            text(
                """
                select category, count(*) as n, sum(expected_amount) as expected,
                       sum(stripe_amount) as stripe, sum(difference) as difference, min(currency) as currency
                from meterline.invoice_reconciliation
                where period = :period
                group by category order by category
                """
            ),
            {"period": period},
        ).all()
    from billing.money import format_minor
    from billing.reconciliation import EXPLAINED, UNEXPLAINED

    table = Table(title=f"Reconciliation {period:%B %Y}")
    for column in ("category", "invoices", "expected", "in Stripe", "difference"):
        table.add_column(column, justify="left" if column == "category" else "right")
    for row in rows:
        currency = (row.currency or "USD").strip()
        colour = "green" if row.category in EXPLAINED else "red"
        table.add_row(
            f"[{colour}]{row.category}[/]", str(row.n), format_minor(int(row.expected or 0), currency),
            format_minor(int(row.stripe or 0), currency), format_minor(int(row.difference or 0), currency),
        )  # fmt: skip
    console.print(table)
    unexplained = sum(row.n for row in rows if row.category in UNEXPLAINED)
    if report.failed_checks and not unexplained:  # the check failed for a reason of its own
        unexplained = len(report.failed_checks)
    if unexplained:
        console.print(
            f"[red]unexplained differences: see {rt.settings.reports_dir / f'{period:%Y-%m}'}[/]"
        )
    console.print(f"report: {rt.settings.reports_dir / f'{period:%Y-%m}' / 'reconciliation.html'}")
    return unexplained
