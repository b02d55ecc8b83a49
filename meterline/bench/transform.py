"""The dbt half of ``meterline bench``: N synthetic events generated inside Postgres, then timed
dbt builds (through the project's dbt runner, :mod:`meterline.core.dbt_runner`).

Run it against a dedicated database (``meterline bench`` creates one): the events table is
truncated and filled with ``events`` rows spread over ``days`` days for ``tenants`` tenants,
loaded shortly after they occurred, as the stream loader would.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from meterline.core import clock
from meterline.core.db import get_engine, migrate
from meterline.core.dbt_runner import DBT_PROJECT_DIR, dbt_build, dbt_command

TARGET_FULL_SECONDS = 60.0
TARGET_INCREMENTAL_SECONDS = 5.0
CHUNK = 1_000_000

# meter mix per 10 events: 6 api_calls, then compute, bandwidth, storage, active users
GENERATE_SQL = """
insert into raw.usage_events
    (tenant_id, event_id, meter, value, occurred_at, dimensions, received_at, loaded_at)
select
    'bench_' || lpad((i % :tenants)::text, 4, '0'),
    'b' || i,
    m.meter,
    case m.meter
        when 'api_calls' then 1
        when 'compute_seconds' then (i % 50) + 1
        when 'bandwidth_gb' then (i % 100) * 0.01
        when 'storage_gb' then (i % 2000) * 0.1
        else 1
    end,
    ts.at,
    case when m.meter = 'active_users'
        then jsonb_build_object('user_id', 'u' || ((i / 10) % 500))
        else '{}'::jsonb end,
    ts.at + interval '1 second',
    ts.at + interval '5 seconds'
from generate_series(cast(:lo as bigint), cast(:hi as bigint)) as g (i)
cross join lateral (
    select (array['api_calls', 'api_calls', 'api_calls', 'api_calls', 'api_calls', 'api_calls',
                  'compute_seconds', 'bandwidth_gb', 'storage_gb', 'active_users'])
           [1 + ((i / :tenants) % 10)] as meter
) as m
cross join lateral (
    select cast(:start as timestamptz) + (i * cast(:step_us as bigint)) * interval '1 microsecond' as at
) as ts
"""


def _ensure_bench_tenants(engine, tenants: int, since: datetime) -> None:
    with engine.begin() as conn:
        if conn.execute(text("select count(*) from meterline.plans")).scalar_one() == 0:
            raise RuntimeError(
                "the bench database has no price catalog: run `meterline catalog load` against it first"
            )
        conn.execute(text("delete from meterline.tenants where tenant_id like 'bench\\_%'"))
        plans = ["payg", "pro", "enterprise", "starter"]
        rows = [
            {"id": f"bench_{i:04d}", "plan": plans[i % len(plans)], "at": since}
            for i in range(tenants)
        ]
        conn.execute(
            text(
                "insert into meterline.tenants (tenant_id, name, created_at) values (:id, :id, :at)"
            ),
            rows,
        )
        conn.execute(
            text(
                "insert into meterline.subscriptions (tenant_id, plan_id, effective_from) "
                "values (:id, :plan, :at)"
            ),
            rows,
        )


HOUR_SQL = """
insert into raw.usage_events
    (tenant_id, event_id, meter, value, occurred_at, dimensions, received_at, loaded_at)
select
    'bench_' || lpad((i % :tenants)::text, 4, '0'),
    'h' || i,
    case when i % 10 < 6 then 'api_calls' else 'compute_seconds' end,
    1 + i % 5,
    cast(:start as timestamptz) + (i * cast(:step_us as bigint)) * interval '1 microsecond',
    '{}'::jsonb,
    now(),
    now()
