"""Blocking data-quality check on raw usage events (Great Expectations 1.x).

The suite runs on the events loaded in the last ``WINDOW_HOURS`` (at most ``MAX_ROWS``, the most
recent), so it stays fast however large the table grows: nulls, value range, timestamps in
bounds, known tenants and meters, and (tenant_id, event_id) uniqueness.
"""

import os

import dagster as dg
from sqlalchemy import text

from orchestration.resources import PostgresResource

WINDOW_HOURS = 24
MAX_ROWS = 200_000
MAX_VALUE = 1e12


class GreatExpectationsResource(dg.ConfigurableResource):
    """An ephemeral GX 1.x data context (suites live in code, results in Dagster metadata)."""

    def validate(self, frame, suite_name: str, expectations: list) -> tuple[bool, list[dict]]:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = {"globally": False}
        batch = (
            context.data_sources.add_pandas(f"{suite_name}_source")
            .add_dataframe_asset(suite_name)
            .add_batch_definition_whole_dataframe("latest")
        )
        suite = context.suites.add(gx.ExpectationSuite(name=suite_name, expectations=expectations))
        result = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{suite_name}_validation", data=batch, suite=suite)
        ).run(batch_parameters={"dataframe": frame})
        details = [
            {
                "expectation": r.expectation_config.type,
                "column": r.expectation_config.kwargs.get("column")
                or ",".join(r.expectation_config.kwargs.get("column_list", [])),
                "success": bool(r.success),
                "unexpected": int(r.result.get("unexpected_count") or 0),
                "examples": [str(v) for v in (r.result.get("partial_unexpected_list") or [])[:3]],
            }
            for r in result.results
        ]
        return bool(result.success), details


def raw_event_expectations(tenants: list[str], meters: list[str]) -> list:
    import great_expectations as gx

    e = gx.expectations
    return [
        *[
            e.ExpectColumnValuesToNotBeNull(column=column)
            for column in ("tenant_id", "event_id", "meter", "value", "occurred_at", "loaded_at")
        ],
        e.ExpectColumnValuesToBeBetween(column="value", min_value=0, max_value=MAX_VALUE),
        e.ExpectColumnValuesToBeBetween(column="ahead_seconds", max_value=300),
        e.ExpectColumnValuesToBeInSet(column="tenant_id", value_set=tenants),
        e.ExpectColumnValuesToBeInSet(column="meter", value_set=meters),
        e.ExpectCompoundColumnsToBeUnique(column_list=["tenant_id", "event_id"]),
    ]


@dg.asset_check(
    asset=dg.AssetKey(["raw", "usage_events"]),
    blocking=True,
    description=(
        "Great Expectations suite on recently loaded raw events: no nulls, 0 <= value <= 1e12, "
        "no event more than 5 minutes ahead of its load time, known tenants and meters, unique "
        "(tenant_id, event_id). Blocks the dbt build when it fails."
    ),
)
def raw_usage_events_expectations(
    postgres: PostgresResource, great_expectations: GreatExpectationsResource
) -> dg.AssetCheckResult:
    import pandas as pd

    engine = postgres.engine()
    with engine.connect() as conn:
        tenants = [r[0] for r in conn.execute(text("select tenant_id from meterline.tenants"))]
        meters = [r[0] for r in conn.execute(text("select meter from meterline.meters"))]
        frame = pd.read_sql_query(
            text(
                """
                select tenant_id, event_id, meter, value::float8 as value, occurred_at, loaded_at,
                       extract(epoch from occurred_at - loaded_at)::float8 as ahead_seconds
                from raw.usage_events
                where loaded_at >= now() - make_interval(hours => :hours)
                order by loaded_at desc
                limit :limit
                """
            ),
            conn,
            params={"hours": WINDOW_HOURS, "limit": MAX_ROWS},
        )
    if frame.empty:
        return dg.AssetCheckResult(passed=True, metadata={"rows_checked": 0})
    passed, details = great_expectations.validate(
        frame, "raw_usage_events", raw_event_expectations(tenants, meters)
    )
    failed = [d for d in details if not d["success"]]
    table = "\n".join(
        ["| expectation | column | unexpected | examples |", "|---|---|---|---|"]
        + [
            f"| {d['expectation']} | {d['column']} | {d['unexpected']} | {', '.join(d['examples'])} |"
            for d in failed
        ]
    )
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "rows_checked": len(frame),
            "expectations": len(details),
            "failed_expectations": len(failed),
            "failures": dg.MetadataValue.md(table if failed else "all expectations met"),
        },
    )


defs = dg.Definitions(resources={"great_expectations": GreatExpectationsResource()})
