"""Blocking data-quality check on raw usage events (Great Expectations 1.x).

The suite runs on the events loaded in the last ``WINDOW_HOURS`` (at most ``MAX_ROWS``, the most
recent), so it stays fast however large the table grows: nulls, value range, timestamps in
bounds, known tenants and meters, and (tenant_id, event_id) uniqueness.
"""

import dagster as dg
from sqlalchemy import text

from ingestion.aggregation import aggregated_quantity_sql
from meterline.core import clock
from orchestration.defs.ingestion.resources import GreatExpectationsResource
from orchestration.resources import PostgresResource

WINDOW_HOURS = 24
MAX_ROWS = 200_000
MAX_VALUE = 1e12


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
                where loaded_at >= :now - make_interval(hours => :hours)
                order by loaded_at desc
                limit :limit
                """
            ),
            conn,
            params={"now": clock.now(), "hours": WINDOW_HOURS, "limit": MAX_ROWS},
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


# sum, count and max are exact in Redis; unique counts are HyperLogLog estimates and `last`
# depends on arrival order, so those two are not compared.
COMPARABLE = ("sum", "count", "max")

DRIFT_SQL = f"""
with latest as (
    select max(snapshot_at) as snapshot_at from raw.counter_snapshots
),
comparable_meters as (
    select meter, aggregation from meterline.meters where aggregation in {COMPARABLE!r}
),
redis_hours as (
    select s.tenant_id, s.meter, s.period_start as hour, s.quantity
    from raw.counter_snapshots as s
    join latest on s.snapshot_at = latest.snapshot_at
    join comparable_meters using (meter)
    where s.period_kind = 'hour'
),
postgres_hours as (
    select e.tenant_id, e.meter, date_trunc('hour', e.occurred_at) as hour,
           {aggregated_quantity_sql(events="e", meters="m", kinds=COMPARABLE)} as quantity
    from raw.usage_events as e
    join comparable_meters as m using (meter)
    cross join latest
    where e.occurred_at >= date_trunc('hour', latest.snapshot_at) - interval '47 hours'
      and e.occurred_at < latest.snapshot_at
      and e.tenant_id in (select tenant_id from meterline.tenants)
    group by 1, 2, 3, m.aggregation
),
compared as (
    select coalesce(r.tenant_id, p.tenant_id) as tenant_id,
           coalesce(r.meter, p.meter) as meter,
           coalesce(r.hour, p.hour) as hour,
           coalesce(r.quantity, 0) as redis_quantity,
           coalesce(p.quantity, 0) as postgres_quantity,
           coalesce(r.hour, p.hour) + interval '1 hour'
               <= latest.snapshot_at - make_interval(mins => :settle_minutes) as closed
    from redis_hours as r
    full outer join postgres_hours as p using (tenant_id, meter, hour)
    cross join latest
)
select tenant_id, meter, hour, redis_quantity, postgres_quantity, closed
from compared
where redis_quantity <> postgres_quantity
order by closed desc, abs(redis_quantity - postgres_quantity) desc
"""
SETTLE_MINUTES = 5


@dg.asset_check(
    asset=dg.AssetKey(["raw", "counter_snapshots"]),
    blocking=False,
    description=(
        "Counter drift: the newest Redis snapshot against Postgres, per tenant, meter and hour "
        "of the last 48 h (sum, count and max meters). Closed hours (ended more than 5 minutes "
        "before the snapshot) must match exactly. The open hour may differ only by events "
        "Redis accepted that the loader has not written yet (Postgres <= Redis)."
    ),
)
def counter_drift(postgres: PostgresResource) -> dg.AssetCheckResult:
    with postgres.engine().connect() as conn:
        rows = conn.execute(text(DRIFT_SQL), {"settle_minutes": SETTLE_MINUTES}).all()
    closed = [r for r in rows if r.closed]
    ahead = [r for r in rows if not r.closed and r.postgres_quantity > r.redis_quantity]
    open_lag = [r for r in rows if not r.closed and r.postgres_quantity <= r.redis_quantity]
    failing = closed + ahead
    table = "\n".join(
        ["| tenant | meter | hour | redis | postgres |", "|---|---|---|---|---|"]
        + [
            f"| {r.tenant_id} | {r.meter} | {r.hour:%Y-%m-%d %H:00} | {r.redis_quantity} "
            f"| {r.postgres_quantity} |"
            for r in failing[:20]
        ]
    )
    return dg.AssetCheckResult(
        passed=not failing,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "closed_hours_drifting": len(closed),
            "open_hours_postgres_ahead": len(ahead),
            "open_hours_not_loaded_yet": len(open_lag),
            "drift": dg.MetadataValue.md(table if failing else "no drift"),
        },
    )
