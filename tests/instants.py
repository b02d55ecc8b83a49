"""Awkward instants the suite runs date-dependent behaviour at (UTC).

A billing product lives on month ends, year ends and leap days: tests that depend on "now" are
parametrized over these, with the clock frozen by time-machine (``frozen_at``).
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime

INSTANTS = {
    "year-end": datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
    "leap-day": datetime(2028, 2, 29, 12, 0, 0, tzinfo=UTC),
    "last-second-of-a-31-day-month": datetime(2027, 1, 31, 23, 59, 59, tzinfo=UTC),
    "first-second-of-a-month": datetime(2027, 3, 1, 0, 0, 0, tzinfo=UTC),
    "end-of-a-28-day-february": datetime(2027, 2, 28, 23, 59, 30, tzinfo=UTC),
}

PARAMS = {"argvalues": list(INSTANTS.values()), "ids": list(INSTANTS)}


@contextmanager
def frozen_at(instant: datetime):
    """The whole interpreter at ``instant`` (datetime, date and time.time; monotonic clocks
    keep running, so timeouts still work)."""
    import time_machine

    with time_machine.travel(instant, tick=False):
        yield instant


@contextmanager
def ticking_from(instant: datetime):
    """The whole interpreter's clock restarted at ``instant`` and running on."""
    import time_machine

    with time_machine.travel(instant, tick=True):
        yield instant
