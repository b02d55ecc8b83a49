"""The Redis half of a backup: every key under Meterline's prefix, with ``DUMP`` and its
expiry, written as JSON Lines; restored with ``RESTORE ... ABSTTL``.

Per-key ``DUMP`` works on a shared Redis and on Redis Cluster (no ``BGSAVE`` of somebody
else's data). What lives there and is in no database: the live counters (month, hour,
unique-user sketches), the dedupe markers (``id:<event id>``, so a replayed event is still a
duplicate after a restore), the event streams not yet loaded, the token buckets and the
cached plan terms. Expiries are kept as absolute Redis times (``TIME`` + ``PTTL``), so a
dedupe marker still expires when it would have; one that expired while the backup sat on
disk is not brought back.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

from meterline.core.backup.pg_tools import BackupError

BATCH = 500


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _pattern(prefix: str) -> str:
    """A SCAN pattern matching ``<prefix>:*`` literally, whatever characters the prefix has."""
    escaped = "".join("\\" + c if c in "*?[]\\" else c for c in prefix)
    return f"{escaped}:*"


def keys_under(redis, prefix: str) -> list[str]:
    return sorted({_text(k) for k in redis.scan_iter(match=_pattern(prefix), count=1000)})


def _redis_ms(redis) -> int:
    seconds, micros = redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


def stream_positions(redis, prefix: str) -> dict[str, str]:
    """Every stream under the prefix -> its last generated entry id: if this changes while a
    backup runs, something recorded events meanwhile."""
    streams = sorted(
        {_text(k) for k in redis.scan_iter(match=_pattern(prefix), count=1000, _type="stream")}
    )
    pipe = redis.pipeline(transaction=False)
    for stream in streams:
        pipe.xinfo_stream(stream)
    infos = pipe.execute() if streams else []
    return {s: _text(info["last-generated-id"]) for s, info in zip(streams, infos, strict=True)}


def snapshot_keys(redis, prefix: str, path: Path) -> dict:
    """Write every key under ``prefix`` to ``path``; return the manifest's Redis part."""
    names = keys_under(redis, prefix)
    written = 0
    with path.open("w", encoding="utf-8") as out:
        for start in range(0, len(names), BATCH):
            chunk = names[start : start + BATCH]
            pipe = redis.pipeline(transaction=False)
            for name in chunk:
                pipe.pttl(name)
                pipe.dump(name)
            replies = pipe.execute()
            now_ms = _redis_ms(redis)
            for i, name in enumerate(chunk):
                pttl, payload = replies[2 * i], replies[2 * i + 1]
                if payload is None:  # expired or deleted between SCAN and DUMP
                    continue
                record = {
                    "key": name[len(prefix) + 1 :],
                    "expire_at_ms": now_ms + pttl if pttl and pttl > 0 else 0,
                    "dump": base64.b64encode(payload).decode(),
                }
                out.write(json.dumps(record, separators=(",", ":")) + "\n")
                written += 1
    info = redis.info("server")
    return {"version": info.get("redis_version"), "prefix": prefix, "keys": written}


def _records(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise BackupError(f"{path.name} line {number} is not JSON ({exc.msg})") from exc


def restore_keys(redis, prefix: str, path: Path) -> int:
    """Restore the keys of ``path`` under ``prefix`` (which must hold no key yet); returns
    how many were restored (an expired one is skipped)."""
    present = keys_under(redis, prefix)
    if present:
        raise BackupError(
            f"Redis already holds {len(present)} key(s) under prefix '{prefix}' (e.g. "
            f"{present[0]}); restore only into an empty prefix: delete them first, or set "
            "METERLINE_REDIS_PREFIX to an unused one"
        )
    restored = 0
    batch: list[dict] = []

    def flush() -> None:
        nonlocal restored
        pipe = redis.pipeline(transaction=False)
        now_ms = _redis_ms(redis)
        live = [r for r in batch if not r["expire_at_ms"] or r["expire_at_ms"] > now_ms]
        for r in live:
            pipe.restore(f"{prefix}:{r['key']}", r["expire_at_ms"], base64.b64decode(r["dump"]),
                          absttl=bool(r["expire_at_ms"]))  # fmt: skip
        for r, reply in zip(live, pipe.execute(raise_on_error=False), strict=True):
            if isinstance(reply, Exception):
                raise BackupError(
                    f"Redis refused key {prefix}:{r['key']}: {reply} (a DUMP restores only "
                    "into the same or a newer Redis version than the one in the manifest)"
                )
        restored += len(live)
        batch.clear()

    for record in _records(path):
        batch.append(record)
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    return restored