from generate_series(1, cast(:n as bigint)) as g (i)
"""


def _last_run_elapsed() -> float | None:
    import json

    results = DBT_PROJECT_DIR / "target" / "run_results.json"
    try:
        return round(float(json.loads(results.read_text())["elapsed_time"]), 2)
    except (OSError, ValueError, KeyError):
        return None


def _dbt_import_seconds() -> float:
    """How long a fresh Python process takes just to import dbt (paid by every dbt command)."""
    import subprocess
    import sys

    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import dbt.cli.main"], check=True)
    return round(time.perf_counter() - began, 2)


def add_hour_of_events(
    database_url: str, events: int, *, tenants: int, days: int, end: datetime
) -> int:
    """Load the last hour's share of ``events`` again as new events, loaded now."""
    n = max(1, events // (days * 24))
    with get_engine(database_url).begin() as conn:
        conn.execute(
            text(HOUR_SQL),
            {
                "tenants": tenants,
                "n": n,
                "start": end - timedelta(hours=1),
                "step_us": 3_600_000_000 // n,
            },
        )
    return n


def generate_events(
    database_url: str, events: int, *, tenants: int = 100, days: int = 60
) -> dict[str, Any]:
    """Replace raw.usage_events with ``events`` synthetic events (2 parallel inserts)."""
    engine = get_engine(database_url)
    end = clock.now().replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    _ensure_bench_tenants(engine, tenants, start - timedelta(days=1))
    with engine.begin() as conn:
        conn.execute(text("truncate raw.usage_events"))
    params = {
        "tenants": tenants,
        "start": start,
        "step_us": int((end - start).total_seconds() * 1_000_000) // max(events, 1),
    }

    def insert(lo: int, hi: int) -> None:
        with engine.begin() as conn:
            conn.execute(text("set local synchronous_commit = off"))
            conn.execute(text(GENERATE_SQL), {**params, "lo": lo, "hi": hi})

    began = time.perf_counter()
    chunks = [(lo, min(lo + CHUNK, events) - 1) for lo in range(0, events, CHUNK)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda c: insert(*c), chunks))
    with engine.begin() as conn:
        conn.execute(text("analyze raw.usage_events"))
    return {"events": events, "seconds": round(time.perf_counter() - began, 2), "end": end}


def run_transform_bench(
    database_url: str, events: int = 10_000_000, *, tenants: int = 100, days: int = 60
) -> dict[str, Any]:
    """Generate ``events`` events, then time a full ``dbt build`` and an incremental hourly run.

    Returns a dict with the generation time, ``full_build_seconds`` (``dbt build
    --full-refresh``: seeds, all models and all tests), ``incremental_hourly_seconds`` (the
    usage rollups for one hour via vars min_date/max_date, as a partitioned run does),
    ``incremental_hourly_build_seconds`` (``dbt build`` of every model and test with that
    window) and the targets.
    """
    migrate(database_url)
    generated = generate_events(database_url, events, tenants=tenants, days=days)
    end = generated["end"]
    window = {
        "min_date": (end - timedelta(hours=1)).isoformat(),
        "max_date": end.isoformat(),
    }

    began = time.perf_counter()
    dbt_build(database_url, "--full-refresh")
    full_seconds = time.perf_counter() - began

    # The scheduled hourly run: one more hour of events has been loaded since the last build,
    # and a plain incremental run (no vars, so dbt's partial parse stays valid) folds it in.
    new_events = add_hour_of_events(database_url, events, tenants=tenants, days=days, end=end)
    began = time.perf_counter()
    dbt_command(
        database_url, "run", "--select", "tag:usage_rollups", "int_usage_values_deduplicated"
    )
    incremental_seconds = time.perf_counter() - began
    # dbt's own account of the run (connections + SQL), without process start-up and parsing.
    incremental_dbt_elapsed = _last_run_elapsed()

    # A re-processing run of one hour with min_date/max_date (what a backfill run does); it
    # also rebuilds the lookback window before it and re-parses the project (vars changed).
    began = time.perf_counter()
    dbt_command(
        database_url,
        "run",
        "--select",
        "tag:usage_rollups",
        "int_usage_values_deduplicated",
        vars=window,
    )
    window_seconds = time.perf_counter() - began

    began = time.perf_counter()
    dbt_build(database_url, vars=window)
    incremental_build_seconds = time.perf_counter() - began

    with get_engine(database_url).connect() as conn:
        hourly_rows = conn.execute(
            text("select count(*) from analytics.fct_usage_hourly")
        ).scalar_one()
    return {
        "events": events,
        "tenants": tenants,
        "days": days,
        "generate_seconds": generated["seconds"],
        "full_build_seconds": round(full_seconds, 2),
        "incremental_hourly_seconds": round(incremental_seconds, 2),
        "incremental_hourly_new_events": new_events,
        "incremental_hourly_dbt_elapsed_seconds": incremental_dbt_elapsed,
        "dbt_import_seconds": _dbt_import_seconds(),
        "reprocess_one_hour_window_seconds": round(window_seconds, 2),
        "incremental_hourly_build_seconds": round(incremental_build_seconds, 2),
        "hourly_rows": hourly_rows,
        "target_full_seconds": TARGET_FULL_SECONDS,
        "target_incremental_seconds": TARGET_INCREMENTAL_SECONDS,
        "full_build_ok": full_seconds <= TARGET_FULL_SECONDS,
        "incremental_ok": incremental_seconds <= TARGET_INCREMENTAL_SECONDS,
    }
