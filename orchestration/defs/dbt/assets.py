"""dbt models as Dagster assets (dagster-dbt), with dbt tests as asset checks.

Keys and groups come from the dbt project itself: a model's key is ``[schema, name]`` (so the
marts read ``analytics/fct_usage_daily``), its group is its folder under ``marts/`` (or
``transform`` for staging and intermediate), and sources carry ``meta.dagster.asset_key`` equal
to the ingestion assets' keys, so the lineage graph is one connected picture.
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from orchestration.defs.dbt.invocation import stream_dbt
from orchestration.defs.dbt.mart_metadata import with_mart_metadata
from orchestration.defs.dbt.project import meterline_dbt_project
from orchestration.resources import PostgresResource


class MeterlineDbtTranslator(DagsterDbtTranslator):
    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        meta_group = dbt_resource_props.get("meta", {}).get("dagster", {}).get("group")
        if meta_group:
            return meta_group
        fqn = dbt_resource_props.get("fqn", [])
        if len(fqn) > 3 and fqn[1] == "marts":
            return fqn[2]
        return "transform"

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str]:
        return ["team:data-platform"]


project = meterline_dbt_project()


@dbt_assets(
    manifest=project.manifest_path,
    project=project,
    dagster_dbt_translator=MeterlineDbtTranslator(),
)
def meterline_dbt_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, postgres: PostgresResource
):
    """Build and test every dbt model (staging -> intermediate -> marts); each mart's
    materialization carries its row count, column schema and URI."""
    events = stream_dbt(dbt, postgres.url, ["build"], context=context)
    yield from with_mart_metadata(events, postgres.engine(), postgres.url, project.manifest_path)
