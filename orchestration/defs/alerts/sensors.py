"""Sensors: ``quota_threshold_sensor`` (tenants warned at 80/90/95/100 % of a limit, once per
threshold and month) and ``admin_run_failure_sensor`` (the admin hears about failed runs)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import dagster as dg

from meterline.core import clock, periods
from orchestration.defs.alerts.jobs import quota_notification_job
from orchestration.defs.alerts.resources import NotifierResource
from orchestration.resources import PostgresResource, RedisResource

QUOTA_SENSOR_INTERVAL_SECONDS = 30


@dataclass
class QuotaCursor:
    """Highest threshold fired per (tenant, meter) in ``period``; reset when the month
    changes (and then seeded from ``meterline.alerts``, so a lost cursor re-fires nothing)."""

    period: str | None = None
    fired: dict[tuple[str, str], int] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: str | None) -> QuotaCursor:
        if not raw:
            return cls()
        data = json.loads(raw)
        return cls(
            period=data.get("period"),
            fired={(t, m): int(th) for t, m, th in data.get("fired", [])},
        )

    def dumps(self) -> str:
        fired = [[t, m, th] for (t, m), th in sorted(self.fired.items())]
        return json.dumps({"period": self.period, "fired": fired}, separators=(",", ":"))


@dataclass
class QuotaTick:
    run_requests: list[dg.RunRequest]
    cursor: str
    summary: str


def _notification_request(run_key: str, config: dict, tags: dict[str, str]) -> dg.RunRequest:
    """A run of ``quota_notification_job`` for one tenant, meter and threshold."""
    return dg.RunRequest(
        run_key=run_key,
        run_config={"ops": {"notify_quota_threshold": {"config": config}}},
        tags={
            "meterline/tenant": config["tenant_id"],
            "meterline/meter": config["meter"],
            "meterline/period": config["period"],
            **tags,
        },
    )


def evaluate_quota_tick(
    engine,
    redis_client,
    *,
    prefix: str,
    cursor: str | None,
    now: datetime | None = None,
    thresholds=None,
) -> QuotaTick:
    """One sensor evaluation, without Dagster context (so the demo and tests can call it)."""
    from alerts.delivery import retry_candidates
    from alerts.store import fired_thresholds
    from alerts.thresholds import DEFAULT_THRESHOLDS, evaluate
    from alerts.usage import current_usage

    now = now or clock.now()
    period = f"{periods.month_start(now):%Y-%m}"
    state = QuotaCursor.parse(cursor)
    if state.period != period:
        state = QuotaCursor(period=period, fired=fired_thresholds(engine, period))
    usage = current_usage(redis_client, engine, prefix=prefix, month=period, now=now)
    crossings = evaluate(
        usage, state.fired, period=period, thresholds=thresholds or DEFAULT_THRESHOLDS
    )
    requests: list[dg.RunRequest] = []
    for c in crossings:
        config = {
            "tenant_id": c.tenant_id,
            "meter": c.meter,
            "period": c.period,
            "thresholds": list(c.thresholds),
            "quantity": str(c.quantity),
            "limit": str(c.limit),
            "observed_at": now.isoformat(),
        }
        requests.append(
            _notification_request(c.run_key, config, {"meterline/threshold": str(c.highest)})
        )
        state.fired[(c.tenant_id, c.meter)] = c.highest
    retries = retry_candidates(engine, period)
    for r in retries:
        config = {
            "tenant_id": r.tenant_id,
            "meter": r.meter,
            "period": r.period,
            "thresholds": [r.threshold],
            "quantity": str(r.quantity),
            "limit": str(r.limit),
        }
        tags = {"meterline/threshold": str(r.threshold), "meterline/retry": str(r.attempts)}
        requests.append(_notification_request(r.run_key, config, tags))
    sources = sorted({u.source for u in usage})
    summary = (
        f"{len(usage)} limited meter(s) checked for {period} (source: {', '.join(sources) or '-'}); "
        f"{len(crossings)} new crossing(s), {len(retries)} retry(ies)"
    )
    return QuotaTick(requests, state.dumps(), summary)


@dg.sensor(
    job=quota_notification_job,
    minimum_interval_seconds=QUOTA_SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Compares live usage (Redis counters, else raw.usage_events) with plan limits every "
        "30 s and requests one notification run per tenant, meter, threshold (80/90/95/100 %) "
        "and month - run key quota:<tenant>:<meter>:<threshold>:<YYYY-MM>. Several thresholds "
        "crossed at once: the highest is notified, all are recorded. Also re-requests failed "
        "deliveries (up to 5 attempts)."
    ),
)
def quota_threshold_sensor(
    context: dg.SensorEvaluationContext, postgres: PostgresResource, redis: RedisResource
) -> dg.SensorResult:
    tick = evaluate_quota_tick(
        postgres.engine(), redis.client(), prefix=redis.prefix, cursor=context.cursor
    )
    context.log.info(tick.summary)
    if not tick.run_requests:
        return dg.SensorResult(skip_reason=tick.summary, cursor=tick.cursor)
    return dg.SensorResult(run_requests=tick.run_requests, cursor=tick.cursor)


def _failure_text(context: dg.RunFailureSensorContext) -> str:
    parts = []
    for event in context.get_step_failure_events():
        error = getattr(event.event_specific_data, "error", None)
        message = getattr(error, "message", None) or event.message or ""
        parts.append(f"step {event.step_key}: {message.strip()}")
    if not parts:
        parts.append(context.failure_event.message or "")
    return "\n".join(parts)


@dg.run_failure_sensor(
    name="admin_run_failure_sensor",
    minimum_interval_seconds=QUOTA_SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Emails the admin (METERLINE_ADMIN_EMAIL) and posts to ALERT_WEBHOOK_URL when any run fails.",
)
def admin_run_failure_sensor(
    context: dg.RunFailureSensorContext, notifier: NotifierResource
) -> None:
    from alerts.messages import run_failure_notification
    from alerts.notification import ChannelNotConfigured, DeliveryError
    from alerts.thresholds import ADMIN_EMAIL, WEBHOOK

    run = context.dagster_run
    message = run_failure_notification(run.job_name, run.run_id, _failure_text(context))
    sender = notifier.notifier()
    for channel in (ADMIN_EMAIL, WEBHOOK):
        try:
            where = sender.channel(channel).send(message)
            context.log.info(f"run failure of {run.job_name} {run.run_id}: {channel} -> {where}")
        except ChannelNotConfigured as exc:
            context.log.info(f"run failure {channel} skipped: {exc}")
        except DeliveryError as exc:
            # Not raised: a failed tick would re-process this run and repeat the channels that
            # did deliver. The failure stays visible in the sensor's tick log.
            context.log.error(
                f"could not notify the admin about run {run.run_id} by {channel}: {exc}"
            )
