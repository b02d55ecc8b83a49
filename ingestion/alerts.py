"""Quota-threshold alerts: which thresholds a tenant crossed, who hears about it, and the
idempotent record-then-deliver cycle on ``meterline.alerts``.

Plain Python (no Dagster). The orchestration layer calls, per sensor tick,
:func:`current_usage` -> :func:`evaluate` (one :class:`Crossing` per tenant and meter that
crossed something new) and, per run, :func:`record_alerts` -> :func:`deliver_alerts`.

Exactly once
    A threshold fires once per (tenant, meter, threshold, period): the sensor keeps the
    highest fired threshold per tenant/meter in its cursor (seeded from ``meterline.alerts``
    when the period changes) and asks for runs with the deterministic key
    ``quota:<tenant>:<meter>:<threshold>:<YYYY-MM>``. When one tick crosses several
    thresholds only the highest is notified; the lower ones are recorded with
    ``notified = false`` and ``delivery_status = 'skipped'``.
Delivery
    One row per routed channel (:func:`route`), unique on
    (tenant_id, meter, period_start, threshold, channel). Rows are inserted
    ``ON CONFLICT DO NOTHING``; each row still ``pending`` or ``failed`` is locked
    (``FOR UPDATE SKIP LOCKED``), sent, and marked ``sent`` / ``failed`` / ``skipped`` in the
    same transaction. A retried run therefore re-sends failed deliveries and never repeats a
    sent one, and two concurrent runs cannot both send the same row. (If the process dies
    between the send and the commit, that one message can be sent twice: email Message-ID,
    outbox file name and the webhook's ``X-Meterline-Delivery`` header are stable per row so
    receivers can dedupe.)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_DOWN, Decimal

from redis.exceptions import RedisError
from sqlalchemy import Engine, text

from ingestion import keys
from ingestion.notify import ChannelNotConfigured, DeliveryError, Notification, Notifier
from meterline.core import clock

log = logging.getLogger(__name__)

DEFAULT_THRESHOLDS: tuple[int, ...] = (80, 90, 95, 100)
MAX_DELIVERY_ATTEMPTS = 5

EMAIL = "email"  # the tenant's address (meterline.tenants.email)
WEBHOOK = "webhook"  # ALERT_WEBHOOK_URL
ADMIN_EMAIL = "admin_email"  # METERLINE_ADMIN_EMAIL
REDIS = "redis"  # <prefix>:notifications
CHANNELS = (REDIS, EMAIL, ADMIN_EMAIL, WEBHOOK)


# -- periods ---------------------------------------------------------------------------------
def period_of(at: date | datetime | str | None = None) -> str:
    """``YYYY-MM`` of a UTC instant, a date, or an already formatted period (validated)."""
    if at is None:
        at = clock.now()
    if isinstance(at, str):
        try:
            datetime.strptime(at, "%Y-%m")
        except ValueError:
            raise ValueError(f"period must look like YYYY-MM, got {at!r}") from None
        return at
    if isinstance(at, datetime) and at.tzinfo is not None:
        at = at.astimezone(UTC)
    return f"{at.year:04d}-{at.month:02d}"


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """Half-open UTC window ``[first of month, first of next month)``."""
    start = datetime.strptime(period_of(period), "%Y-%m").replace(tzinfo=UTC)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end


def period_start(period: str) -> date:
    return period_bounds(period)[0].date()


# -- thresholds ------------------------------------------------------------------------------
@dataclass(frozen=True)
class UsageRow:
    """A tenant's usage of one meter in the period, against its current plan limit."""

    tenant_id: str
    meter: str
    quantity: Decimal
    limit: Decimal
    source: str = "postgres"  # "redis" (live counters) or "postgres" (raw.usage_events)

    @property
    def percent(self) -> Decimal:
        """Percentage of the limit, rounded down to 0.01 (so 99.999 % never shows as 100)."""
        if self.limit <= 0:
            return Decimal("0.00")
        return (self.quantity * 100 / self.limit).quantize(Decimal("0.01"), rounding=ROUND_DOWN)

    def reached(self, threshold: int) -> bool:
        """Exact comparison, no rounding: quantity >= threshold % of the limit."""
        return self.limit > 0 and self.quantity * 100 >= self.limit * threshold


