"""The walking skeleton end to end: catalog -> tenants -> SDK -> Redis -> Dagster loader ->
Postgres -> dbt rollups, and the same again without double counting."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text


def _events(tenant: str, start: datetime, n: int, prefix: str = "e") -> list[dict]:
    return [
        {
            "id": f"{prefix}-{tenant}-{i}",
            "tenant_id": tenant,
            "meter": "api_calls" if i % 3 else "compute_seconds",
            "value": (i % 7) + 1,
            "timestamp": (start + timedelta(minutes=i % 90)).isoformat(),
            "dimensions": {"user_id": f"u{i % 5}"},
        }
        for i in range(n)
    ]


def _rollup_totals(conn, table: str) -> dict[tuple[str, str], Decimal]:
    rows = conn.execute(
        text(
            f"select tenant_id, meter, sum(quantity) from analytics.{table} where meter in ('api_calls','compute_seconds') group by 1, 2"
        )
    )
    return {(t, m): q for t, m, q in rows}


def test_events_flow_from_sdk_to_dbt_rollups_exactly_once(db, redis_client, test_services):
    from ingestion.recorder import UsageRecorder
    from meterline.cli.pipeline import run_job
    from meterline.core import tenants

    tenants.create_tenant(db, "acme", "pro")
    tenants.create_tenant(db, "globex", "payg")
    recorder = UsageRecorder(redis_client, db, prefix=test_services.redis_prefix)
    now = datetime.now(UTC)
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    batch = _events("acme", start, 300) + _events("globex", start, 200)
    first = recorder.record(batch, now=now)
    assert (first.accepted, first.duplicates, first.rejected) == (500, 0, 0)

    report = run_job("meterline_pipeline")
    assert report.success
    keys = {key for key, _ in report.materialized}
    assert {"raw/usage_events", "analytics/fct_usage_daily", "analytics/fct_usage_monthly"} <= keys

    expected: dict[tuple[str, str], Decimal] = {}
    for event in batch:
        key = (event["tenant_id"], event["meter"])
        expected[key] = expected.get(key, Decimal(0)) + Decimal(event["value"])
    with db.connect() as conn:
        assert conn.execute(text("select count(*) from raw.usage_events")).scalar_one() == 500
        assert _rollup_totals(conn, "fct_usage_daily") == expected
        assert _rollup_totals(conn, "fct_usage_monthly") == expected
        assert _rollup_totals(conn, "fct_usage_hourly") == expected

    # A client retry of the same batch and a second pipeline run change nothing.
    retry = recorder.record(batch, now=now)
    assert (retry.accepted, retry.duplicates) == (0, 500)
    assert run_job("meterline_pipeline").success
    with db.connect() as conn:
        assert conn.execute(text("select count(*) from raw.usage_events")).scalar_one() == 500
        assert _rollup_totals(conn, "fct_usage_monthly") == expected
