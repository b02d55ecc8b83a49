"""Invoice events out, retried: ``invoice_events_sensor`` asks for a run of
``invoice_events_job`` while ``meterline.invoice_events`` has rows not yet sent (pending, or
failed with attempts left). Deliveries normally happen right after the Stripe webhook or the
invoice run that recorded them; this is what retries the ones that failed (the run key
changes with every attempt made, so each state asks for one run at most)."""

import dagster as dg
from sqlalchemy import text

from orchestration.defs.alerts.resources import NotifierResource
from orchestration.resources import PostgresResource

INVOICE_EVENTS_INTERVAL_SECONDS = 60


@dg.op(description="Send every invoice event not yet sent on the alert webhook (signed).")
def deliver_pending_invoice_events(
    context: dg.OpExecutionContext, postgres: PostgresResource, notifier: NotifierResource
) -> dg.Output[int]:
    from alerts.invoice_events import deliver_invoice_events

    report = deliver_invoice_events(postgres.engine(), notifier.notifier())
    for key in report.failed:
        context.log.warning(f"{key}: delivery failed (retried by invoice_events_sensor)")
    return dg.Output(
        len(report.sent),
        metadata={"sent": len(report.sent), "failed": len(report.failed),
                  "skipped": len(report.skipped)},
    )  # fmt: skip


@dg.job(description="Deliver (or retry) invoice events to ALERT_WEBHOOK_URL.")
def invoice_events_job():
    deliver_pending_invoice_events()


def pending_run_key(engine) -> str | None:
    """A key for the current backlog (None: nothing to send): it changes whenever an event is
    recorded or an attempt is made."""
    from alerts.delivery import MAX_DELIVERY_ATTEMPTS

    with engine.connect() as conn:
        row = conn.execute(
            text(
                "select count(*), max(event_id), sum(attempts) from meterline.invoice_events "
                "where delivery_status in ('pending', 'failed') and attempts < :max"
            ),
            {"max": MAX_DELIVERY_ATTEMPTS},
        ).one()
    return None if not row[0] else f"invoice-events:{row[1]}:{row[2]}"


@dg.sensor(
    job=invoice_events_job,
    minimum_interval_seconds=INVOICE_EVENTS_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Retries invoice events (invoice.finalized/paid/payment_failed) not yet delivered.",
)
def invoice_events_sensor(context: dg.SensorEvaluationContext, postgres: PostgresResource):
    key = pending_run_key(postgres.engine())
    if key is None:
        return dg.SkipReason("every invoice event is delivered")
    return dg.RunRequest(run_key=key)