@dataclass(frozen=True)
class Crossing:
    """Thresholds newly crossed by one tenant/meter in one sensor tick (ascending)."""

    tenant_id: str
    meter: str
    period: str
    thresholds: tuple[int, ...]
    quantity: Decimal
    limit: Decimal
    percent: Decimal

    @property
    def highest(self) -> int:
        return self.thresholds[-1]

    @property
    def run_key(self) -> str:
        return run_key(self.tenant_id, self.meter, self.highest, self.period)


def run_key(tenant_id: str, meter: str, threshold: int, period: str) -> str:
    return f"quota:{tenant_id}:{meter}:{threshold}:{period}"


def validate_thresholds(thresholds: Iterable[int]) -> tuple[int, ...]:
    values = tuple(sorted({int(t) for t in thresholds}))
    if not values or values[0] < 1 or values[-1] > 1000:
        raise ValueError(
            f"alert thresholds must be whole percentages between 1 and 1000, got {list(thresholds)}"
        )
    return values


def evaluate(
    rows: Iterable[UsageRow],
    fired: Mapping[tuple[str, str], int],
    *,
    period: str,
    thresholds: Sequence[int] = DEFAULT_THRESHOLDS,
) -> list[Crossing]:
    """New crossings: thresholds reached and above the highest already fired for that
    tenant/meter in the period. Meters without a positive limit never alert."""
    ordered = validate_thresholds(thresholds)
    out: list[Crossing] = []
    for row in rows:
        if row.limit is None or row.limit <= 0:
            continue
        already = fired.get((row.tenant_id, row.meter), 0)
        new = tuple(t for t in ordered if t > already and row.reached(t))
        if new:
            out.append(
                Crossing(
                    row.tenant_id, row.meter, period, new, row.quantity, row.limit, row.percent
                )
            )
    out.sort(key=lambda c: (c.tenant_id, c.meter))
    return out


def route(threshold: int) -> tuple[str, ...]:
    """Channels per threshold: below 90 % a warning email to the tenant; from 90 % also the
    webhook; from 100 % also the admin. Every notified alert also goes to the Redis list."""
    if threshold >= 100:
        return (REDIS, EMAIL, ADMIN_EMAIL, WEBHOOK)
    if threshold >= 90:
        return (REDIS, EMAIL, WEBHOOK)
    return (REDIS, EMAIL)


# -- live usage ------------------------------------------------------------------------------
_LIMITS_SQL = """
select distinct on (s.tenant_id, pm.meter)
       s.tenant_id, pm.meter, pm.limit_quantity, m.aggregation, m.unique_dimension
from meterline.subscriptions s
join meterline.tenants t on t.tenant_id = s.tenant_id and t.status = 'active'
join meterline.plan_meters pm on pm.plan_id = s.plan_id and pm.limit_quantity is not null
join meterline.meters m on m.meter = pm.meter
where s.effective_from <= :now and (s.effective_to is null or s.effective_to > :now)
order by s.tenant_id, pm.meter, s.effective_from desc
"""

_PG_USAGE_SQL = """
select e.tenant_id, e.meter,
       case m.aggregation
           when 'sum' then sum(e.value)
           when 'count' then count(*)::numeric
           when 'max' then max(e.value)
           when 'last' then (array_agg(e.value order by e.occurred_at desc, e.event_id desc))[1]
           when 'unique_count' then count(distinct e.dimensions ->> m.unique_dimension)::numeric
       end as quantity
from raw.usage_events e
join meterline.meters m on m.meter = e.meter
where e.tenant_id = any(:tenants) and e.occurred_at >= :start and e.occurred_at < :end
group by e.tenant_id, e.meter, m.aggregation, m.unique_dimension
"""


