"""Invoice each closed month once its grace period is over, then reconcile it."""

import dagster as dg

from meterline.core import clock, periods
from orchestration.defs.billing.assets import invoice_reconciliation, stripe_invoices
from orchestration.defs.billing.partitions import billing_months

monthly_billing_job = dg.define_asset_job(
    "monthly_billing",
    selection=dg.AssetSelection.assets(stripe_invoices, invoice_reconciliation),
    partitions_def=billing_months,
    description="Create the month's Stripe invoices, then reconcile them.",
)
invoice_month_job = dg.define_asset_job(
    "invoice_month",
    selection=dg.AssetSelection.assets(stripe_invoices),
    partitions_def=billing_months,
)
reconcile_month_job = dg.define_asset_job(
    "reconcile_month",
    selection=dg.AssetSelection.assets(invoice_reconciliation),
    partitions_def=billing_months,
)


@dg.schedule(
    job=monthly_billing_job,
    cron_schedule="15 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=(
        "Hourly check: once the previous month's end + BILLING_GRACE_HOURS has passed, bill it "
        "(once: the run key is the month)."
    ),
)
def monthly_billing_schedule(context: dg.ScheduleEvaluationContext):
    from meterline.core.settings import Settings

    now = clock.aware(context.scheduled_execution_time or clock.now())
    previous = periods.add_months(now, -1)
    cutoff = periods.usage_cutoff(previous, Settings.from_env().billing_grace_hours)
    if now < cutoff:
        return dg.SkipReason(f"{previous:%Y-%m} is billed after {cutoff:%Y-%m-%d %H:%M} UTC")
    key = previous.strftime("%Y-%m-%d")
    return dg.RunRequest(run_key=f"billing:{key}", partition_key=key)
