"""What waits in the tenant streams: which streams exist, how many entries they hold and how
old the oldest one is. The loader deletes what it has loaded, so every entry left is usage not
yet in Postgres; ``/metrics`` reports :func:`stream_backlog` at scrape time (loader lag and
stream length) and the loader reports :func:`oldest_age` after each run."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, text

from ingestion import keys


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entry_ms(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


def stream_keys(redis, engine: Engine | None, *, prefix: str, tenants: Iterable[str] | None = None):
    """The tenant streams that exist: the registry set plus every tenant in Postgres."""
    if tenants is not None:
        candidates = set(tenants)
    else:
        candidates = {_text(t) for t in redis.smembers(keys.streams_registry(prefix))}
        if engine is not None:
            with engine.connect() as conn:
                candidates.update(
                    r[0] for r in conn.execute(text("select tenant_id from meterline.tenants"))
                )
    ordered = sorted(candidates)
    pipe = redis.pipeline(transaction=False)
    for tenant in ordered:
        pipe.exists(keys.stream_key(prefix, tenant))
    found = pipe.execute() if ordered else []
    return [keys.stream_key(prefix, t) for t, ok in zip(ordered, found, strict=True) if ok]


@dataclass(frozen=True)
class StreamBacklog:
    """What waits in the tenant streams: loaded entries are deleted, so every entry left is
    not yet in Postgres."""

    streams: int
    entries: int
    oldest_age_seconds: float  # loader lag: age of the oldest entry not yet loaded (0: none)


def stream_backlog(redis, engine: Engine | None, *, prefix: str) -> StreamBacklog:
    """The stream backlog now (a few Redis calls; what ``/metrics`` reports at scrape time)."""
    streams = stream_keys(redis, engine, prefix=prefix)
    if not streams:
        return StreamBacklog(0, 0, 0.0)
    pipe = redis.pipeline(transaction=False)
    for stream in streams:
        pipe.xlen(stream)
    entries = sum(pipe.execute())
    return StreamBacklog(len(streams), entries, oldest_age(redis, streams))


def oldest_age(redis, streams: list[str]) -> float:
    """Acknowledged entries are deleted, so whatever is left is pending or not yet read."""
    pipe = redis.pipeline(transaction=False)
    for stream in streams:
        pipe.xrange(stream, count=1)
    oldest = [_entry_ms(_text(r[0][0])) for r in pipe.execute() if r]
    if not oldest:
        return 0.0
    return max(0.0, redis_seconds(redis) - min(oldest) / 1000)


def redis_seconds(redis) -> float:
    seconds, micros = redis.time()
    return seconds + micros / 1e6