def _redis_month(period: str) -> str:
    return period.replace("-", "")


def current_usage(
    redis,
    engine: Engine,
    *,
    prefix: str,
    month: date | datetime | str | None = None,
    now: datetime | None = None,
) -> list[UsageRow]:
    """Usage of every active tenant's limited meters in ``month`` (default: this month).

    Source, per tenant: the live Redis counters of the metering engine (the month hash
    ``<prefix>:{t}:m:<YYYYMM>`` in micro-units, HyperLogLog/exact set for unique meters)
    when that hash exists - the same numbers the quota check enforces; otherwise (and for
    every tenant while Redis is unreachable) Postgres: ``raw.usage_events`` of the month
    aggregated per the meter's aggregation. Limits come from the tenant's current
    subscription (``plan_meters.limit_quantity``)."""
    period = period_of(month)
    at = now or clock.now()
    with engine.connect() as conn:
        limits = conn.execute(text(_LIMITS_SQL), {"now": at}).all()
    if not limits:
        return []
    by_tenant: dict[str, list] = {}
    for row in limits:
        by_tenant.setdefault(row.tenant_id, []).append(row)

    quantities: dict[tuple[str, str], Decimal] = {}
    sources: dict[str, str] = {}
    if redis is not None:
        try:
            quantities, live = _redis_usage(redis, prefix, _redis_month(period), by_tenant)
        except (RedisError, OSError) as exc:
            # Redis down: alerts keep working from Postgres (lagging by the loader's interval).
            log.warning("live usage: Redis unavailable (%s), reading raw.usage_events instead", exc)
            quantities, live = {}, []
        sources = dict.fromkeys(live, "redis")
    fallback = [t for t in by_tenant if t not in sources]
    if fallback:
        start, end = period_bounds(period)
        with engine.connect() as conn:
            for row in conn.execute(
                text(_PG_USAGE_SQL), {"tenants": fallback, "start": start, "end": end}
            ):
                quantities[(row.tenant_id, row.meter)] = Decimal(row.quantity or 0)
    return [
        UsageRow(
            tenant_id=tenant,
            meter=row.meter,
            quantity=quantities.get((tenant, row.meter), Decimal(0)),
            limit=Decimal(row.limit_quantity),
            source=sources.get(tenant, "postgres"),
        )
        for tenant, rows in sorted(by_tenant.items())
        for row in rows
    ]


def _redis_usage(redis, prefix: str, month: str, by_tenant: Mapping[str, list]):
    """One pipeline: EXISTS + HMGET of each month hash, PFCOUNT/SCARD for unique meters."""
    pipe = redis.pipeline(transaction=False)
    plan: list[tuple] = []
    for tenant, rows in by_tenant.items():
        mkey = keys.month_key(prefix, tenant, month)
        pipe.exists(mkey)
        plain = [r.meter for r in rows if r.aggregation != "unique_count"]
        if plain:
            pipe.hmget(mkey, plain)
        uniques = [r.meter for r in rows if r.aggregation == "unique_count"]
        for meter in uniques:
            pipe.pfcount(keys.unique_month_key(prefix, tenant, meter, month))
            pipe.scard(keys.base(prefix, tenant) + f"us:{meter}:{month}")
        plan.append((tenant, plain, uniques))
    replies = iter(pipe.execute())
    quantities: dict[tuple[str, str], Decimal] = {}
    live: list[str] = []
    for tenant, plain, uniques in plan:
        exists = bool(next(replies))
        values = next(replies) if plain else []
        counts = [(next(replies), next(replies)) for _ in uniques]
        if not exists:
            continue
        live.append(tenant)
        for meter, raw in zip(plain, values, strict=True):
            micro = int(raw) if raw is not None else 0
            quantities[(tenant, meter)] = Decimal(micro) / keys.MICRO
        for meter, (approx, exact) in zip(uniques, counts, strict=True):
            quantities[(tenant, meter)] = Decimal(max(int(approx), int(exact)))
    return quantities, live


