"""``meterline bench``: every benchmark in a scratch database and Redis key prefix."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from meterline.bench.report import machine
from meterline.bench.scratch import drop_prefix, scratch_database

Stage = Callable[[str], AbstractContextManager]


def run_bench(
    database_url: str,
    redis,
    *,
    redis_prefix: str,
    events: int,
    transform_events: int,
    stage: Stage = lambda _: nullcontext(),
) -> dict:
    """Measure ingest (``events`` events) and, unless ``transform_events`` is 0, the dbt
    transform over that many events; returns the plain numbers. ``stage(description)`` wraps
    each part (the CLI shows a spinner)."""
    from billing.catalog import load_catalog
    from billing.catalog_store import save_catalog
    from meterline.bench.ingest import run_ingest_bench
    from meterline.core.db import get_engine

    results: dict[str, float | int | str] = {"machine": machine()}
    with scratch_database(database_url) as url:
        engine = get_engine(url)
        save_catalog(engine, load_catalog())
        prefix = f"{redis_prefix}_bench_{secrets.token_hex(3)}"
        try:
            with stage(f"ingest benchmarks ({events:,} events)..."):
                sizes = {"http_events": min(100_000, events), "latency_samples": min(2_000, events)}
                results.update(
                    run_ingest_bench(redis, engine, prefix=prefix, events=events, **sizes)
                )
        finally:
            drop_prefix(redis, prefix)
        if transform_events:
            from meterline.bench.transform import run_transform_bench

            with stage(f"dbt benchmark ({transform_events:,} events)..."):
                transform = run_transform_bench(url, events=transform_events)
                results.update(
                    {f"transform_{k}" if k in results else k: v for k, v in transform.items()}
                )
    return results
