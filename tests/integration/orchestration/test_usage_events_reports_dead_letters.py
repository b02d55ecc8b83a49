"""The loader asset says in its materialization how many rows it set aside, how many dead
letters wait for a replay and what is left in the streams (the figures /metrics reports),
and still loads the good rows."""

import dagster as dg
from sqlalchemy import text


def test_usage_events_materialization_counts_dead_letters(db, redis_client, test_services):
    from ingestion import keys
    from ingestion.recorder import UsageRecorder
    from meterline.core.tenants import create_tenant
    from orchestration.defs.ingestion.assets import usage_events
    from orchestration.resources import PostgresResource, RedisResource

    prefix = test_services.redis_prefix
    create_tenant(db, "acme", "payg")
    UsageRecorder(redis_client, db, prefix=prefix).record(
        [{"id": f"e{i}", "tenant_id": "acme", "meter": "api_calls", "value": 1} for i in range(10)]
    )
    redis_client.xadd(
        keys.stream_key(prefix, "acme"),
        {"n": "1", "rows": "acme\tbad\tapi_calls\tnot-a-number\t0\t{}\t0\n"},
    )
    result = dg.materialize(
        [usage_events],
        resources={
            "redis": RedisResource(url=test_services.redis_url, prefix=prefix),
            "postgres": PostgresResource(url=test_services.database_url),
        },
    )
    [materialization] = result.asset_materializations_for_node("raw__usage_events")
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert metadata["rows_loaded"] == 10
    assert metadata["dead_lettered"] == 1 and metadata["dead_letters_waiting"] == 1
    assert metadata["stream_entries_waiting"] == 0 and metadata["loader_lag_seconds"] == 0
    with db.connect() as conn:
        assert conn.execute(text("select count(*) from raw.usage_events")).scalar() == 10