def fired_thresholds(engine: Engine, period: str) -> dict[tuple[str, str], int]:
    """Highest threshold already recorded per tenant/meter in the period (seeds the cursor)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "select tenant_id, meter, max(threshold) from meterline.alerts "
                "where period_start = :p group by tenant_id, meter"
            ),
            {"p": period_start(period)},
        ).all()
    return {(r[0], r[1]): int(r[2]) for r in rows}


# -- record and deliver ----------------------------------------------------------------------
@dataclass(frozen=True)
class AlertRequest:
    """What a notification run works on (the sensor's run config, or a retry)."""

    tenant_id: str
    meter: str
    period: str
    thresholds: tuple[int, ...]
    quantity: Decimal
    limit: Decimal

    @property
    def highest(self) -> int:
        return max(self.thresholds)

    @property
    def percent(self) -> Decimal:
        return UsageRow(self.tenant_id, self.meter, self.quantity, self.limit).percent


def record_alerts(engine: Engine, request: AlertRequest) -> int:
    """Insert one row per threshold and routed channel, ``ON CONFLICT DO NOTHING``. The
    highest threshold's rows are ``pending`` (to notify); lower ones ``skipped`` with
    ``notified = false``. Returns the number of rows inserted (0 on a retry)."""
    ordered = sorted(set(request.thresholds))
    top = ordered[-1]
    params = []
    for threshold in ordered:
        notify = threshold == top
        for channel in route(threshold):
            params.append(
                {
                    "tenant": request.tenant_id,
                    "meter": request.meter,
                    "period": period_start(request.period),
                    "threshold": threshold,
                    "percent": request.percent,
                    "quantity": request.quantity,
                    "limit": request.limit,
                    "channel": channel,
                    "notified": notify,
                    "status": "pending" if notify else "skipped",
                    "error": None
                    if notify
                    else f"superseded: the same check crossed {top} %, only that alert is sent",
                }
            )
    inserted = 0
    with engine.begin() as conn:
        for p in params:
            result = conn.execute(
                text(
                    """
                    insert into meterline.alerts (tenant_id, meter, period_start, threshold,
                        usage_percent, quantity, limit_quantity, channel, notified,
                        delivery_status, last_error)
                    values (:tenant, :meter, :period, :threshold, :percent, :quantity, :limit,
                        :channel, :notified, :status, :error)
                    on conflict (tenant_id, meter, period_start, threshold, channel) do nothing
                    """
                ),
                p,
            )
            inserted += result.rowcount
    return inserted


@dataclass(frozen=True)
class AlertContext:
    tenant_id: str
    meter: str
    tenant_name: str
    email: str | None
    plan_id: str | None
    plan_name: str | None
    currency: str | None
    unit: str
    hard_limit: bool
    upgrade_to: str | None
    upgrade_name: str | None
    upgrade_limit: Decimal | None


_CONTEXT_SQL = """
select t.tenant_id, m.meter, t.name, t.email, p.plan_id, p.name as plan_name, p.currency,
       m.unit, coalesce(pm.hard_limit, false) as hard_limit,
       p.upgrade_to, up.name as upgrade_name, upm.limit_quantity as upgrade_limit
from meterline.tenants t
cross join meterline.meters m
left join lateral (
    select s.plan_id from meterline.subscriptions s
    where s.tenant_id = t.tenant_id and s.effective_from <= :at
      and (s.effective_to is null or s.effective_to > :at)
    order by s.effective_from desc limit 1
) cur on true
left join meterline.plans p on p.plan_id = cur.plan_id
left join meterline.plan_meters pm on pm.plan_id = p.plan_id and pm.meter = m.meter
left join meterline.plans up on up.plan_id = p.upgrade_to
left join meterline.plan_meters upm on upm.plan_id = up.plan_id and upm.meter = m.meter
where t.tenant_id = :tenant and m.meter = :meter
"""


def alert_context(
    engine: Engine, tenant_id: str, meter: str, *, at: datetime | None = None
) -> AlertContext:
    params = {"tenant": tenant_id, "meter": meter, "at": at or clock.now()}
    with engine.connect() as conn:
        row = conn.execute(text(_CONTEXT_SQL), params).first()
    if row is None:
        raise LookupError(
            f"tenant {tenant_id!r} or meter {meter!r} does not exist: create the tenant or load "
            "the catalog before alerting on it"
        )
    return AlertContext(
        tenant_id=row.tenant_id,
        meter=row.meter,
        tenant_name=row.name,
        email=row.email,
        plan_id=row.plan_id,
        plan_name=row.plan_name,
        currency=(row.currency or "").strip() or None,
        unit=row.unit,
        hard_limit=bool(row.hard_limit),
        upgrade_to=row.upgrade_to,
        upgrade_name=row.upgrade_name,
        upgrade_limit=row.upgrade_limit,
    )


def fmt_quantity(value: Decimal) -> str:
    value = Decimal(value)
    if value == value.to_integral_value():
        return f"{int(value):,}"
    return f"{value.normalize():,f}"


def build_notification(
    ctx: AlertContext,
    *,
    period: str,
    threshold: int,
    quantity: Decimal,
    limit: Decimal,
    percent: Decimal,
    audience: str = "tenant",
) -> Notification:
    """The message for one alert: tenant, meter, usage, limit, percent and how to upgrade."""
    plan = ctx.plan_name or ctx.plan_id or "current"
    usage = f"{fmt_quantity(quantity)} of {fmt_quantity(limit)} {ctx.unit}"
    severity = "critical" if threshold >= 100 else "warning"
    if threshold >= 100:
        headline = f"{ctx.tenant_id} reached its {ctx.meter} limit"
        at_limit = (
            f"Further {ctx.meter} usage is refused (HTTP 402) until the next billing month."
            if ctx.hard_limit
            else f"Usage above the limit is billed as overage on the {period} invoice."
        )
    else:
        headline = f"{ctx.tenant_id} used {percent} % of its {ctx.meter} limit"
        at_limit = (
            f"At 100 % further {ctx.meter} usage will be refused (HTTP 402) until the next billing month."
            if ctx.hard_limit
            else "Usage above the limit will be billed as overage."
        )
    if ctx.upgrade_to:
        more = (
            f", which allows {fmt_quantity(ctx.upgrade_limit)} {ctx.unit}"
            if ctx.upgrade_limit is not None
            else " (no limit on this meter)"
        )
        upgrade = (
            f"To raise the limit, upgrade to the {ctx.upgrade_name or ctx.upgrade_to} plan "
            f"(plan id `{ctx.upgrade_to}`){more}: `meterline tenants set-plan {ctx.tenant_id} "
            f"{ctx.upgrade_to}`, or ask your account administrator."
        )
    else:
        upgrade = f"{plan} is the largest plan; contact sales for a custom limit."
    subject = f"[Meterline] {headline} ({threshold} % alert, {period})"
    greeting = "Hello," if audience == "admin" else f"Hello {ctx.tenant_name},"
    text_body = "\n".join(
        [
            greeting,
            "",
            f"Tenant {ctx.tenant_id} ({ctx.tenant_name}) on the {plan} plan has used {usage} "
            f"of {ctx.meter} in {period}: {percent} % of the limit, crossing the {threshold} % "
            "alert threshold.",
            "",
            at_limit,
            upgrade,
            "",
            "You receive this once per threshold and month. -- Meterline",
        ]
    )
    payload = {
        "type": "quota.threshold",
        "severity": severity,
        "tenant_id": ctx.tenant_id,
        "tenant_name": ctx.tenant_name,
        "plan": ctx.plan_id,
        "meter": ctx.meter,
        "unit": ctx.unit,
        "period": period,
        "threshold": threshold,
        "quantity": str(quantity),
        "limit": str(limit),
        "percent": str(percent),
        "hard_limit": ctx.hard_limit,
        "upgrade_to": ctx.upgrade_to,
    }
    key = f"quota-{ctx.tenant_id}-{ctx.meter}-{period}-{threshold}"
    if audience == "admin":
        key += "-admin"
    return Notification(key=key, subject=subject, text=f"{subject}\n\n{text_body}", payload=payload)


@dataclass
class Delivery:
    alert_id: int
    threshold: int
    channel: str
    status: str  # sent | failed | skipped
    detail: str


@dataclass
class DeliveryReport:
    deliveries: list[Delivery] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for d in self.deliveries if d.status == status)

    @property
    def failed(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.status == "failed"]


