"""Monthly billing: one Stripe invoice per tenant and month, then reconciliation for finance.

Both assets are partitioned by calendar month and run a whole backfill range in one run
(``BackfillPolicy.single_run``), iterating the months of ``context.partition_time_window``.
Re-running a month never creates a second invoice or line (idempotency keys + lookups).
"""

from datetime import date

import dagster as dg

from meterline.core import clock, periods
from orchestration.defs.alerts.resources import NotifierResource
from orchestration.defs.billing.partitions import billing_months
from orchestration.defs.billing.resources import BillingPolicyResource, StripeResource
from orchestration.resources import PostgresResource

OWNERS = ["team:finance-engineering"]


def months_in(window: dg.TimeWindow) -> list[date]:
    """The months of a (half-open) partition window: one, or a whole backfill range."""
    return [
        m
        for m in periods.months_between(window.start, window.end)
        if periods.instant(m) < window.end
    ]


@dg.asset(
    key=["billing", "stripe_invoices"],
    group_name="billing",
    kinds={"stripe", "postgres"},
    owners=OWNERS,
    partitions_def=billing_months,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[["analytics", "fct_invoice_lines"], ["analytics", "fct_invoices"]],
    description=(
        "One finalized Stripe invoice per charged tenant and month (one line per charged meter, "
        "one for the base fee, prior-period adjustments for late usage). Runs after the month "
        "end plus BILLING_GRACE_HOURS; re-running never duplicates an invoice or a line. "
        "Sends invoice.finalized to the alert webhook (once per invoice)."
    ),
)
def stripe_invoices(
    context: dg.AssetExecutionContext,
    postgres: PostgresResource,
    stripe: StripeResource,
    billing_policy: BillingPolicyResource,
    notifier: NotifierResource,
) -> dg.MaterializeResult:
    from alerts.invoice_events import deliver_invoice_events, record_finalized_invoices
    from billing.invoicing import create_invoices

    client = stripe.client()
    summaries, tables, created, total_invoices = [], [], 0, 0
    for month in months_in(context.partition_time_window):
        cutoff = periods.usage_cutoff(month, billing_policy.grace_hours)
        if cutoff > clock.now():
            raise dg.Failure(
                f"{month:%Y-%m} cannot be invoiced before {cutoff:%Y-%m-%d %H:%M} UTC "
                f"(month end + BILLING_GRACE_HOURS={billing_policy.grace_hours})"
            )
        result = create_invoices(
            postgres.engine(), client, month, usage_cutoff=cutoff,
            minimum_amount=billing_policy.minimum_amount,
        )  # fmt: skip
        context.log.info(f"{month:%Y-%m}: {result.summary()}")
        record_finalized_invoices(postgres.engine(), result)
        summaries.append(result.summary())
        tables.append(result.markdown())
        created += result.count("created")
        total_invoices += len(result.invoices)
    sent = deliver_invoice_events(postgres.engine(), notifier.notifier())
    if sent.failed:
        context.log.warning(f"invoice events not delivered yet: {', '.join(sent.failed)}")
    return dg.MaterializeResult(
        metadata={
            "months": dg.MetadataValue.json(summaries),
            "invoices": dg.MetadataValue.int(total_invoices),
            "created_now": dg.MetadataValue.int(created),
            "preview": dg.MetadataValue.md("\n\n".join(tables)),
        }
    )


@dg.asset(
    key=["billing", "invoice_reconciliation"],
    group_name="billing",
    kinds={"stripe", "postgres"},
    owners=OWNERS,
    partitions_def=billing_months,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[stripe_invoices],
    check_specs=[
        dg.AssetCheckSpec(
            "no_unexplained_differences",
            asset=["billing", "invoice_reconciliation"],
            description="Every Stripe invoice matches the expected amount or is explained.",
        )
    ],
    description=(
        "Stripe compared with the expected amounts per tenant and month: matched, "
        "amount_mismatch, missing_in_stripe, unexpected_in_stripe, duplicate_in_stripe, "
        "past_due, status_issue, and what was paid. Rows in meterline.invoice_reconciliation, "
        "CSV and HTML reports for finance."
    ),
)
def invoice_reconciliation(
    context: dg.AssetExecutionContext,
    postgres: PostgresResource,
    stripe: StripeResource,
    billing_policy: BillingPolicyResource,
) -> dg.MaterializeResult:
    from billing.reconciliation import reconcile

    client = stripe.client()
    reports, counts, unexplained = [], {}, []
    for month in months_in(context.partition_time_window):
        result = reconcile(postgres.engine(), client, month, reports_dir=billing_policy.reports_dir)
        reports.append(result.markdown())
        for category, n in result.counts().items():
            counts[category] = counts.get(category, 0) + n
        if result.has_unexplained_differences:
            unexplained.append(f"{month:%Y-%m}")
        context.log.info(f"{month:%Y-%m}: report {result.html_path}")
    return dg.MaterializeResult(
        metadata={
            "categories": dg.MetadataValue.json(counts),
            "report": dg.MetadataValue.md("\n\n".join(reports)),
            "reports_dir": dg.MetadataValue.path(billing_policy.reports_dir),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="no_unexplained_differences",
                passed=not unexplained,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={
                    "months_with_unexplained_differences": dg.MetadataValue.json(unexplained)
                },
            )
        ],
    )
