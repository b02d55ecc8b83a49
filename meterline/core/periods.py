"""Billing periods: UTC calendar months, half-open ``[start, end)``, and the grace cutoff.

The one place for month arithmetic. A month is named by its first day (a ``date``); its window
is ``[first instant, first instant of the next month)`` in UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta


def parse_month(text: str) -> date:
    """The first day of the month named ``YYYY-MM`` (``2026-11``); a clear error otherwise."""
    try:
        return datetime.strptime(text, "%Y-%m").date()
    except (TypeError, ValueError):
        raise ValueError(f"{text!r} is not a month: use YYYY-MM, e.g. 2026-11") from None


def month_start(moment: date | datetime) -> date:
    """The first day of the UTC month holding ``moment``."""
    if isinstance(moment, datetime) and moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return date(moment.year, moment.month, 1)


def add_months(moment: date | datetime, months: int) -> date:
    """The first day of the month ``months`` after (or before) the month of ``moment``."""
    start = month_start(moment)
    index = start.year * 12 + start.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def instant(day: date) -> datetime:
    """Midnight UTC at the start of ``day``."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def month_bounds(moment: date | datetime) -> tuple[datetime, datetime]:
    """``[first instant of the month, first instant of the next month)`` in UTC."""
    start = month_start(moment)
    return instant(start), instant(add_months(start, 1))


def months_between(first: date, last: date) -> list[date]:
    """Every month from the month of ``first`` to the month of ``last``, both included."""
    months, month = [], month_start(first)
    while month <= month_start(last):
        months.append(month)
        month = add_months(month, 1)
    return months


def usage_cutoff(month: date, grace_hours: int) -> datetime:
    """When a month can be billed: its end plus the grace period for late events."""
    return month_bounds(month)[1] + timedelta(hours=grace_hours)


def last_billable_month(now: datetime, grace_hours: int) -> date:
    """The latest closed month whose grace period is over at ``now``."""
    month = add_months(now, -1)
    while usage_cutoff(month, grace_hours) > now:
        month = add_months(month, -1)
    return month
