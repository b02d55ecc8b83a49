"""Re-process the usage rollups for chosen days (a backfill in the UI absorbs late data).

The regular hourly build is incremental with a lookback; this job is for everything older:
select a range of days on the ``reprocess_usage_rollups`` job and launch a backfill. Each run
rebuilds the hourly, daily and monthly rollups for its window (``min_date``/``max_date``, half
open) and records materializations for them, so their history in the UI shows the re-run.
"""

import json

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.defs.dbt.invocation import raise_if_failed, start_dbt
from orchestration.defs.dbt.mart_metadata import mart_metadata
from orchestration.defs.dbt.project import meterline_dbt_project
from orchestration.resources import PostgresResource

ROLLUPS = ("fct_usage_hourly", "fct_usage_daily", "fct_usage_monthly")

usage_days = dg.DailyPartitionsDefinition(start_date="2025-01-01", timezone="UTC", end_offset=1)


@dg.op(
    description="dbt build of the usage rollups (and their tests) for the partition's time window.",
    tags={"kind": "dbt"},
)
def rebuild_usage_rollups(
    context: dg.OpExecutionContext, dbt: DbtCliResource, postgres: PostgresResource
) -> None:
    window = context.partition_time_window
    dbt_vars = {"min_date": window.start.isoformat(), "max_date": window.end.isoformat()}
    context.log.info(f"rebuilding {', '.join(ROLLUPS)} for [{window.start}, {window.end})")
    args = ["build", "--select", " ".join(ROLLUPS), "--vars", json.dumps(dbt_vars)]
    invocation = start_dbt(
        dbt, postgres.url, args, manifest=meterline_dbt_project().manifest_path
    ).wait()
    raise_if_failed(invocation, args)
    for model in ROLLUPS:
        context.log_event(
            dg.AssetMaterialization(
                asset_key=["analytics", model],
                description=f"re-processed for [{window.start:%Y-%m-%d}, {window.end:%Y-%m-%d})",
                metadata={
                    "min_date": dbt_vars["min_date"],
                    "max_date": dbt_vars["max_date"],
                    "dbt_run": invocation.target_path.name,
                    **mart_metadata(postgres.engine(), postgres.url, model),
                },
            )
        )


@dg.job(
    partitions_def=usage_days,
    description="Backfill target: re-process the usage rollups for the selected days.",
)
def reprocess_usage_rollups() -> None:
    rebuild_usage_rollups()
