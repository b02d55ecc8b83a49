"""`meterline bench`: measured numbers for the DESIGN.md targets, in a scratch database and
Redis key prefix so a benchmark never touches real data."""

from __future__ import annotations

import json
import platform
import secrets
from contextlib import contextmanager

from rich.console import Console
from rich.table import Table

TARGETS = {
    "sdk_events_per_s": (">=", 100_000, "record via the SDK, batched (events/s)"),
    "http_events_per_s": (">=", 25_000, "POST /v1/events with batches (events/s)"),
    "quota_check_p50_ms": (None, None, "single-event quota check p50 (ms)"),
    "quota_check_p99_ms": ("<=", 2.0, "single-event quota check p99 (ms)"),
    "loader_rows_per_s": (">=", 100_000, "stream -> Postgres load (rows/s)"),
    "dbt_full_build_s": ("<=", 60.0, "dbt build of all marts (s)"),
    "dbt_incremental_hourly_s": ("<=", 5.0, "incremental hourly dbt run (s)"),
}


@contextmanager
def scratch_database(database_url: str):
    import psycopg
    from sqlalchemy.engine import make_url

    from meterline.core.db import get_engine, migrate
    from meterline.core.services import ensure_database

    url = make_url(database_url)
    name = f"{url.database}_bench_{secrets.token_hex(3)}"
    admin = url.set(database="postgres").render_as_string(hide_password=False)
    ensure_database(admin, name)
    scratch = url.set(database=name).render_as_string(hide_password=False)
    try:
        migrate(scratch)
        yield scratch
    finally:
        get_engine(scratch).dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def run_bench(rt, console: Console, *, as_json: bool, events: int, transform_events: int) -> dict:
    from billing.catalog import load_catalog
    from billing.catalog_store import save_catalog
    from meterline.core.db import get_engine

    results: dict[str, float | int | str] = {
        "machine": f"{platform.machine()}, {_cpus()} CPUs, Python {platform.python_version()}",
    }
    with scratch_database(rt.database_url) as url:
        engine = get_engine(url)
        save_catalog(engine, load_catalog())
        prefix = f"{rt.prefix}_bench_{secrets.token_hex(3)}"
        try:
            from ingestion.bench import run_ingest_bench

            with console.status(f"ingest benchmarks ({events:,} events)...", spinner="dots"):
                sizes = {"http_events": min(100_000, events), "latency_samples": min(2_000, events)}
                results.update(
                    run_ingest_bench(rt.redis, engine, prefix=prefix, events=events, **sizes)
                )
        finally:
            _drop_prefix(rt.redis, prefix)
        if transform_events:
            from meterline.core.dbt_bench import run_transform_bench

            with console.status(f"dbt benchmark ({transform_events:,} events)...", spinner="dots"):
                transform = run_transform_bench(url, events=transform_events)
                results.update(
                    {f"transform_{k}" if k in results else k: v for k, v in transform.items()}
                )
    if as_json:
        print(json.dumps(results, indent=2, default=str))
    else:
        _print_table(console, results)
    return results


def _drop_prefix(redis, prefix: str) -> None:
    batch = []
    for key in redis.scan_iter(match=f"{prefix}:*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            redis.delete(*batch)
            batch.clear()
    if batch:
        redis.delete(*batch)


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _print_table(console: Console, results: dict) -> None:
    table = Table(title=f"meterline bench ({results['machine']})")
    for column in ("measure", "result", "target", "ok"):
        table.add_column(column)
    for key, (op, target, label) in TARGETS.items():
        if key not in results:
            continue
        value = results[key]
        if op is None:
            table.add_row(
                label, f"{value:,.3f}" if isinstance(value, float) else f"{value:,}", "", ""
            )
            continue
        ok = value >= target if op == ">=" else value <= target
        shown = f"{value:,.0f}" if value >= 100 else f"{value:,.3f}"
        table.add_row(label, shown, f"{op} {target:,}", "[green]yes[/]" if ok else "[red]no[/]")
    console.print(table)
    extra = {k: v for k, v in results.items() if k not in TARGETS and k != "machine"}
    if extra:
        console.print("[dim]" + ", ".join(f"{k}={v}" for k, v in extra.items()) + "[/]")
