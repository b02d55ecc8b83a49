"""The ``meterline.alerts`` table: one row per (tenant, meter, month, threshold, channel).

Recording is idempotent (``ON CONFLICT DO NOTHING``); delivering claims one row at a time
(``FOR UPDATE SKIP LOCKED``) and marks it in the same transaction (see :mod:`alerts.delivery`).
Periods are ``YYYY-MM`` strings; the table keeps the month's first day in ``period_start``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Connection, Engine, text

from alerts.outbox import Outbox
from alerts.thresholds import UsageRow, route
from meterline.core import periods


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


_INSERT_SQL = """
insert into meterline.alerts (tenant_id, meter, period_start, threshold,
    usage_percent, quantity, limit_quantity, channel, notified,
    delivery_status, last_error)
values (:tenant, :meter, :period, :threshold, :percent, :quantity, :limit,
    :channel, :notified, :status, :error)
on conflict (tenant_id, meter, period_start, threshold, channel) do nothing
"""


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
                    "period": periods.parse_month(request.period),
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
            inserted += conn.execute(text(_INSERT_SQL), p).rowcount
    return inserted


def fired_thresholds(engine: Engine, period: str) -> dict[tuple[str, str], int]:
    """Highest threshold already recorded per tenant/meter in the period (seeds the cursor)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "select tenant_id, meter, max(threshold) from meterline.alerts "
                "where period_start = :p group by tenant_id, meter"
            ),
            {"p": periods.parse_month(period)},
        ).all()
    return {(r[0], r[1]): int(r[2]) for r in rows}


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
    params = {"p": periods.parse_month(period)} if period else {}
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
            period=f"{r.period_start:%Y-%m}",
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


# -- delivery bookkeeping (used by alerts.delivery) --------------------------------------------
def deliverable_ids(
    engine: Engine,
    *,
    tenant_id: str,
    meter: str,
    month: date,
    thresholds: Sequence[int] | None,
    max_attempts: int,
) -> list[int]:
    """Notified rows of this tenant/meter/month still ``pending`` or ``failed`` with fewer
    than ``max_attempts`` tries (optionally only ``thresholds``), lowest threshold first."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    """
                    select alert_id from meterline.alerts
                    where tenant_id = :t and meter = :m and period_start = :p and notified
                      and delivery_status in ('pending', 'failed') and attempts < :max
                      and (cast(:th as integer[]) is null
                           or threshold = any(cast(:th as integer[])))
                    order by threshold, alert_id
                    """
                ),
                {"t": tenant_id, "m": meter, "p": month, "max": max_attempts, "th": thresholds},
            ).scalars()
        )


ALERTS = Outbox(
    "meterline.alerts", "alert_id", "threshold, channel, quantity, limit_quantity, usage_percent"
)


def delivery_counts(conn: Connection) -> dict[str, int]:
    """Notified alert rows by ``delivery_status`` (pending, sent, failed, skipped), all
    periods: what ``/metrics`` reports as ``meterline_alert_deliveries``."""
    rows = conn.execute(
        text(
            "select delivery_status, count(*) from meterline.alerts "
            "where notified group by delivery_status"
        )
    ).all()
    return {status: int(n) for status, n in rows}
