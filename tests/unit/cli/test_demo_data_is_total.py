"""The demo's data generator is total: any month, any hour, any demo tenant.

It once divided by zero when a Gaussian draw went negative; the draw is seeded by tenant and
hour, so the calendar decided on which day `make demo` broke. These tests walk every hour of 36
consecutive months from several starting months (a year end, a 28-day February with a leap day
ahead, a 31-day month) for every demo tenant, validate every event with the validator the
importer uses, and check the monthly volumes stay within sane bounds.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime

import pytest

from meterline.cli import demo_data
from meterline.core.periods import add_months, instant

MONTHS = 36
STARTS = (date(2026, 12, 1), date(2027, 2, 1), date(2027, 7, 1))
TENANTS = 20  # the demo's default
BATCH = 20_000


def _directory(tenant_ids):
    from ingestion.directory import Directory, MeterInfo

    meters = {
        "api_calls": MeterInfo("api_calls", "sum", "calls", None),
        "storage_gb": MeterInfo("storage_gb", "max", "GB", None),
        "compute_seconds": MeterInfo("compute_seconds", "sum", "s", None),
        "bandwidth_gb": MeterInfo("bandwidth_gb", "sum", "GB", None),
        "active_users": MeterInfo("active_users", "unique_count", "users", "user_id"),
    }
    return Directory.fixed({t: "active" for t in tenant_ids}, meters)


def _tenants(start: date) -> list[demo_data.DemoTenant]:
    """The demo's tenants as the demo makes them at the end of the span (plan history included),
    each existing from the first hour of the span so that every hour is generated."""
    today = add_months(start, MONTHS)
    return [dataclasses.replace(t, created=start) for t in demo_data.demo_tenants(TENANTS, today)]


def _walk(start: date, index: int) -> dict:
    """Generate and validate every event of one tenant over the span; monthly sums per meter."""
    from ingestion.validation import validate_batch

    tenant = _tenants(start)[index]
    end = add_months(start, MONTHS)
    directory = _directory([tenant.tenant_id])
    sums: dict[tuple[str, str], float] = defaultdict(float)
    active_hours: dict[str, int] = defaultdict(int)
    seen_hours: set[str] = set()
    batch: list[dict] = []
    count = 0
    for event in demo_data.usage_events(tenant, instant(start), instant(end)):
        value = event["value"]
        assert isinstance(value, int | float) and math.isfinite(value) and value >= 0, event
        month = event["timestamp"][:7]
        sums[(month, event["meter"])] = (
            max(sums[(month, event["meter"])], value)
            if (event["meter"] == "storage_gb")
            else sums[(month, event["meter"])] + value
        )
        hour = event["timestamp"][:13]
        if event["meter"] == "compute_seconds" and hour not in seen_hours:
            seen_hours.add(hour)
            active_hours[month] += 1
        batch.append(event)
        if len(batch) == BATCH:
            validate_batch(batch, directory, now=instant(end), historical=True)
            count += len(batch)
            batch = []
    if batch:
        validate_batch(batch, directory, now=instant(end), historical=True)
        count += len(batch)
    return {
        "tenant": dataclasses.asdict(tenant),
        "events": count,
        "sums": dict(sums),
        "active_hours": dict(active_hours),
    }


@pytest.mark.parametrize("start", STARTS, ids=lambda d: f"{d:%Y-%m}")
def test_every_hour_of_36_months_generates_valid_events_in_sane_volumes(start: date):
    with ProcessPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(_walk, [start] * TENANTS, range(TENANTS)))

    months = {f"{m:%Y-%m}" for m in (add_months(start, i) for i in range(MONTHS))}
    assert sum(r["events"] for r in results) > 1_000_000
    for result in results:
        tenant = demo_data.DemoTenant(**result["tenant"])
        hours = result["active_hours"]
        # Every month of the span has usage unless the tenant was canceled for all of it.
        assert set(hours) <= months
        assert len(hours) >= MONTHS - 2, (tenant.tenant_id, sorted(months - set(hours)))
        for month, active in hours.items():
            calls = result["sums"][(month, "api_calls")]
            expected = 150_000 * tenant.size * active / 730
            # at least one call per active hour; around the designed 150k calls/month/size
            assert active <= calls <= 3 * expected + 2 * active, (tenant.tenant_id, month, calls)
            assert calls >= 0.3 * expected, (tenant.tenant_id, month, calls, expected)
            peak = result["sums"].get((month, "storage_gb"), 0.0)
            assert peak <= (0.02 + tenant.size * 2.5) * (1 + 1200 / 120), (tenant.tenant_id, month)
            compute = result["sums"][(month, "compute_seconds")]
            assert compute <= 40 * tenant.size * 1.6 * active + 1, (tenant.tenant_id, month)


@pytest.mark.parametrize(
    "today",
    [date(2026, 12, 2), date(2027, 1, 1), date(2028, 2, 29), date(2028, 3, 1), date(2026, 12, 31)],
    ids=str,
)
def test_demo_tenants_have_a_plan_history_that_ends_before_today(today: date):
    tenants = demo_data.demo_tenants(TENANTS, today)
    assert len({t.tenant_id for t in tenants}) == TENANTS
    for tenant in tenants:
        assert tenant.created < today
        changes = [when for when, _ in tenant.history]
        assert changes == sorted(changes) and all(tenant.created < when < today for when in changes)


def test_live_window_at_the_first_minute_of_a_month_is_empty_not_an_error():
    tenant = demo_data.demo_tenants(TENANTS, date(2027, 1, 1))[4]
    start = datetime(2027, 1, 1, tzinfo=UTC)
    assert list(demo_data.usage_events(tenant, start, start)) == []
