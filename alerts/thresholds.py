"""Alert thresholds: the defaults, which ones a tenant's usage newly crossed, and who hears
about each (routing). Pure Python, no I/O: the HTTP API imports the defaults from here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from meterline.core.quota_levels import DEFAULT_THRESHOLDS

# Channel names, as stored in meterline.alerts.channel.
EMAIL = "email"  # the tenant's address (meterline.tenants.email)
WEBHOOK = "webhook"  # ALERT_WEBHOOK_URL
ADMIN_EMAIL = "admin_email"  # METERLINE_ADMIN_EMAIL
REDIS = "redis"  # <prefix>:notifications


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
