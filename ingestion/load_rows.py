"""COPY-text rows into ``raw.usage_events``: the statements the loader, the importer and the
dead-letter replay share, and which Postgres refusals mean "this row is bad" (as opposed to
"the database is unreachable", which must never turn a good row into a dead letter)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
from psycopg import errors as pg_errors

# A row Postgres refuses for what it contains: bad text for a type (22P02), a number too big
# for numeric(24,6) (22003), a timestamp out of range (22008), malformed COPY text (22P04),
# invalid UTF-8 or a NUL (22021), NULL in a NOT NULL column (23502), a key too long for
# the primary key's index (54000). Connection and server failures are not in this list.
REFUSED = (psycopg.DataError, psycopg.IntegrityError, pg_errors.ProgramLimitExceeded)

_TEMP_TABLE = """
create temp table if not exists ml_load_rows (
    tenant_id text, event_id text, meter text, value numeric,
    occurred_us bigint, dimensions jsonb, received_us bigint
) on commit delete rows
"""
_INSERT = """
insert into raw.usage_events
    (tenant_id, event_id, meter, value, occurred_at, dimensions, received_at, loaded_at)
select tenant_id, event_id, meter, value,
       timestamptz 'epoch' + occurred_us * interval '1 microsecond',
       dimensions,
       timestamptz 'epoch' + received_us * interval '1 microsecond',
       %(loaded_at)s
from ml_load_rows
on conflict (tenant_id, event_id) do nothing
"""


@dataclass(frozen=True)
class Line:
    """Bytes from one stream entry: one COPY row (``line_no`` >= 1), or the whole entry
    (``line_no`` 0) when the entry itself is malformed."""

    stream: str
    entry_id: str
    line_no: int
    data: bytes


def ensure_temp_table(cur) -> None:
    cur.execute(_TEMP_TABLE)


def copy_insert(cur, payloads: Iterable[bytes], loaded_at, *, empty_first: bool = True) -> int:
    """COPY ``payloads`` into the temp table and insert them ``ON CONFLICT DO NOTHING``; the
    number of rows actually inserted. Run it inside a savepoint. ``empty_first=False`` only
    for the first statement of a transaction (the table is emptied at every commit)."""
    if empty_first:
        cur.execute("truncate ml_load_rows")
    with cur.copy("copy ml_load_rows from stdin") as copy:
        for payload in payloads:
            copy.write(payload)
    cur.execute(_INSERT, {"loaded_at": loaded_at})
    return cur.rowcount


_COPY_CONTEXT = re.compile(r"^COPY ml_load_rows, line \d+(, |: )")


def refusal_reason(exc: psycopg.Error) -> str:
    """One readable line: SQLSTATE, Postgres's message, its detail and the column when known
    (``22P02 invalid input syntax for type json: Token "x" is invalid. (column dimensions:
    "{x")``)."""
    diag = exc.diag
    primary = diag.message_primary or str(exc).splitlines()[0]
    reason = f"{diag.sqlstate or type(exc).__name__} {primary}"
    if diag.message_detail:
        reason += f": {diag.message_detail}"
    for context in (diag.context or "").splitlines():
        if context.startswith("COPY ml_load_rows"):  # names the column and echoes the value
            reason += f" ({_COPY_CONTEXT.sub('', context)})"
    return reason[:2000]
