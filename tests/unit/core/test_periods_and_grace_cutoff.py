"""Billing periods and the grace cutoff at awkward instants (no services needed)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from meterline.core import clock, periods
from tests.instants import INSTANTS, PARAMS, frozen_at


@pytest.mark.parametrize(
    ("moment", "start", "end"),
    [
        (datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), date(2026, 12, 1), date(2027, 1, 1)),
        (datetime(2028, 2, 29, 12, tzinfo=UTC), date(2028, 2, 1), date(2028, 3, 1)),
        (datetime(2027, 3, 1, tzinfo=UTC), date(2027, 3, 1), date(2027, 4, 1)),
        # an instant given in another zone is taken in UTC: 00:30 on the 1st in Berlin is
        # still the previous month in UTC
        (datetime.fromisoformat("2027-01-01T00:30:00+01:00"), date(2026, 12, 1), date(2027, 1, 1)),
    ],
)
def test_month_bounds_are_half_open_utc_calendar_months(moment, start, end):
    assert periods.month_start(moment) == start
    assert periods.month_bounds(moment) == (periods.instant(start), periods.instant(end))
    assert periods.add_months(moment, 1) == end


def test_add_months_crosses_years_both_ways():
    assert periods.add_months(date(2026, 12, 15), 1) == date(2027, 1, 1)
    assert periods.add_months(date(2027, 1, 31), -1) == date(2026, 12, 1)
    assert periods.add_months(date(2028, 2, 29), 12) == date(2029, 2, 1)
    assert periods.add_months(date(2026, 5, 1), -17) == date(2024, 12, 1)
    assert periods.months_between(date(2026, 11, 20), date(2027, 2, 3)) == [
        date(2026, 11, 1), date(2026, 12, 1), date(2027, 1, 1), date(2027, 2, 1),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("now", "grace", "billable"),
    [
        # exactly at the cutoff the month is billable; a second before it is not
        (datetime(2027, 1, 4, 0, 0, 0, tzinfo=UTC), 72, date(2026, 12, 1)),
        (datetime(2027, 1, 3, 23, 59, 59, tzinfo=UTC), 72, date(2026, 11, 1)),
        (datetime(2028, 3, 1, 0, 0, 0, tzinfo=UTC), 0, date(2028, 2, 1)),
        (datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC), 0, date(2028, 1, 1)),
        # a grace period longer than a month reaches two months back
        (datetime(2027, 3, 15, tzinfo=UTC), 24 * 40, date(2027, 1, 1)),
    ],
)
def test_last_billable_month_respects_the_grace_period(now, grace, billable):
    assert periods.last_billable_month(now, grace) == billable
    assert periods.usage_cutoff(billable, grace) <= now


@pytest.mark.parametrize("instant", **PARAMS)
def test_clock_follows_a_frozen_interpreter_and_frozen_blocks(instant):
    with frozen_at(instant):
        assert clock.now() == instant
        assert clock.today() == instant.date()
        assert clock.iso() == instant.isoformat().replace("+00:00", "Z")
        earlier = instant - timedelta(days=400)
        with clock.frozen(earlier):
            assert clock.now() == earlier
        assert clock.now() == instant


@pytest.mark.parametrize("instant", **PARAMS)
def test_billing_schedule_bills_the_previous_month_once_its_grace_is_over(instant, monkeypatch):
    from orchestration.defs.billing.schedules import monthly_billing_schedule

    monkeypatch.setenv("BILLING_GRACE_HOURS", "72")
    previous = periods.add_months(instant, -1)
    with frozen_at(instant), dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=instant)
        outcome = monthly_billing_schedule(context)
    if instant >= periods.usage_cutoff(previous, 72):
        assert isinstance(outcome, dg.RunRequest)
        assert outcome.partition_key == f"{previous:%Y-%m-%d}"
        assert outcome.run_key == f"billing:{previous:%Y-%m-%d}"
    else:
        assert isinstance(outcome, dg.SkipReason)
        assert f"{previous:%Y-%m}" in outcome.skip_message


def test_the_instants_cover_the_awkward_days():
    days = {(i.month, i.day) for i in INSTANTS.values()}
    assert {(12, 31), (2, 29), (1, 31), (3, 1), (2, 28)} <= days
