"""The unpartitioned graph through Dagster: a failing blocking check stops everything
downstream of it; the counter-drift check sees Redis and Postgres disagree."""

from datetime import UTC, datetime, timedelta

import dagster as dg
from sqlalchemy import text


def _execute(job_name: str) -> dg.ExecuteInProcessResult:
    from meterline.cli.pipeline import load_definitions

    job = load_definitions().resolve_job_def(job_name)
    with dg.DagsterInstance.get() as instance:
        return job.execute_in_process(instance=instance, raise_on_error=False)


def _materialized(result) -> set[str]:
    return {
        e.event_specific_data.materialization.asset_key.to_user_string()
        for e in result.get_asset_materialization_events()
    }


def _check(result, name: str):
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    return evaluation


def test_blocking_check_stops_downstream_and_drift_is_detected(db, redis_client, test_services):
    from ingestion.recorder import UsageRecorder
    from meterline.core import tenants

    tenants.create_tenant(db, "acme", "pro")
    now = datetime.now(UTC)
    two_hours_ago = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    events = [
        {"id": f"e{i}", "tenant_id": "acme", "meter": "api_calls", "value": 2,
         "timestamp": (two_hours_ago + timedelta(minutes=i % 50)).isoformat()}
        for i in range(100)
    ]  # fmt: skip
    assert (
        UsageRecorder(redis_client, db, prefix=test_services.redis_prefix).record(events).accepted
        == 100
    )
    with db.begin() as conn:  # a row no valid path can produce: an unknown meter
        conn.execute(
            text(
                "insert into raw.usage_events (tenant_id, event_id, meter, value, occurred_at, received_at) "
                "values ('acme', 'bad', 'teleports', 1, now(), now())"
            )
        )

    blocked = _execute("meterline_pipeline")
    evaluation = _check(blocked, "raw_usage_events_expectations")
    assert not evaluation.passed
    assert evaluation.metadata["failed_expectations"].value >= 1
    assert "raw/usage_events" in _materialized(blocked)
    assert not any(key.startswith("analytics") for key in _materialized(blocked))

    with db.begin() as conn:
        conn.execute(text("delete from raw.usage_events where event_id = 'bad'"))
    clean = _execute("meterline_pipeline")
    assert clean.success
    assert "analytics/fct_usage_daily" in _materialized(clean)
    assert _check(clean, "raw_usage_events_expectations").passed
    assert _check(clean, "counter_drift").passed

    # Lose one loaded event of a closed hour in Postgres: the next snapshot shows the drift.
    with db.begin() as conn:
        conn.execute(text("delete from raw.usage_events where event_id = 'e7'"))
    drift = _execute("ingest_stream")
    evaluation = _check(drift, "counter_drift")
    assert not evaluation.passed
    assert evaluation.metadata["closed_hours_drifting"].value == 1
    assert "| acme | api_calls |" in evaluation.metadata["drift"].value
