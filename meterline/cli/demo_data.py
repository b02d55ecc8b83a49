"""Deterministic demo data: tenants with plan history and a realistic usage pattern.

Everything is derived from stable seeds (tenant id, hour), and event ids are derived from the
same, so running the demo twice sends the same events again and they are deduplicated instead
of counted twice. Later runs only add the hours that have passed since.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from meterline.core.periods import add_months, month_start

COMPANY_NAMES = [
    "Acme Analytics", "Globex Cloud", "Initech Labs", "Umbrella Health", "Stark Robotics",
    "Wayne Logistics", "Hooli Search", "Pied Piper", "Vandelay Imports", "Soylent Foods",
    "Cyberdyne AI", "Tyrell Genetics", "Wonka Candy", "Oceanic Travel", "Gringotts Bank",
    "Monsters Energy", "Aperture Science", "Black Mesa", "Massive Dynamic", "Nakatomi Trading",
    "Dunder Paper", "Prestige Worldwide", "Sterling Cooper", "Bluth Homes",
]  # fmt: skip

# (plan, relative size) by position: a realistic mix with a few large customers.
PLAN_MIX = [
    ("free", 0.006), ("starter", 0.4), ("pro", 3.0), ("payg", 2.0), ("enterprise", 20.0),
    ("free", 0.009), ("starter", 0.8), ("pro", 6.0), ("payg", 5.0), ("starter", 0.3),
    ("pro", 2.0), ("free", 0.004), ("payg", 1.0), ("enterprise", 12.0), ("starter", 1.1),
    ("pro", 4.0), ("payg", 8.0), ("free", 0.007), ("starter", 0.6), ("pro", 9.0),
]  # fmt: skip


@dataclass(frozen=True)
class DemoTenant:
    tenant_id: str
    name: str
    email: str
    plan: str
    size: float
    created: date
    history: tuple[tuple[date, str], ...]  # later plan changes ("cancel" cancels)


def _seed(*parts: object) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode())


def demo_tenants(count: int, today: date) -> list[DemoTenant]:
    tenants = []
    this_month = month_start(today)
    for i in range(count):
        plan, size = PLAN_MIX[i % len(PLAN_MIX)]
        name = COMPANY_NAMES[i % len(COMPANY_NAMES)] + ("" if i < len(COMPANY_NAMES) else f" {i}")
        slug = name.lower().split()[0] + ("" if i < len(COMPANY_NAMES) else str(i))
        rng = random.Random(_seed("tenant", slug))
        created = add_months(this_month, -rng.randint(2, 5)) + timedelta(days=rng.randint(0, 20))
        history: list[tuple[date, str]] = []
        # A few tenants changed plans, one churned and one came back: MRR has every movement.
        if i == 2:  # expansion last month
            history.append((add_months(this_month, -1) + timedelta(days=14), plan))
            plan = "starter"
        if i == 7:  # contraction
            history.append((add_months(this_month, -1) + timedelta(days=3), "starter"))
        if i == 10:  # churn two months ago, reactivated last month
            history.append((add_months(this_month, -2) + timedelta(days=5), "cancel"))
            history.append((add_months(this_month, -1) + timedelta(days=9), "pro"))
        if i == 11:  # churned last month
            history.append((add_months(this_month, -1) + timedelta(days=20), "cancel"))
        if history and created >= history[0][0]:
            created = add_months(history[0][0], -1)
        tenants.append(
            DemoTenant(slug, name, f"billing@{slug}.example", plan, size, created, tuple(history))
        )
    return tenants


def active_plan(tenant: DemoTenant, at: date) -> str | None:
    plan: str | None = tenant.plan if at >= tenant.created else None
    for when, change in tenant.history:
        if at >= when:
            plan = None if change == "cancel" else change
    return plan


def _hourly_profile(hour: int, weekday: int) -> float:
    business = 1.6 if 8 <= hour <= 18 else 0.5
    return business * (0.6 if weekday >= 5 else 1.0)


def usage_events(
    tenant: DemoTenant, start: datetime, end: datetime, *, scale: float = 1.0
) -> Iterator[dict]:
    """Events of one tenant for every whole hour in [start, end)."""
    hour = start.replace(minute=0, second=0, microsecond=0)
    if hour < start:
        hour += timedelta(hours=1)
    users = max(2, int(6 * tenant.size**0.5))
    storage = 0.02 + tenant.size * 2.5
    while hour + timedelta(hours=1) <= end:
        plan = active_plan(tenant, hour.date())
        if plan is None:
            hour += timedelta(hours=1)
            continue
        rng = random.Random(_seed(tenant.tenant_id, hour.isoformat()))
        load = tenant.size * _hourly_profile(hour.hour, hour.weekday()) * scale
        stamp = hour.strftime("%Y%m%d%H")

        def event(meter, n, value, dims=None, *, _rng=rng, _hour=hour, _stamp=stamp) -> dict:
            offset = timedelta(seconds=_rng.randrange(3600))
            return {
                "id": f"demo-{tenant.tenant_id}-{_stamp}-{meter}-{n}",
                "tenant_id": tenant.tenant_id,
                "meter": meter,
                "value": value,
                "timestamp": (_hour + offset).isoformat().replace("+00:00", "Z"),
                "dimensions": dims or {},
            }

        # About 150,000 calls a month per unit of size, sent as a few batched events an hour.
        # The gauss draw is clamped: a negative draw once made `calls` 0 and divided by it.
        calls = 1 + int(max(0.0, rng.gauss(1.5, 0.5)) * min(load, 10))
        per_event = 150_000 / 730 * load / calls
        for n in range(calls):
            user = f"u{rng.randrange(users)}"
            endpoint = rng.choice(["/v1/search", "/v1/items", "/v1/export", "/v1/auth"])
            yield event("api_calls", n, max(1, round(per_event * rng.uniform(0.5, 1.5))),
                        {"endpoint": endpoint, "user_id": user})  # fmt: skip
        for n in range(max(1, calls // 3)):
            yield event("active_users", n, 1, {"user_id": f"u{rng.randrange(users)}"})
        yield event("compute_seconds", 0, round(rng.uniform(5, 40) * load, 3))
        yield event("bandwidth_gb", 0, round(rng.uniform(0.001, 0.02) * load, 6))
        if hour.hour % 6 == 0:
            days = (hour.date() - tenant.created).days
            yield event("storage_gb", 0, round(storage * (1 + days / 120), 4))
        hour += timedelta(hours=1)


def cost_rows(month: date) -> list[dict]:
    return [
        {"month": f"{month:%Y-%m}", "cost_pool": "api_servers", "driver_meter": "api_calls", "amount": "1840.00"},
        {"month": f"{month:%Y-%m}", "cost_pool": "object_storage", "driver_meter": "storage_gb", "amount": "312.40"},
        {"month": f"{month:%Y-%m}", "cost_pool": "compute_cluster", "driver_meter": "compute_seconds", "amount": "960.00"},
        {"month": f"{month:%Y-%m}", "cost_pool": "support_and_ops", "driver_meter": "", "amount": "1500.00"},
    ]  # fmt: skip
