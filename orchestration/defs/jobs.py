"""Jobs that the CLI and schedules launch."""

import dagster as dg

from orchestration.defs.dbt.assets import meterline_dbt_models

pipeline_job = dg.define_asset_job(
    "meterline_pipeline",
    selection=dg.AssetSelection.groups("ingestion")
    | dg.AssetSelection.assets(meterline_dbt_models),
    description="Load the event stream and live counters, then build and test every dbt model.",
)
