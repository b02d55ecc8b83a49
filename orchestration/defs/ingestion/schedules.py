"""Keep the stream drained: load events and snapshot counters every minute."""

import dagster as dg

ingest_job = dg.define_asset_job(
    "ingest_stream",
    selection=dg.AssetSelection.groups("ingestion"),
    description="Drain the Redis stream into raw.usage_events and snapshot the live counters.",
)

ingest_every_minute = dg.ScheduleDefinition(
    name="ingest_every_minute",
    job=ingest_job,
    cron_schedule="* * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Loads the event stream into Postgres every minute (exactly once, see docs/ingestion.md).",
)
