"""Ingestion assets: drain the Redis stream into Postgres and snapshot the live counters."""

from datetime import timedelta

import dagster as dg

from orchestration.resources import PostgresResource, RedisResource

OWNERS = ["team:data-platform"]

control_tables = [
    dg.AssetSpec(
        ["meterline", table],
        group_name="catalog",
        kinds={"postgres"},
        owners=OWNERS,
        description=description,
    )
    for table, description in {
        "meters": "Meters of the price catalog (`meterline catalog load`).",
        "plans": "Plan versions (immutable) with base fee and currency (`meterline catalog load`).",
        "plan_meters": "Per plan version and meter: limit, hard/soft, pricing model (`meterline catalog load`).",
        "price_tiers": "Price tiers per plan version and meter (`meterline catalog load`).",
        "tenants": "Tenants (`meterline tenants create|cancel`).",
        "subscriptions": "Plan history with effective dates and the plan version paid (`meterline tenants set-plan`, `meterline plans migrate`).",
        "rating_rules": "First month each rating rule applies to (migration 0010_usage_segments: usage split at a mid-month plan change).",
    }.items()
]


@dg.asset(
    key=["raw", "usage_events"],
    group_name="ingestion",
    kinds={"redis", "postgres"},
    owners=OWNERS,
    deps=[["meterline", "tenants"], ["meterline", "meters"]],
    # Loaded every minute by `ingest_every_minute`; stale after 10 minutes means the loader stopped.
    freshness_policy=dg.FreshnessPolicy.time_window(
        fail_window=timedelta(minutes=10), warn_window=timedelta(minutes=3)
    ),
    description=(
        "Raw usage events, drained from the Redis stream with a consumer group: COPY, "
        "insert ON CONFLICT DO NOTHING on (tenant_id, event_id), commit, then XDEL + XACK. "
        "Exactly once in Postgres, even when a run crashes and is retried. A row Postgres "
        "refuses goes to raw.usage_dead_letters (metadata dead_lettered, "
        "dead_letters_waiting; `meterline dead-letters list`) and never blocks the others."
    ),
)
def usage_events(
    context: dg.AssetExecutionContext, redis: RedisResource, postgres: PostgresResource
) -> dg.MaterializeResult:
    from ingestion.backlog import stream_backlog
    from ingestion.dead_letters import count_dead_letters
    from ingestion.loader import load_stream

    engine = postgres.engine()
    stats = load_stream(redis.client(), engine, prefix=redis.prefix)
    waiting = count_dead_letters(engine)
    backlog = stream_backlog(redis.client(), engine, prefix=redis.prefix)
    if stats.dead_lettered:
        context.log.warning(
            f"{stats.dead_lettered} row(s) could not be loaded and were set aside in "
            "raw.usage_dead_letters: see `meterline dead-letters list`"
        )
    return dg.MaterializeResult(
        metadata={
            "rows_loaded": dg.MetadataValue.int(stats.rows_loaded),
            "duplicates_skipped": dg.MetadataValue.int(stats.duplicates_skipped),
            "dead_lettered": dg.MetadataValue.int(stats.dead_lettered),
            "dead_letters_waiting": dg.MetadataValue.int(waiting),
            "lag_seconds": dg.MetadataValue.float(float(stats.lag_seconds or 0)),
            "oldest_pending_seconds": dg.MetadataValue.float(
                float(stats.oldest_pending_seconds or 0)
            ),
            "elapsed_seconds": dg.MetadataValue.float(round(stats.elapsed_seconds, 3)),
            # what /metrics reports as meterline_stream_entries / meterline_loader_lag_seconds
            "stream_entries_waiting": dg.MetadataValue.int(backlog.entries),
            "loader_lag_seconds": dg.MetadataValue.float(float(backlog.oldest_age_seconds)),
        }
    )


@dg.asset(
    key=["raw", "counter_snapshots"],
    group_name="ingestion",
    kinds={"redis", "postgres"},
    owners=OWNERS,
    # After the load, so the drift check compares counters with freshly loaded events.
    deps=[["meterline", "tenants"], usage_events],
    description=(
        "Snapshot of the live Redis counters (per tenant, meter, month and hour), so drift "
        "between Redis and Postgres is visible and checked."
    ),
)
def counter_snapshots(redis: RedisResource, postgres: PostgresResource) -> dg.MaterializeResult:
    from ingestion.loader import snapshot_counters

    rows = snapshot_counters(redis.client(), postgres.engine(), prefix=redis.prefix)
    return dg.MaterializeResult(metadata={"rows": dg.MetadataValue.int(rows)})