def _send(
    notifier: Notifier,
    channel: str,
    ctx: AlertContext,
    message: Notification,
    admin_message: Notification,
) -> str:
    if channel == EMAIL:
        if not ctx.email:
            raise ChannelNotConfigured(
                f"tenant {ctx.tenant_id} has no email address (set meterline.tenants.email)"
            )
        return notifier.send_email(ctx.email, message)
    if channel == ADMIN_EMAIL:
        return notifier.send_email(notifier.admin_email, admin_message)
    if channel == WEBHOOK:
        return notifier.post_webhook(message)
    if channel == REDIS:
        return notifier.push_redis(message)
    raise ChannelNotConfigured(f"unknown channel {channel!r}")


def deliver_alerts(
    engine: Engine,
    notifier: Notifier,
    *,
    tenant_id: str,
    meter: str,
    period: str,
    thresholds: Iterable[int] | None = None,
    max_attempts: int = MAX_DELIVERY_ATTEMPTS,
) -> DeliveryReport:
    """Send every notified row of this tenant/meter/period (optionally only ``thresholds``)
    that is not yet ``sent``: each row is locked, sent and marked in one transaction."""
    start = period_start(period)
    wanted = sorted(set(thresholds)) if thresholds is not None else None
    with engine.connect() as conn:
        ids = (
            conn.execute(
                text(
                    """
                select alert_id from meterline.alerts
                where tenant_id = :t and meter = :m and period_start = :p and notified
                  and delivery_status in ('pending', 'failed') and attempts < :max
                  and (cast(:th as integer[]) is null or threshold = any(cast(:th as integer[])))
                order by threshold, alert_id
                """
                ),
                {"t": tenant_id, "m": meter, "p": start, "max": max_attempts, "th": wanted},
            )
            .scalars()
            .all()
        )
    report = DeliveryReport()
    if not ids:
        return report
    ctx = alert_context(engine, tenant_id, meter)
    for alert_id in ids:
        with engine.begin() as conn:
            row = conn.execute(
                text(
                    """
                    select alert_id, threshold, channel, quantity, limit_quantity, usage_percent
                    from meterline.alerts
                    where alert_id = :id and delivery_status in ('pending', 'failed')
                    for update skip locked
                    """
                ),
                {"id": alert_id},
            ).first()
            if row is None:
                continue  # sent meanwhile, or another run holds it
            common = {
                "period": period,
                "threshold": row.threshold,
                "quantity": row.quantity,
                "limit": row.limit_quantity,
                "percent": row.usage_percent,
            }
            message = build_notification(ctx, **common)
            admin_message = build_notification(ctx, audience="admin", **common)
            try:
                detail = _send(notifier, row.channel, ctx, message, admin_message)
                status = "sent"
            except ChannelNotConfigured as exc:
                status, detail = "skipped", str(exc)
            except DeliveryError as exc:
                status, detail = "failed", str(exc)
            conn.execute(
                text(
                    """
                    update meterline.alerts
                    set delivery_status = :status, attempts = attempts + 1,
                        last_error = case when :status = 'sent' then null else :detail end,
                        delivered_at = case when :status = 'sent' then now() else delivered_at end
                    where alert_id = :id
                    """
                ),
                {"status": status, "detail": detail[:2000], "id": row.alert_id},
            )
        report.deliveries.append(Delivery(row.alert_id, row.threshold, row.channel, status, detail))
    return report


