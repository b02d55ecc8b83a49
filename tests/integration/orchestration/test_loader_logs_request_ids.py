"""A Dagster run of the loader names, in its own event log, the request ids of the batches it
loaded (the `meterline` loggers are managed by the instance's dagster.yaml)."""

import json

import dagster as dg


def test_loader_run_logs_the_request_ids_it_loaded(db, redis_client, test_services):
    from ingestion.recorder import UsageRecorder
    from meterline.core.telemetry import request_id
    from meterline.core.tenants import create_tenant
    from orchestration.defs.ingestion.assets import usage_events
    from orchestration.resources import PostgresResource, RedisResource

    prefix = test_services.redis_prefix
    create_tenant(db, "acme", "payg")
    with request_id.bound("req-dagster-0001"):
        UsageRecorder(redis_client, db, prefix=prefix).record(
            [{"id": "e1", "tenant_id": "acme", "meter": "api_calls", "value": 1}]
        )
    with dg.DagsterInstance.get() as instance:
        assert "meterline" in instance.managed_python_loggers
        result = dg.materialize(
            [usage_events],
            instance=instance,
            resources={
                "redis": RedisResource(url=test_services.redis_url, prefix=prefix),
                "postgres": PostgresResource(url=test_services.database_url),
            },
        )
        assert result.success
        messages = [e.user_message for e in instance.all_logs(result.run_id)]
    batches = [json.loads(m) for m in messages if m.startswith("{") and "loader batch" in m]
    assert [(b["inserted"], b["request_ids"]) for b in batches] == [(1, ["req-dagster-0001"])]
