"""Stream -> Postgres: exactly once in ``raw.usage_events``.

Each tenant's accepted events sit in its stream ``<prefix>:{t}:events`` as entries of
COPY-ready rows. :func:`load_stream` drains them with the consumer group ``loader``:

1. reclaim entries other consumers left pending for longer than ``reclaim_idle_ms``
   (a crashed run) with XAUTOCLAIM, then re-read this consumer's own pending entries;
2. read new entries with XREADGROUP in bounded batches (about ``batch_size`` rows);
3. COPY the rows into a temporary table and ``INSERT ... ON CONFLICT (tenant_id, event_id)
   DO NOTHING`` into ``raw.usage_events``; a row Postgres refuses (or a malformed entry)
   goes to ``raw.usage_dead_letters`` with the reason instead, in the same transaction
   (:mod:`ingestion.load_batch`); commit;
4. only then XDEL the entries and XACK them (exactly the loaded ids, so nothing
   unacknowledged is ever trimmed).

A crash before the commit leaves the entries pending and Postgres untouched; a crash after the
commit and before the XDEL leaves them pending too, and the next run inserts nothing new for
them (the primary key turns them into ``duplicates_skipped``) before acknowledging. A crash
between XDEL and XACK leaves pending ids whose data is gone: the next run reads them back
empty and acknowledges them. (The other order would leave acknowledged entries in the stream
that no consumer is ever given again.) Either way, once the next run finishes every event is
in Postgres exactly once and the stream and its pending list are empty.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis.exceptions import ResponseError
from sqlalchemy import Engine, text

from ingestion import keys
from ingestion.backlog import oldest_age, redis_seconds, stream_keys
from ingestion.load_batch import CrashHook, Source, load_batch
from ingestion.load_rows import Line, copy_insert, ensure_temp_table
from meterline.core import clock
from meterline.core.telemetry import tracing
from meterline.core.telemetry.logs import get_logger

STREAMS_PER_READ = 64
MAX_LINKS = 128  # span links per batch span (the SDK's default limit)
MAX_LOGGED_REQUEST_IDS = 100  # request ids named in a batch's log line

log = get_logger("meterline.loader")


@dataclass
class LoadStats:
    rows_loaded: int = 0
    duplicates_skipped: int = 0
    entries_acked: int = 0
    batches: int = 0
    streams: int = 0
    reclaimed: int = 0
    dead_lettered: int = 0  # rows (or malformed entries) set aside in raw.usage_dead_letters
    lag_seconds: float = 0.0  # worst delay stream append -> Postgres commit among loaded rows
    oldest_pending_seconds: float = 0.0  # age of the oldest entry still in a stream afterwards
    elapsed_seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        rows = self.rows_loaded + self.duplicates_skipped + self.dead_lettered
        return rows / self.elapsed_seconds if self.elapsed_seconds else 0.0


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entry_ms(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


def _ensure_groups(redis, streams: list[str]) -> None:
    pipe = redis.pipeline(transaction=False)
    for stream in streams:
        pipe.xgroup_create(stream, keys.GROUP, id="0")
    for result in pipe.execute(raise_on_error=False):
        if isinstance(result, Exception) and "BUSYGROUP" not in str(result):
            raise result


def _reclaim(redis, streams: list[str], consumer: str, idle_ms: int) -> int:
    """Move entries other consumers left pending (idle >= idle_ms) to ``consumer``."""
    claimed = 0
    for stream in streams:
        start = "0-0"
        while True:
            try:
                reply = redis.xautoclaim(
                    stream, keys.GROUP, consumer, idle_ms, start_id=start, count=1000
                )
            except ResponseError as exc:  # pragma: no cover - stream vanished meanwhile
                if "NOGROUP" in str(exc):
                    break
                raise
            start = _text(reply[0])
            # Redis >= 7 also returns (and drops from the pending list) the ids whose data a
            # crashed run had already deleted; Redis 6.2 claims them and we acknowledge them.
            claimed += len(reply[1]) + (len(reply[2]) if len(reply) > 2 else 0)
            if start == "0-0":
                break
    return claimed


def _field(fields, name: str):
    return fields.get(name.encode(), fields.get(name))


def _row_count(fields, payload: bytes) -> int:
    """The entry's ``n`` (rows), or its line count when ``n`` is missing or not a number."""
    try:
        return int(_field(fields, "n"))
    except (TypeError, ValueError):
        return payload.count(b"\n")


def _describe_fields(fields) -> bytes:
    return repr({_text(k): v for k, v in fields.items()}).encode()


