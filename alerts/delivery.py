"""Delivering recorded alerts, and the retry policy.

Each notified ``meterline.alerts`` row still ``pending`` or ``failed`` is claimed, sent on its
channel and marked ``sent`` / ``failed`` / ``skipped`` in one transaction, so a retried run
re-sends failed deliveries and never repeats a sent one. Every exception a delivery raises
is an attempt: a :class:`DeliveryError` and anything unexpected (a channel's bug, a library
error it did not wrap) are both recorded as ``failed`` with the error's type and message
(URLs reduced to their origin), so the attempt count - and with it the retry's run key -
moves on. The attempt is counted before the send, in its own transaction, so even a run killed
while sending moves it on (``last_error`` then says the attempt did not finish). A delivery
is tried at most :data:`MAX_DELIVERY_ATTEMPTS` times; the last failure says ``gave up after
N attempts`` in ``last_error``. A row still ``pending``
:data:`STALE_PENDING_SECONDS` after firing (its run never delivered) is due for a retry too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import Engine, Row, text

from alerts import outbox, store
from alerts.context import AlertContext, alert_context
from alerts.messages import build_notification
from alerts.notification import ChannelNotConfigured, DeliveryError, Notification
from alerts.notifier import Notifier
from alerts.outbox import Outbox
from alerts.thresholds import ADMIN_EMAIL, EMAIL
from meterline.core import periods
from meterline.core.redaction import mask_urls

MAX_DELIVERY_ATTEMPTS = 5
STALE_PENDING_SECONDS = 300


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


def failure_detail(exc: Exception) -> str:
    """What ``last_error`` says about a failed attempt."""
    if isinstance(exc, DeliveryError):
        return mask_urls(str(exc))
    return mask_urls(f"unexpected {type(exc).__name__}: {exc}")


def _send(notifier: Notifier, channel: str, ctx: AlertContext, message: Notification) -> str:
    if channel == EMAIL and not ctx.email:
        raise ChannelNotConfigured(
            f"tenant {ctx.tenant_id} has no email address (set meterline.tenants.email)"
        )
    return notifier.channel(channel, to=ctx.email).send(message)


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
    that is not yet ``sent``: each attempt is counted first (committed), then the row is
    locked, sent and marked in one transaction."""
    ids = store.deliverable_ids(
        engine,
        tenant_id=tenant_id,
        meter=meter,
        month=periods.parse_month(period),
        thresholds=sorted(set(thresholds)) if thresholds is not None else None,
        max_attempts=max_attempts,
    )
    report = DeliveryReport()
    if not ids:
        return report
    ctx = alert_context(engine, tenant_id, meter)

    def send(row) -> str:
        message = build_notification(
            ctx,
            period=period,
            threshold=row.threshold,
            quantity=row.quantity,
            limit=row.limit_quantity,
            percent=row.usage_percent,
            audience="admin" if row.channel == ADMIN_EMAIL else "tenant",
        )
        return _send(notifier, row.channel, ctx, message)

    for row, status, detail in deliver_rows(engine, store.ALERTS, ids, send, max_attempts):
        report.deliveries.append(Delivery(row.alert_id, row.threshold, row.channel, status, detail))
    return report


def deliver_rows(
    engine: Engine,
    box: Outbox,
    ids: Iterable[int],
    send: Callable[[Row], str],
    max_attempts: int = MAX_DELIVERY_ATTEMPTS,
) -> Iterator[tuple[Row, str, str]]:
    """Deliver each row of ``box`` (an alert, an invoice event) once: count the attempt
    (committed), claim the row, ``send(row)``, mark it; yields ``(row, status, detail)``.
    ``send`` raises :class:`ChannelNotConfigured` (skipped) or anything else (failed)."""
    for row_id in ids:
        attempt = outbox.start_attempt(engine, box, row_id)
        if attempt is None:
            continue  # sent meanwhile, or another run holds it
        with engine.begin() as conn:
            row = outbox.claim(conn, box, row_id)
            if row is None:
                continue  # sent meanwhile, or another run holds it
            try:
                detail = send(row)
                status = "sent"
            except ChannelNotConfigured as exc:
                status, detail = "skipped", str(exc)
            except Exception as exc:  # every failure is an attempt (module docstring)
                status, detail = "failed", failure_detail(exc)
                if attempt >= max_attempts:
                    detail = f"gave up after {attempt} attempts: {detail}"
            outbox.mark(conn, box, row_id, status, detail)
        yield row, status, detail


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


_RETRY_SQL = """
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


def retry_candidates(
    engine: Engine,
    period: str,
    *,
    max_attempts: int = MAX_DELIVERY_ATTEMPTS,
    stale_pending_seconds: int = STALE_PENDING_SECONDS,
) -> list[RetryCandidate]:
    """Notified alerts with a failed delivery (fewer than ``max_attempts`` tries), or still
    pending ``stale_pending_seconds`` after firing (their run never delivered)."""
    params = {
        "p": periods.parse_month(period),
        "max": max_attempts,
        "stale": stale_pending_seconds,
    }
    with engine.connect() as conn:
        rows = conn.execute(text(_RETRY_SQL), params).all()
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
