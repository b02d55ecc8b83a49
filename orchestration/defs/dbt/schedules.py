"""Rebuild the marts every hour (incremental models only reprocess the lookback window)."""

import dagster as dg

from orchestration.defs.dbt.assets import meterline_dbt_models
from orchestration.defs.dbt.freshness import dbt_source_freshness

dbt_hourly_job = dg.define_asset_job(
    "dbt_hourly",
    selection=dg.AssetSelection.assets(meterline_dbt_models)
    | dg.AssetSelection.checks(dbt_source_freshness),
    description="Incremental dbt build and tests of every model, and dbt source freshness.",
)

dbt_every_hour = dg.ScheduleDefinition(
    name="dbt_every_hour",
    job=dbt_hourly_job,
    cron_schedule="10 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Incremental dbt build at 10 past every hour (late events inside the lookback land).",
)