class _Batch:
    def __init__(self) -> None:
        self.sources: list[Source] = []
        self.malformed: list[tuple[Line, str]] = []
        self.rows = 0
        self.entries: dict[str, list[str]] = {}
        self.oldest_ms: int | None = None
        self.request_ids: dict[tuple[str, str], str] = {}  # (stream, entry id) -> request id
        self.traceparents: list[str] = []

    def add(self, stream: str, entry_id: str, fields) -> None:
        self.entries.setdefault(stream, []).append(entry_id)
        ms = _entry_ms(entry_id)
        if self.oldest_ms is None or ms < self.oldest_ms:
            self.oldest_ms = ms
        if not fields:  # pending entry whose data was deleted: acknowledge it, nothing to load
            return
        rid, tp = _field(fields, "rid"), _field(fields, "tp")
        if rid:
            self.request_ids[(stream, entry_id)] = _text(rid)
        if tp:
            self.traceparents.append(_text(tp))
        payload = _field(fields, "rows")
        if isinstance(payload, str):
            payload = payload.encode()
        if not isinstance(payload, bytes):
            names = ", ".join(sorted(_text(k) for k in fields))
            reason = f"stream entry has no 'rows' field (fields: {names})"
            self.malformed.append((Line(stream, entry_id, 0, _describe_fields(fields)), reason))
            return
        if payload:
            self.sources.append(Source(stream, entry_id, payload))
            self.rows += _row_count(fields, payload)

    def __len__(self) -> int:
        return sum(len(ids) for ids in self.entries.values())

    def links(self) -> list:
        found = (tracing.link_from(tp) for tp in self.traceparents[:MAX_LINKS])
        return [link for link in found if link is not None]

    def logged_request_ids(self) -> list[str]:
        return sorted(set(self.request_ids.values()))[:MAX_LOGGED_REQUEST_IDS]


def insert_rows(engine: Engine, payloads: Iterable[bytes]) -> int:
    """COPY COPY-text rows into ``raw.usage_events`` (``ON CONFLICT DO NOTHING``) and commit;
    the number of rows actually inserted. For rows already validated (the importer): a row
    Postgres refuses fails the whole call."""
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        with conn.cursor() as cur:
            ensure_temp_table(cur)
            inserted = copy_insert(cur, payloads, clock.now(), empty_first=False)
        conn.commit()
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()
    return inserted


def _flush(redis, engine: Engine, batch: _Batch, stats: LoadStats, crash_hook: CrashHook | None):
    if not batch.entries:
        return
    with tracing.tracer().start_as_current_span(
        "loader batch",
        links=batch.links(),
        attributes={"meterline.entries": len(batch), "meterline.rows": batch.rows},
    ) as span:
        result = load_batch(
            engine, batch.sources, batch.malformed, crash_hook, request_ids=batch.request_ids
        )
        if crash_hook:
            crash_hook("after_commit")
        committed = redis_seconds(redis)  # stream ids carry Redis's clock: compare like with like
        # XDEL before XACK: a crash in between leaves pending ids without data, which the next
        # run reads back empty and acknowledges; acknowledged-but-undeleted entries would stay.
        _for_each_chunk(redis, batch, lambda pipe, stream, ids: pipe.xdel(stream, *ids))
        if crash_hook:
            crash_hook("after_delete")
        _for_each_chunk(redis, batch, lambda pipe, stream, ids: pipe.xack(stream, keys.GROUP, *ids))
        span.set_attribute("meterline.rows_inserted", result.inserted)
        span.set_attribute("meterline.dead_lettered", result.dead_lettered)
    log.info(
        "loader batch",
        entries=len(batch),
        rows=batch.rows,
        inserted=result.inserted,
        dead_lettered=result.dead_lettered,
        request_ids=batch.logged_request_ids(),
    )
    stats.rows_loaded += result.inserted
    stats.dead_lettered += result.dead_lettered
    refused_rows = result.dead_lettered - len(batch.malformed)
    stats.duplicates_skipped += max(0, batch.rows - result.inserted - refused_rows)
    stats.entries_acked += len(batch)
    stats.batches += 1
    if batch.oldest_ms is not None:
        stats.lag_seconds = max(stats.lag_seconds, committed - batch.oldest_ms / 1000)


def _for_each_chunk(redis, batch: _Batch, command) -> None:
    pipe = redis.pipeline(transaction=False)
    for stream, ids in batch.entries.items():
        for i in range(0, len(ids), 1000):
            command(pipe, stream, ids[i : i + 1000])
    pipe.execute()


