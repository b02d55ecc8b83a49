"""Live usage read from the Redis counters: what a tenant has used this month against its
plan limits (``GET /v1/usage``, the admin overview, alert sensors, counter snapshots)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Engine

from ingestion import keys
from ingestion.plans import PlanInfo, load_plans
from meterline.core import clock, periods

Period = tuple[str, datetime]  # ("month" | "hour", period start in UTC)


def month_start(moment: datetime | date) -> datetime:
    """The first instant (UTC) of the month holding ``moment`` (live counters are per month)."""
    return periods.instant(periods.month_start(moment))


def _micro(raw) -> Decimal:
    if raw is None:
        return Decimal(0)
    value = int(raw)
    if value % keys.MICRO == 0:
        return Decimal(value // keys.MICRO)
    return Decimal(value).scaleb(-6).normalize()


def _period_code(kind: str, start: datetime) -> str:
    return start.strftime("%Y%m") if kind == "month" else start.strftime("%Y%m%d%H")


def read_counters(
    redis, *, prefix: str, tenant_id: str, meters: dict[str, str], periods: Iterable[Period]
) -> dict[tuple[str, datetime, str], tuple[Decimal, Decimal]]:
    """``(kind, start, meter) -> (quantity, refused quantity)`` for one tenant; one round trip.

    ``meters`` maps meter -> aggregation (unique counts come from the HyperLogLogs).
    """
    periods = list(periods)
    unique = [m for m, agg in meters.items() if agg == "unique_count"]
    pipe = redis.pipeline(transaction=False)
    for kind, start in periods:
        code = _period_code(kind, start)
        if kind == "month":
            pipe.hgetall(keys.month_key(prefix, tenant_id, code))
            for meter in unique:
                pipe.pfcount(keys.unique_month_key(prefix, tenant_id, meter, code))
        else:
            pipe.hgetall(keys.hour_key(prefix, tenant_id, code))
            for meter in unique:
                pipe.pfcount(keys.unique_hour_key(prefix, tenant_id, meter, code))
    replies = iter(pipe.execute())
    out: dict[tuple[str, datetime, str], tuple[Decimal, Decimal]] = {}
    for kind, start in periods:
        fields = {(k.decode() if isinstance(k, bytes) else k): v for k, v in next(replies).items()}
        counts = {meter: next(replies) for meter in unique}
        for meter, agg in meters.items():
            if agg == "unique_count":
                quantity = Decimal(int(counts[meter]))
            else:
                quantity = _micro(fields.get(meter))
            out[(kind, start, meter)] = (quantity, _micro(fields.get(f"{meter}:r")))
    return out


@dataclass(frozen=True)
class MeterUsage:
    tenant_id: str
    meter: str
    month: date
    unit: str
    aggregation: str
    quantity: Decimal
    event_count: int
    limit: Decimal | None
    hard_limit: bool
    percent: float | None
    remaining: Decimal | None
    refused: Decimal
    refused_events: int
    plan_id: str | None
    upgrade_to: str | None

    def as_dict(self) -> dict:
        data = asdict(self)
        for name in ("quantity", "limit", "remaining", "refused"):
            value = data[name]
            if value is not None:
                data[name] = int(value) if value == value.to_integral_value() else float(value)
        data["month"] = self.month.isoformat()
        if self.percent is not None:
            data["percent"] = round(self.percent, 2)
        return data


def _usage_rows(
    redis, *, prefix: str, plans: Iterable[PlanInfo], month: datetime
) -> dict[str, list[MeterUsage]]:
    plans = list(plans)
    code = _period_code("month", month)
    pipe = redis.pipeline(transaction=False)
    for info in plans:
        pipe.hgetall(keys.month_key(prefix, info.tenant_id, code))
        for meter, limit in info.meters.items():
            if limit.aggregation == "unique_count":
                pipe.pfcount(keys.unique_month_key(prefix, info.tenant_id, meter, code))
    replies = iter(pipe.execute())
    result: dict[str, list[MeterUsage]] = {}
    for info in plans:
        fields = {(k.decode() if isinstance(k, bytes) else k): v for k, v in next(replies).items()}
        rows: list[MeterUsage] = []
        for meter, limit in sorted(info.meters.items()):
            if limit.aggregation == "unique_count":
                quantity = Decimal(int(next(replies)))
            else:
                quantity = _micro(fields.get(meter))
            events = int(fields.get(f"{meter}:n") or 0)
            refused_events = int(fields.get(f"{meter}:rn") or 0)
            if not limit.in_plan and not events and not refused_events:
                continue
            percent = remaining = None
            if limit.limit is not None:
                remaining = max(Decimal(0), limit.limit - quantity)
                if limit.limit > 0:
                    percent = float(quantity * 100 / limit.limit)
                else:
                    percent = 100.0 if quantity > 0 else 0.0
            rows.append(
                MeterUsage(
                    tenant_id=info.tenant_id,
                    meter=meter,
                    month=month.date(),
                    unit=limit.unit,
                    aggregation=limit.aggregation,
                    quantity=quantity,
                    event_count=events,
                    limit=limit.limit,
                    hard_limit=limit.hard_limit,
                    percent=percent,
                    remaining=remaining,
                    refused=_micro(fields.get(f"{meter}:r")),
                    refused_events=refused_events,
                    plan_id=info.plan_id,
                    upgrade_to=info.upgrade_to,
                )
            )
        result[info.tenant_id] = rows
    return result


def live_usage(
    redis,
    engine: Engine,
    tenant_id: str,
    *,
    prefix: str,
    month: date | datetime | None = None,
) -> list[MeterUsage]:
    """Per meter of the tenant's plan (plus any other meter with usage): the month's quantity,
    limit, percent, remaining and refused attempts, from the live Redis counters."""
    start = month_start(month or clock.now())
    plans = load_plans(engine, [tenant_id])
    if tenant_id not in plans:
        raise KeyError(f"unknown tenant {tenant_id!r}")
    return _usage_rows(redis, prefix=prefix, plans=plans.values(), month=start)[tenant_id]


def all_live_usage(
    redis, engine: Engine, *, prefix: str, month: date | datetime | None = None
) -> dict[str, list[MeterUsage]]:
    """:func:`live_usage` for every tenant (one Postgres query, one Redis round trip)."""
    start = month_start(month or clock.now())
    plans = load_plans(engine)
    return _usage_rows(redis, prefix=prefix, plans=plans.values(), month=start)
