"""The ingest half of ``meterline bench``: plain numbers for recording and loading.

Measured on the services it is given, for a throwaway tenant ``bench-<random>`` that is removed
afterwards with its events and keys (:func:`meterline.bench.scratch.bench_tenant`):

- ``sdk_events_per_s``: ``UsageRecorder.record`` with batches (``sdk_threads`` threads, each
  with its own connection, so Python validation overlaps the Lua script in Redis);
  ``sdk_events_per_s_1thread`` for a single caller;
- ``quota_check_p50_ms`` / ``quota_check_p99_ms``: one-event ``record`` calls (the full path:
  validation, one EVALSHA with dedupe + quota check-and-increment + stream append);
- ``http_events_per_s``: ``POST /v1/events`` against a real uvicorn on loopback (its own
  process) with ``http_clients`` concurrent clients sending batches;
- ``loader_rows_per_s``: ``load_stream`` draining everything above into Postgres.
"""

from __future__ import annotations

import os

from sqlalchemy import Engine

from ingestion.recorder import UsageRecorder
from meterline.bench import http_api, loading, recording
from meterline.bench.scratch import bench_tenant, redis_url_of
from meterline.core import clock


def run_ingest_bench(
    redis,
    engine: Engine,
    *,
    prefix: str,
    events: int = 200_000,
    batch_size: int = 1000,
    sdk_threads: int = 2,
    http_events: int = 100_000,
    http_clients: int = 8,
    http_batch: int = 1000,
    latency_samples: int = 2000,
) -> dict:
    """Run the ingest benchmark; returns plain numbers (see the module docstring)."""
    results: dict = {"events": events, "batch_size": batch_size, "cpus": os.cpu_count()}
    ts = clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    with bench_tenant(redis, engine, prefix=prefix) as tenant:
        recorder = UsageRecorder(redis, engine, prefix=prefix)
        results["sdk_events_per_s_1thread"] = recording.sdk_one_caller(
            recorder, tenant, ts, events=events, batch_size=batch_size
        )
        results["sdk_events_per_s"] = recording.sdk_threads(
            redis, engine, tenant, ts,
            prefix=prefix, events=events, batch_size=batch_size, threads=sdk_threads,
        )  # fmt: skip
        results.update(recording.quota_check_latency(recorder, tenant, latency_samples))
        if http_events > 0:
            http = http_api.http_ingest(
                engine, redis_url_of(redis), tenant, ts,
                prefix=prefix, events=http_events, clients=http_clients, batch=http_batch,
            )  # fmt: skip
            results.update(http)
        results.update(loading.stream_load(redis, engine, tenant, prefix=prefix))
    return results
