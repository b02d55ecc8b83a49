"""One loader batch into Postgres, in one transaction: every row Postgres accepts, and a dead
letter for every row it refuses.

The fast path is one COPY + ``INSERT ... ON CONFLICT DO NOTHING`` of the whole batch, in a
savepoint. When Postgres refuses it for what a row contains (:data:`REFUSED`), the batch is
split into its COPY lines and bisected, each half in its own savepoint: halves that load
stay loaded, a single line that fails becomes a dead letter with Postgres's reason. So k bad
rows among n cost about 2k·log2(n) extra statements, and a good batch costs one savepoint.
A failure that is not about a row (the connection dropped, the server went away) is raised
as it is: nothing is committed, nothing is acknowledged, and the next run tries again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from ingestion import dead_letters
from ingestion.load_rows import REFUSED, Line, copy_insert, ensure_temp_table, refusal_reason
from meterline.core import clock

CrashHook = Callable[[str], None]


@dataclass(frozen=True)
class Source:
    """One stream entry's COPY rows."""

    stream: str
    entry_id: str
    payload: bytes


@dataclass(frozen=True)
class BatchResult:
    inserted: int
    dead_lettered: int


def split_lines(source: Source) -> list[Line]:
    """The entry's rows, one :class:`Line` each (1-based), each ending in a newline."""
    pieces = source.payload.split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()
    return [
        Line(source.stream, source.entry_id, n, piece + b"\n")
        for n, piece in enumerate(pieces, start=1)
    ]


def _bisect(conn, cur, lines: list[Line], loaded_at, refused: list[tuple[Line, str]]) -> int:
    """Insert ``lines``, setting aside each one Postgres refuses; rows inserted."""
    try:
        with conn.transaction():
            return copy_insert(cur, (line.data for line in lines), loaded_at)
    except REFUSED as exc:
        if len(lines) == 1:
            refused.append((lines[0], refusal_reason(exc)))
            return 0
    mid = len(lines) // 2
    return _bisect(conn, cur, lines[:mid], loaded_at, refused) + _bisect(
        conn, cur, lines[mid:], loaded_at, refused
    )


def load_batch(
    engine: Engine,
    sources: Sequence[Source],
    malformed: Sequence[tuple[Line, str]] = (),
    crash_hook: CrashHook | None = None,
    request_ids: Mapping[tuple[str, str], str] | None = None,
) -> BatchResult:
    """Insert the ``sources``' rows and record dead letters (the refused rows and the
    ``malformed`` entries) in one transaction, then commit. ``crash_hook("before_commit")``
    runs just before the commit (tests crash there). ``request_ids`` ((stream, entry id) ->
    request id) go with the dead letters (:func:`ingestion.dead_letters.record`)."""
    refused: list[tuple[Line, str]] = list(malformed)
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        # loaded_at is a business instant (usage loaded after an invoice's cutoff is late
        # usage), so it comes from Meterline's clock, like the cutoff it is compared with.
        loaded_at = clock.now()
        inserted = 0
        with conn.cursor() as cur:
            ensure_temp_table(cur)  # opens the transaction: what follows are savepoints
            if sources:
                try:
                    with conn.transaction():
                        payloads = (s.payload for s in sources)
                        inserted = copy_insert(cur, payloads, loaded_at, empty_first=False)
                except REFUSED:
                    lines = [line for s in sources for line in split_lines(s)]
                    inserted = _bisect(conn, cur, lines, loaded_at, refused)
            dead_letters.record(cur, refused, request_ids)
        if crash_hook:
            crash_hook("before_commit")
        conn.commit()
    except BaseException:
        _discard(raw)
        raise
    finally:
        raw.close()
    return BatchResult(inserted, len(refused))


def _discard(raw) -> None:
    """Roll back; a connection that cannot even do that (the server killed it) is thrown
    away rather than returned to the pool, and never hides the original error."""
    try:
        raw.rollback()
    except Exception:
        raw.invalidate()
