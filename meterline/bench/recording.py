"""Recording usage through the SDK: batched events/s (one caller, several threads) and the
latency of a single-event quota check (validation, one EVALSHA with dedupe + quota
check-and-increment + stream append)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine

from ingestion.recorder import UsageRecorder
from meterline.bench.scratch import redis_url_of


def api_call_events(tenant: str, tag: str, n: int, ts: str) -> list[dict]:
    """``n`` api_calls events with ids ``<tag><i>``, all at ``ts``."""
    return [
        {
            "id": f"{tag}{i}",
            "tenant_id": tenant,
            "meter": "api_calls",
            "value": 1,
            "timestamp": ts,
            "dimensions": {"endpoint": "/v1/search", "region": "eu"},
        }
        for i in range(n)
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def seconds_in_threads(worker: Callable[[int, threading.Barrier], None], count: int) -> float:
    """Run ``worker(index, start)`` in ``count`` threads. Each calls ``start.wait()`` once it is
    ready; the clock runs from the moment all are released until the last one ends."""
    start = threading.Barrier(count + 1)
    threads = [threading.Thread(target=worker, args=(i, start)) for i in range(count)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began


def sdk_one_caller(
    recorder: UsageRecorder, tenant: str, ts: str, *, events: int, batch_size: int
) -> int:
    """Events/s of one caller recording batches of ``batch_size`` (at most 50,000 events)."""
    recorder.record(api_call_events(tenant, "warm", 10, ts))
    single = api_call_events(tenant, "s1-", min(events, 50_000), ts)
    started = time.perf_counter()
    for i in range(0, len(single), batch_size):
        recorder.record(single[i : i + batch_size])
    return round(len(single) / (time.perf_counter() - started))


def sdk_threads(
    redis,
    engine: Engine,
    tenant: str,
    ts: str,
    *,
    prefix: str,
    events: int,
    batch_size: int,
    threads: int,
) -> int:
    """Events/s of ``threads`` callers at once (as an app server with threads would), each with
    its own connection, so Python validation overlaps the Lua script in Redis."""
    per_thread = events // threads
    prepared = [api_call_events(tenant, f"t{t}-", per_thread, ts) for t in range(threads)]
    url = redis_url_of(redis)
    recorders = [
        UsageRecorder(redis.__class__.from_url(url), engine, prefix=prefix) for _ in range(threads)
    ]
    for r in recorders:
        r.record(api_call_events(tenant, f"w{id(r)}-", 1, ts))

    def worker(index: int, start: threading.Barrier) -> None:
        start.wait()
        batch_events = prepared[index]
        for i in range(0, len(batch_events), batch_size):
            recorders[index].record(batch_events[i : i + batch_size])

    return round(per_thread * threads / seconds_in_threads(worker, threads))


def quota_check_latency(recorder: UsageRecorder, tenant: str, samples: int) -> dict[str, float]:
    """p50 and p99 in milliseconds of ``samples`` one-event ``record`` calls."""
    timings: list[float] = []
    for i in range(samples):
        event = {"id": f"lat{i}", "tenant_id": tenant, "meter": "api_calls", "value": 1}
        t0 = time.perf_counter()
        recorder.record(event)
        timings.append((time.perf_counter() - t0) * 1000)
    return {
        "quota_check_p50_ms": round(percentile(timings, 0.50), 3),
        "quota_check_p99_ms": round(percentile(timings, 0.99), 3),
    }
