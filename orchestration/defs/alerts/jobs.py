"""The notification job: record the crossed thresholds in ``meterline.alerts`` and deliver
the highest one on its routed channels. Safe to re-run: rows are inserted
``ON CONFLICT DO NOTHING`` and only rows not yet ``sent`` are delivered."""

import time
from datetime import datetime
from decimal import Decimal

import dagster as dg

from meterline.core import clock
from orchestration.defs.alerts.resources import NotifierResource
from orchestration.resources import PostgresResource, RedisResource


class QuotaAlertConfig(dg.Config):
    """Run config written by ``quota_threshold_sensor`` (or a retry request)."""

    tenant_id: str
    meter: str
    period: str  # YYYY-MM
    thresholds: list[int]  # every threshold crossed in that tick; the highest is notified
    quantity: str  # decimal strings, exact
    limit: str
    observed_at: str | None = None  # ISO time the sensor saw the crossing (for latency)


@dg.op(
    description=(
        "Record every crossed threshold (one row per routed channel, lower thresholds as "
        "notified=false) and deliver the pending/failed rows: email, webhook, Redis list."
    ),
)
def notify_quota_threshold(
    context: dg.OpExecutionContext,
    config: QuotaAlertConfig,
    postgres: PostgresResource,
    redis: RedisResource,
    notifier: NotifierResource,
) -> dg.Output[int]:
    from alerts.delivery import deliver_alerts
    from alerts.store import AlertRequest, record_alerts

    started = time.perf_counter()
    engine = postgres.engine()
    request = AlertRequest(
        tenant_id=config.tenant_id,
        meter=config.meter,
        period=config.period,
        thresholds=tuple(config.thresholds),
        quantity=Decimal(config.quantity),
        limit=Decimal(config.limit),
    )
    inserted = record_alerts(engine, request)
    report = deliver_alerts(
        engine,
        notifier.notifier(redis),
        tenant_id=request.tenant_id,
        meter=request.meter,
        period=request.period,
        thresholds=[request.highest],
    )
    for d in report.deliveries:
        log = context.log.warning if d.status == "failed" else context.log.info
        log(f"{d.threshold} % {d.channel}: {d.status} - {d.detail}")
    table = "\n".join(
        ["| threshold | channel | status | detail |", "|---|---|---|---|"]
        + [
            f"| {d.threshold} % | {d.channel} | {d.status} | {d.detail.replace('|', '/')} |"
            for d in report.deliveries
        ]
    )
    metadata: dict = {
        "tenant_id": request.tenant_id,
        "meter": request.meter,
        "period": request.period,
        "thresholds_crossed": ", ".join(f"{t} %" for t in sorted(request.thresholds)),
        "percent": float(request.percent),
        "rows_recorded": inserted,
        "sent": report.count("sent"),
        "failed": report.count("failed"),
        "skipped": report.count("skipped"),
        "deliveries": dg.MetadataValue.md(table if report.deliveries else "nothing left to send"),
        "elapsed_seconds": round(time.perf_counter() - started, 3),
    }
    if config.observed_at and report.count("sent"):
        observed = datetime.fromisoformat(config.observed_at)
        metadata["seconds_since_crossing"] = round((clock.now() - observed).total_seconds(), 3)
    if report.failed:
        raise dg.Failure(
            description=(
                f"{len(report.failed)} delivery(ies) failed: each is retried by "
                "quota_threshold_sensor until it gives up after its last attempt: "
                + "; ".join(f"{d.channel}: {d.detail}" for d in report.failed)
            ),
            metadata=metadata,
        )
    return dg.Output(report.count("sent"), metadata=metadata)


@dg.job(
    description=(
        "Deliver one quota-threshold alert (requested by quota_threshold_sensor with the run "
        "key quota:<tenant>:<meter>:<threshold>:<YYYY-MM>)."
    ),
    tags={"domain": "alerts", "dagster/priority": "10"},
    # One op: run it in the run worker itself. The multiprocess default would start a second
    # process and load the code location again (10-20 s on a busy 2-core machine), which
    # matters for the <= 60 s crossing -> notification target.
    executor_def=dg.in_process_executor,
)
def quota_notification_job():
    notify_quota_threshold()