@dataclass(frozen=True)
class AlertRecord:
    alert_id: int
    tenant_id: str
    meter: str
    period: str
    threshold: int
    channel: str
    notified: bool
    delivery_status: str
    attempts: int
    usage_percent: Decimal
    last_error: str | None
    fired_at: datetime
    delivered_at: datetime | None


def list_alerts(engine: Engine, period: str | None = None) -> list[AlertRecord]:
    """Rows of ``meterline.alerts`` (of one ``YYYY-MM`` period, or all), oldest first."""
    where = "where period_start = :p" if period else ""
    params = {"p": period_start(period)} if period else {}
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "select alert_id, tenant_id, meter, period_start, threshold, channel, notified, "
                "delivery_status, attempts, usage_percent, last_error, fired_at, delivered_at "
                f"from meterline.alerts {where} order by alert_id"
            ),
            params,
        ).all()
    return [
        AlertRecord(
            alert_id=r.alert_id,
            tenant_id=r.tenant_id,
            meter=r.meter,
            period=period_of(r.period_start),
            threshold=r.threshold,
            channel=r.channel,
            notified=r.notified,
            delivery_status=r.delivery_status,
            attempts=r.attempts,
            usage_percent=r.usage_percent,
            last_error=r.last_error,
            fired_at=r.fired_at,
            delivered_at=r.delivered_at,
        )
        for r in rows
    ]


