"""``raw.usage_dead_letters``: stream rows the loader could not load, kept with the reason.

The loader writes a dead letter in the same transaction as the batch's good rows (so a crash
leaves both or neither), and only then acknowledges the stream entries: one bad row never
blocks the others. ``line_no`` is the row's 1-based line in its stream entry, or 0 when the
entry itself was malformed (no ``rows`` field). After fixing the cause (a schema change, a
corrected payload), :func:`replay` loads each letter ``ON CONFLICT`` on the event key and
deletes it in the same transaction, so a replayed event is never counted twice; a letter
that still fails stays, with its new reason and one more attempt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, text

from ingestion.load_rows import REFUSED, Line, copy_insert, ensure_temp_table, refusal_reason
from meterline.core import clock

TABLE = "raw.usage_dead_letters"
_MAX_KEY_CHARS = 200  # tenant_id / event_id shown in listings (the payload keeps every byte)

_UPSERT = f"""
insert into {TABLE} (stream, entry_id, line_no, tenant_id, event_id, payload, reason,
                     first_seen, last_attempt_at, attempts)
values (%(stream)s, %(entry_id)s, %(line_no)s, %(tenant_id)s, %(event_id)s, %(payload)s,
        %(reason)s, %(at)s, %(at)s, 1)
on conflict (stream, entry_id, line_no) do update
set reason = excluded.reason, last_attempt_at = excluded.last_attempt_at,
    attempts = {TABLE}.attempts + 1
"""


def _field(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    value = raw.decode("utf-8", errors="replace").replace("\x00", "\\0")
    return value[:_MAX_KEY_CHARS]


def _keys(line: Line) -> tuple[str | None, str | None]:
    """Tenant and event id as far as the raw row tells them (for listings only)."""
    if line.line_no == 0:
        return None, None
    parts = line.data.rstrip(b"\n").split(b"\t", 2)
    return _field(parts[0]), _field(parts[1] if len(parts) > 1 else None)


def record(
    cur,
    refused: Sequence[tuple[Line, str]],
    request_ids: Mapping[tuple[str, str], str] | None = None,
) -> None:
    """Upsert dead letters with ``cur`` (a psycopg cursor, inside the loader's transaction).
    ``request_ids`` ((stream, entry id) -> request id of the batch that wrote the entry) are
    appended to the reason as ``[request_id=...]``, so a dead letter leads back to the
    request's log line."""
    if not refused:
        return
    at = clock.now()
    params = []
    for line, reason in refused:
        tenant_id, event_id = _keys(line)
        rid = (request_ids or {}).get((line.stream, line.entry_id))
        if rid:
            reason = f"{reason[:1900]} [request_id={rid}]"
        params.append(
            {
                "stream": line.stream,
                "entry_id": line.entry_id,
                "line_no": line.line_no,
                "tenant_id": tenant_id,
                "event_id": event_id,
                "payload": line.data,
                "reason": reason[:2000],
                "at": at,
            }
        )
    cur.executemany(_UPSERT, params)


@dataclass(frozen=True)
class DeadLetter:
    dead_letter_id: int
    stream: str
    entry_id: str
    line_no: int
    tenant_id: str | None
    event_id: str | None
    payload: bytes
    reason: str
    first_seen: datetime
    last_attempt_at: datetime
    attempts: int

    def payload_text(self, limit: int = 160) -> str:
        shown = self.payload.rstrip(b"\n").decode("utf-8", errors="backslashreplace")
        return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def list_dead_letters(engine: Engine, ids: Sequence[int] | None = None) -> list[DeadLetter]:
    """Every dead letter (or those ``ids``), oldest first."""
    where = "where dead_letter_id = any(:ids)" if ids is not None else ""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "select dead_letter_id, stream, entry_id, line_no, tenant_id, event_id, payload, "
                "reason, first_seen, last_attempt_at, attempts "
                f"from {TABLE} {where} order by dead_letter_id"
            ),
            {"ids": list(ids)} if ids is not None else {},
        ).all()
    return [DeadLetter(*(bytes(v) if isinstance(v, memoryview) else v for v in r)) for r in rows]


def count_dead_letters(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"select count(*) from {TABLE}")).scalar_one()


@dataclass
class ReplayResult:
    loaded: int = 0  # rows now in raw.usage_events
    duplicates: int = 0  # already there (loaded some other way): not counted again
    still_failing: list[tuple[int, str]] = field(default_factory=list)  # (id, new reason)
    missing: list[int] = field(default_factory=list)  # ids asked for that do not exist


_MALFORMED_ENTRY = (
    "a stream entry without a 'rows' field has nothing to load; "
    "inspect it and remove it with `meterline dead-letters discard ID`"
)


def replay(engine: Engine, ids: Sequence[int] | None = None) -> ReplayResult:
    """Load the dead letters ``ids`` (None: all) into ``raw.usage_events``.

    Each letter is tried alone in a savepoint: loaded (``ON CONFLICT DO NOTHING`` on the event
    key) and deleted together, or kept with its new reason and one more attempt. Letters are
    locked (``FOR UPDATE SKIP LOCKED``), so two replays never load one letter twice."""
    result = ReplayResult()
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        with conn.cursor() as cur:
            ensure_temp_table(cur)
            cur.execute(
                f"select dead_letter_id, stream, entry_id, line_no, payload from {TABLE} "
                "where %(ids)s::bigint[] is null or dead_letter_id = any(%(ids)s::bigint[]) "
                "order by dead_letter_id for update skip locked",
                {"ids": list(ids) if ids is not None else None},
            )
            letters = cur.fetchall()
            if ids is not None:
                found = {r[0] for r in letters}
                result.missing = [i for i in ids if i not in found]
            loaded_at = clock.now()
            for letter_id, stream, entry_id, line_no, payload in letters:
                reason = _replay_one(conn, cur, Line(stream, entry_id, line_no, bytes(payload)),
                                     loaded_at, result)  # fmt: skip
                if reason is None:
                    cur.execute(f"delete from {TABLE} where dead_letter_id = %s", (letter_id,))
                else:
                    result.still_failing.append((letter_id, reason))
                    cur.execute(
                        f"update {TABLE} set reason = %s, attempts = attempts + 1, "
                        "last_attempt_at = %s where dead_letter_id = %s",
                        (reason[:2000], clock.now(), letter_id),
                    )
        conn.commit()
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()
    return result


def _replay_one(conn, cur, line: Line, loaded_at, result: ReplayResult) -> str | None:
    """Load one letter in a savepoint; its refusal reason, or None when it is in Postgres."""
    if line.line_no == 0:
        return _MALFORMED_ENTRY
    data = line.data if line.data.endswith(b"\n") else line.data + b"\n"
    try:
        with conn.transaction():
            inserted = copy_insert(cur, [data], loaded_at)
    except REFUSED as exc:
        return refusal_reason(exc)
    result.loaded += inserted
    result.duplicates += 1 - inserted
    return None


def discard(engine: Engine, ids: Sequence[int]) -> int:
    """Delete dead letters for good (after deciding they are not usage). Returns how many."""
    with engine.begin() as conn:
        return conn.execute(
            text(f"delete from {TABLE} where dead_letter_id = any(:ids)"), {"ids": list(ids)}
        ).rowcount
