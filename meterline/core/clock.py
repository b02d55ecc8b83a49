"""The one clock: every business "now" in Meterline comes from here.

Billing windows, grace cutoffs, the open month, alert periods, link and session expiry and the
``as_of`` var handed to dbt all read :func:`now`. Nothing else calls ``datetime.now()``,
``date.today()`` or ``time.time()`` for an instant that matters; durations are measured with
``time.monotonic()``/``time.perf_counter()``, which never feed a date.

Setting it:

- :func:`frozen` stops the clock at one instant inside a ``with`` block (backfills, replays).
- Tests freeze or shift the whole interpreter with ``time-machine`` (Dagster's own clock
  follows too); :func:`now` reads the system clock, so it follows.
- A whole process tree, embedded PostgreSQL and Redis included, can be moved with libfaketime
  (``faketime '2028-02-29 23:58:00' meterline demo``).

SQL never calls ``now()`` for a business rule: dbt gets this instant as the ``as_of`` var and
Python queries bind it as a parameter. (``loaded_at`` stays the database's own clock: it is a
load watermark compared only with other database timestamps.)

All instants are timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime

_frozen: datetime | None = None


def aware(value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def now() -> datetime:
    """The current instant, UTC, as Meterline sees it."""
    if _frozen is not None:
        return _frozen
    return datetime.now(UTC)


def today() -> date:
    """The current UTC date."""
    return now().date()


def timestamp() -> float:
    """The current instant as Unix seconds (signed links, sessions, webhook timestamps)."""
    return now().timestamp()


def timestamp_ms() -> int:
    return int(now().timestamp() * 1000)


def iso(value: datetime | None = None) -> str:
    """``value`` (default: now) as ISO 8601 with a ``Z``: the form dbt's ``as_of`` var takes."""
    return aware(value or now()).isoformat().replace("+00:00", "Z")


@contextmanager
def frozen(at: datetime) -> Iterator[datetime]:
    """Stop the clock at ``at`` inside the block (nests; restores the previous state)."""
    global _frozen
    previous = _frozen
    _frozen = aware(at)
    try:
        yield _frozen
    finally:
        _frozen = previous