def _drain(
    redis,
    engine: Engine,
    streams: list[str],
    *,
    consumer: str,
    start_id: str,
    batch_size: int,
    max_entries: int | None,
    stats: LoadStats,
    crash_hook: CrashHook | None,
) -> None:
    """Read (own pending from ``0`` or new with ``>``) until the streams are drained."""
    positions = dict.fromkeys(streams, start_id)
    batch = _Batch()
    # Rows per entry vary (one API event or a whole SDK batch): start with one entry per
    # stream, then read about what fills the batch, so a batch overshoots batch_size by at
    # most one entry per stream read.
    per_entry_rows = float(batch_size)
    while positions:
        if max_entries is not None and stats.entries_acked + len(batch) >= max_entries:
            break
        chunk = dict(list(positions.items())[:STREAMS_PER_READ])
        room = max(0, batch_size - batch.rows)
        count = max(1, min(1000, int(room / per_entry_rows / len(chunk))))
        if max_entries is not None:
            count = max(1, min(count, max_entries - stats.entries_acked - len(batch)))
        reply = redis.xreadgroup(keys.GROUP, consumer, chunk, count=count)
        got = {(_text(s)): entries for s, entries in (reply or [])}
        for stream in chunk:
            entries = got.get(stream) or []
            if not entries:
                del positions[stream]  # drained (pending phase: no more own pending entries)
                continue
            for entry_id, fields in entries:
                batch.add(stream, _text(entry_id), fields)
            if start_id != ">":
                positions[stream] = _text(entries[-1][0])
        if len(batch) and batch.rows:
            per_entry_rows = max(1.0, batch.rows / len(batch))
        if batch.rows >= batch_size:
            _flush(redis, engine, batch, stats, crash_hook)
            batch = _Batch()
    _flush(redis, engine, batch, stats, crash_hook)


def load_stream(
    redis,
    engine: Engine,
    *,
    prefix: str,
    consumer: str = "loader",
    batch_size: int = 20000,
    max_entries: int | None = None,
    reclaim_idle_ms: int = 60000,
    tenants: Iterable[str] | None = None,
    crash_hook: CrashHook | None = None,
) -> LoadStats:
    """Drain the tenant streams into ``raw.usage_events``, exactly once.

    ``max_entries`` bounds the stream entries handled in this run (None: until drained).
    ``tenants`` limits the run to those tenants' streams. ``crash_hook(stage)`` is called
    with ``"before_commit"``, ``"after_commit"`` and ``"after_delete"`` (between XDEL and
    XACK); tests raise or exit there to simulate a crash at that point.
    """
    started = time.perf_counter()
    stats = LoadStats()
    streams = stream_keys(redis, engine, prefix=prefix, tenants=tenants)
    stats.streams = len(streams)
    if streams:
        _ensure_groups(redis, streams)
        stats.reclaimed = _reclaim(redis, streams, consumer, reclaim_idle_ms)
        common = {
            "consumer": consumer,
            "batch_size": batch_size,
            "max_entries": max_entries,
            "stats": stats,
            "crash_hook": crash_hook,
        }
        _drain(redis, engine, streams, start_id="0", **common)
        _drain(redis, engine, streams, start_id=">", **common)
        stats.oldest_pending_seconds = oldest_age(redis, streams)
    stats.elapsed_seconds = time.perf_counter() - started
    return stats


# --- counter snapshots --------------------------------------------------------------------
def snapshot_counters(
    redis, engine: Engine, *, prefix: str, now: datetime | None = None, hours: int = 48
) -> int:
    """Write the live Redis counters into ``raw.counter_snapshots``: per tenant and meter the
    current and previous month, and the last ``hours`` hours. Returns rows written."""
    from ingestion.usage import month_start, read_counters

    now = (now or clock.now()).astimezone(UTC)
    snapshot_at = now.replace(microsecond=0)
    this_month = month_start(now)
    previous_month = month_start(this_month - timedelta(days=1))
    hour0 = now.replace(minute=0, second=0, microsecond=0)
    periods = [("month", this_month), ("month", previous_month)] + [
        ("hour", hour0 - timedelta(hours=h)) for h in range(hours)
    ]
    with engine.connect() as conn:
        tenants = [r[0] for r in conn.execute(text("select tenant_id from meterline.tenants"))]
        meters = {
            r[0]: r[1]
            for r in conn.execute(text("select meter, aggregation from meterline.meters"))
        }
    rows: list[dict] = []
    for tenant in tenants:
        counters = read_counters(
            redis, prefix=prefix, tenant_id=tenant, meters=meters, periods=periods
        )
        for (kind, start, meter), (quantity, refused) in counters.items():
            if quantity == 0 and refused == 0:
                continue
            rows.append(
                {
                    "snapshot_at": snapshot_at,
                    "tenant_id": tenant,
                    "meter": meter,
                    "period_kind": kind,
                    "period_start": start,
                    "quantity": quantity,
                    "refused": refused,
                }
            )
    if rows:
        with engine.begin() as conn:
            conn.execute(
                text(
                    """
                    insert into raw.counter_snapshots
                        (snapshot_at, tenant_id, meter, period_kind, period_start, quantity, refused)
                    values (:snapshot_at, :tenant_id, :meter, :period_kind, :period_start,
                            :quantity, :refused)
                    on conflict do nothing
                    """
                ),
                rows,
            )
    return len(rows)