@dataclass(frozen=True)
class RetryCandidate:
    tenant_id: str
    meter: str
    period: str
    threshold: int
    attempts: int
    quantity: Decimal
    limit: Decimal

    @property
    def run_key(self) -> str:
        return f"quota-retry:{self.tenant_id}:{self.meter}:{self.threshold}:{self.period}:{self.attempts}"


def retry_candidates(
    engine: Engine,
    period: str,
    *,
    max_attempts: int = MAX_DELIVERY_ATTEMPTS,
    stale_pending_seconds: int = 300,
) -> list[RetryCandidate]:
    """Notified alerts with a failed delivery (fewer than ``max_attempts`` tries), or still
    pending ``stale_pending_seconds`` after firing (their run never delivered)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                """
                select tenant_id, meter, threshold, max(attempts) as attempts,
                       max(quantity) as quantity, max(limit_quantity) as limit_quantity
                from meterline.alerts
                where period_start = :p and notified and attempts < :max
                  and (delivery_status = 'failed'
                       or (delivery_status = 'pending'
                           and fired_at < now() - make_interval(secs => :stale)))
                group by tenant_id, meter, threshold
                order by tenant_id, meter, threshold
                """
            ),
            {"p": period_start(period), "max": max_attempts, "stale": stale_pending_seconds},
        ).all()
    return [
        RetryCandidate(
            r.tenant_id,
            r.meter,
            period,
            int(r.threshold),
            int(r.attempts),
            Decimal(r.quantity),
            Decimal(r.limit_quantity),
        )
        for r in rows
    ]


def run_failure_notification(
    job_name: str, run_id: str, error: str, *, location: str | None = None
) -> Notification:
    """The admin message for a failed Dagster run."""
    short = (error or "no error message").strip()
    subject = f"[Meterline] run of {job_name} failed ({run_id[:8]})"
    lines = [
        subject,
        "",
        f"Job: {job_name}",
        f"Run id: {run_id}",
    ]
    if location:
        lines.append(f"Code location: {location}")
    lines += ["", "Error:", short[:4000], "", "Open the run in the Dagster UI to see its logs."]
    return Notification(
        key=f"run-failure-{run_id}",
        subject=subject,
        text="\n".join(lines),
        payload={
            "type": "run.failure",
            "severity": "critical",
            "job_name": job_name,
            "run_id": run_id,
            "error": short[:4000],
        },
    )
