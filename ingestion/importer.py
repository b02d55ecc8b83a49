"""Historical backfills: ``meterline import FILE`` (JSON Lines or CSV).

Same schema, validation and dedupe as live events, except that any past timestamp is
accepted. The file is streamed in chunks (constant memory):

- events inside the live window (younger than the dedupe window) go through the same Redis
  script as live traffic, so the live counters and the dedupe set stay right; hard limits are
  not enforced (the usage already happened); the stream is then drained into Postgres;
- older events go straight to Postgres with ``INSERT ... ON CONFLICT DO NOTHING``, so an id
  already loaded is a duplicate there.

By default the whole file is validated first; if any line is invalid the import is refused
(:class:`ImportRefused` lists the first 100 problems) and nothing is written. With
``skip_invalid`` the valid rows are loaded and each invalid line is written to
``rejects_path`` (JSON Lines: line number, error, the raw line).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson
from sqlalchemy import Engine

from ingestion.loader import insert_rows, load_stream
from ingestion.recorder import UsageRecorder
from ingestion.validation import (
    EventValidationError,
    PreparedBatch,
    parse_value_text,
    validate_batch,
)
from meterline.core import clock

MAX_LISTED_ERRORS = 100
CSV_FIELDS = ("id", "tenant_id", "meter", "value", "timestamp", "dimensions")


class ImportRefused(ValueError):
    """The file has invalid lines; nothing was imported. ``errors`` holds the first 100."""

    def __init__(self, path: Path, errors: list[str], invalid: int, lines: int):
        self.errors = errors
        self.invalid = invalid
        self.lines = lines
        listed = "\n  ".join(errors)
        more = f"\n  ... and {invalid - len(errors)} more" if invalid > len(errors) else ""
        super().__init__(
            f"{path}: {invalid} of {lines} lines are invalid, nothing was imported "
            f"(fix them, or pass --skip-invalid to load the valid rows):\n  {listed}{more}"
        )


@dataclass
class ImportStats:
    lines: int = 0
    valid: int = 0
    rejected: int = 0  # invalid lines skipped (written to rejects_path)
    accepted: int = 0  # new events recorded (live ones in Redis, historical ones in Postgres)
    duplicates: int = 0
    live_events: int = 0
    historical_events: int = 0
    rows_loaded: int = 0  # rows inserted into raw.usage_events by this import
    elapsed_seconds: float = 0.0
    rejects_path: str | None = None
    errors: list[str] = field(default_factory=list)


def _read_jsonl(path: Path) -> Iterator[tuple[int, str, object]]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line:
                continue
            try:
                yield number, raw.decode("utf-8", "replace").rstrip("\n"), orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield (
                    number,
                    raw.decode("utf-8", "replace").rstrip("\n"),
                    ValueError(f"not valid JSON ({exc.args[0].split(':')[0]})"),
                )


def _read_csv(path: Path) -> Iterator[tuple[int, str, object]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        unknown = [f for f in reader.fieldnames or [] if f not in CSV_FIELDS]
        if unknown or not reader.fieldnames:
            raise ValueError(
                f"{path}: CSV header must use the event fields {', '.join(CSV_FIELDS)}; "
                f"unknown column {unknown[0] if unknown else '(no header)'!r}"
            )
        for row in reader:
            number = reader.line_num
            raw = ",".join(row.get(f) or "" for f in reader.fieldnames)
            event: dict = {}
            try:
                for name, cell in row.items():
                    if cell is None or cell == "":
                        continue
                    if name == "value":
                        event[name] = parse_value_text(cell)
                    elif name == "dimensions":
                        try:
                            event[name] = orjson.loads(cell)
                        except orjson.JSONDecodeError:
                            raise ValueError(
                                'dimensions: must be a JSON object string like {"user_id": "u7"}'
                            ) from None
                    else:
                        event[name] = cell
            except ValueError as exc:
                yield number, raw, exc
                continue
            yield number, raw, event


def _lines(path: Path) -> Iterator[tuple[int, str, object]]:
    return _read_csv(path) if path.suffix.lower() == ".csv" else _read_jsonl(path)


def _chunks(path: Path, size: int) -> Iterator[list[tuple[int, str, object]]]:
    chunk: list[tuple[int, str, object]] = []
    for item in _lines(path):
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _message(number: int, error: Exception) -> str:
    if isinstance(error, EventValidationError):
        where = error.field or "event"
        return f"line {number}: {where}: {error.reason}"
    return f"line {number}: {error}"


def _validate_chunk(chunk, recorder: UsageRecorder, now: datetime):
    """-> (prepared batch of the valid lines, [(line number, raw, message)] of invalid ones)."""
    parsed = [(n, raw, ev) for n, raw, ev in chunk if not isinstance(ev, Exception)]
    bad = [(n, raw, _message(n, ev)) for n, raw, ev in chunk if isinstance(ev, Exception)]
    events = [ev for _, _, ev in parsed]
    try:
        return validate_batch(events, recorder.directory, now=now, historical=True), bad
    except EventValidationError:
        pass
    good = []
    for n, raw, ev in parsed:  # slow path: find every bad line of this chunk
        try:
            validate_batch([ev], recorder.directory, now=now, historical=True)
            good.append(ev)
        except EventValidationError as exc:
            bad.append((n, raw, _message(n, exc)))
    bad.sort()
    return validate_batch(good, recorder.directory, now=now, historical=True), bad


def _split(
    batch: PreparedBatch, cutoff_us: int, inactive: set[str]
) -> tuple[PreparedBatch, list[str]]:
    """Live part (a PreparedBatch) and the historical part (COPY rows).

    A canceled tenant's history (validation only lets through events from before the cancel)
    goes straight to Postgres: its live counters are closed and Redis would refuse it."""
    live = PreparedBatch(size=0, received_us=batch.received_us)
    historical: list[str] = []
    for position, occurred in enumerate(batch.occurred_us):
        tenant = batch.tenant_ids[position]
        if occurred < cutoff_us or tenant in inactive:
            historical.append(batch.rows[position])
            continue
        live.by_tenant.setdefault(tenant, []).append(live.size)
        live.size += 1
        live.ids.append(batch.ids[position])
        live.tenant_ids.append(tenant)
        live.meters.append(batch.meters[position])
        live.occurred_us.append(occurred)
        live.args.append(batch.args[position])
        live.rows.append(batch.rows[position])
    return live, historical


def import_events(
    path: str | Path,
    redis,
    engine: Engine,
    *,
    prefix: str,
    skip_invalid: bool = False,
    rejects_path: str | Path | None = None,
    on_progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
    chunk_size: int = 5000,
    dedupe_window_seconds: int = 35 * 86400,
) -> ImportStats:
    """Import a JSON Lines or CSV file of events; see the module docstring."""
    started = time.perf_counter()
    path = Path(path)
    now = now or clock.now()
    recorder = UsageRecorder(
        redis, engine, prefix=prefix, dedupe_window_seconds=dedupe_window_seconds
    )
    stats = ImportStats()
    if not skip_invalid:  # pass 1: refuse the file before writing anything
        errors: list[str] = []
        invalid = lines = 0
        for chunk in _chunks(path, chunk_size):
            lines += len(chunk)
            _, bad = _validate_chunk(chunk, recorder, now)
            invalid += len(bad)
            errors.extend(message for _, _, message in bad[: MAX_LISTED_ERRORS - len(errors)])
        if invalid:
            raise ImportRefused(path, errors, invalid, lines)
    cutoff_us = round(now.timestamp() * 1_000_000) - dedupe_window_seconds * 1_000_000
    touched: set[str] = set()
    with ExitStack() as stack:
        rejects = None
        if skip_invalid and rejects_path is not None:
            stats.rejects_path = str(rejects_path)
            rejects = stack.enter_context(Path(rejects_path).open("wb"))
        for chunk in _chunks(path, chunk_size):
            stats.lines += len(chunk)
            batch, bad = _validate_chunk(chunk, recorder, now)
            stats.rejected += len(bad)
            for number, raw, message in bad:
                if len(stats.errors) < MAX_LISTED_ERRORS:
                    stats.errors.append(message)
                if rejects is not None:
                    rejects.write(
                        orjson.dumps({"line": number, "error": message, "raw": raw}) + b"\n"
                    )
            stats.valid += batch.size
            inactive = {t for t, status in recorder.directory.tenants.items() if status != "active"}
            live, historical = _split(batch, cutoff_us, inactive)
            if live.size:
                result = recorder.record_prepared(live, enforce_limits=False, write_stream=True)
                stats.live_events += live.size
                stats.accepted += result.accepted
                stats.duplicates += result.duplicates
                touched.update(live.by_tenant)
            if historical:
                inserted = insert_rows(engine, ["".join(historical).encode()])
                stats.historical_events += len(historical)
                stats.accepted += inserted
                stats.duplicates += len(historical) - inserted
                stats.rows_loaded += inserted
            if on_progress is not None:
                on_progress(len(chunk))
    if touched:  # land the live part in Postgres too, exactly once like the loader asset
        loaded = load_stream(redis, engine, prefix=prefix, consumer="importer", tenants=touched)
        stats.rows_loaded += loaded.rows_loaded
    stats.elapsed_seconds = time.perf_counter() - started
    return stats
