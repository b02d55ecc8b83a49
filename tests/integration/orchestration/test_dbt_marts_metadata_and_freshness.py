"""The dbt assets in Dagster: every mart materialization says how many rows, which columns and
where; source freshness is an asset check on the raw assets that obeys Meterline's clock."""

from datetime import UTC, datetime, timedelta

import dagster as dg
from sqlalchemy import text

from tests.instants import frozen_at

# Far from the real date: the database's now() would call these rows "from the future", so the
# checks below pass or fail only if freshness is measured at Meterline's clock.
LOADED = datetime(2027, 5, 20, 7, 0, tzinfo=UTC)
FRESHNESS = "dbt_source_freshness"


def _definitions():
    from meterline.cli.pipeline import load_definitions

    return load_definitions()


def _execute(job: dg.JobDefinition) -> dg.ExecuteInProcessResult:
    with dg.DagsterInstance.get() as instance:
        return job.execute_in_process(instance=instance, raise_on_error=False)


def _freshness(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    return {
        e.asset_key.to_user_string(): e
        for e in result.get_asset_check_evaluations()
        if e.check_name == FRESHNESS
    }


def _load_events(db, loaded_at: datetime) -> None:
    with db.begin() as conn:
        conn.execute(
            text(
                "insert into raw.usage_events (tenant_id, event_id, meter, value, occurred_at, "
                "dimensions, received_at, loaded_at) "
                "select 'acme', 'e' || i, 'api_calls', 5, :at - i * interval '1 minute', '{}', "
                ":at, :at from generate_series(1, 30) as i"
            ),
            {"at": loaded_at},
        )


def test_marts_carry_metadata_and_freshness_checks_follow_the_clock(db, test_services):
    from meterline.core.tenants import create_tenant

    create_tenant(db, "acme", "pro", at=LOADED - timedelta(days=30))
    _load_events(db, LOADED)
    definitions = _definitions()

    # 1. three hours after the last load: the dbt job builds the marts, the events are stale
    #    past warn_after (2 h), the snapshots were never loaded (warn_after only)
    with frozen_at(LOADED + timedelta(hours=3)):
        result = _execute(definitions.resolve_job_def("dbt_hourly"))
    assert result.success
    checks = _freshness(result)
    events = checks["raw/usage_events"]
    assert not events.passed and events.severity == dg.AssetCheckSeverity.WARN
    assert events.metadata["age_hours"].value == 3.0
    assert events.metadata["measured_at"].value.startswith("2027-05-20T10:00:00")
    assert events.metadata["warn_after"].value == "2 hour"
    snapshots = checks["raw/counter_snapshots"]
    assert not snapshots.passed and snapshots.severity == dg.AssetCheckSeverity.WARN
    assert snapshots.metadata["max_loaded_at"].value.startswith("never")

    materialized = {
        e.event_specific_data.materialization.asset_key.to_user_string(): (
            e.event_specific_data.materialization.metadata
        )
        for e in result.get_asset_materialization_events()
    }
    marts = {key: meta for key, meta in materialized.items() if key.startswith("analytics/")}
    assert len(marts) >= 10
    for key, meta in marts.items():
        name = key.split("/")[1]
        assert meta["dagster/row_count"].value >= 0, key
        assert meta["dagster/uri"].value.endswith(f"/analytics.{name}"), key
        assert "@" not in meta["dagster/uri"].value and "postgres@" not in str(meta), key
        assert meta["dagster/column_schema"].value.columns, key
    daily = marts["analytics/fct_usage_daily"]
    with db.connect() as conn:
        rows = conn.execute(text("select count(*) from analytics.fct_usage_daily")).scalar_one()
    assert rows > 0 and daily["dagster/row_count"].value == rows
    columns = {c.name: c for c in daily["dagster/column_schema"].value.columns}
    assert columns["quantity"].type == "numeric"
    assert columns["event_count"].type == "bigint"
    assert columns["day"].type == "date" and columns["day"].constraints.nullable is False
    assert columns["max_loaded_at"].description.startswith("Newest loaded_at")
    database = db.url.database
    assert daily["dagster/table_name"].value == f"{database}.analytics.fct_usage_daily"
    assert daily["dagster/uri"].value.endswith(f"/{database}/analytics.fct_usage_daily")

    # 2. the checks alone (what the UI runs from the asset's Checks tab), a day later: ERROR
    only_checks = dg.define_asset_job(
        "freshness_only", selection=dg.AssetSelection.checks_for_assets(["raw", "usage_events"])
    )
    job = dg.Definitions.merge(definitions, dg.Definitions(jobs=[only_checks])).resolve_job_def(
        "freshness_only"
    )
    with frozen_at(LOADED + timedelta(hours=25)):
        late = _freshness(_execute(job))
    assert set(late) == {"raw/usage_events"}
    assert not late["raw/usage_events"].passed
    assert late["raw/usage_events"].severity == dg.AssetCheckSeverity.ERROR

    # 3. half an hour after the load it is fresh; rows loaded after that instant do not count
    with db.begin() as conn:
        conn.execute(
            text("update raw.usage_events set loaded_at = :at where event_id = 'e1'"),
            {"at": LOADED + timedelta(hours=5)},
        )
    with frozen_at(LOADED + timedelta(minutes=30)):
        fresh = _freshness(_execute(job))["raw/usage_events"]
    assert fresh.passed
    assert fresh.metadata["max_loaded_at"].value.startswith("2027-05-20T07:00:00")

    # 4. a backfill of the rollups (the UI's reprocess_usage_rollups) reports the same metadata
    backfill = definitions.resolve_job_def("reprocess_usage_rollups")
    with frozen_at(LOADED + timedelta(hours=1)), dg.DagsterInstance.get() as instance:
        rerun = backfill.execute_in_process(
            instance=instance, partition_key=f"{LOADED:%Y-%m-%d}", raise_on_error=False
        )
    assert rerun.success
    rebuilt = {
        e.event_specific_data.materialization.asset_key.to_user_string(): (
            e.event_specific_data.materialization.metadata
        )
        for e in rerun.get_asset_materialization_events()
    }
    assert set(rebuilt) == {
        "analytics/fct_usage_hourly",
        "analytics/fct_usage_daily",
        "analytics/fct_usage_monthly",
    }
    assert rebuilt["analytics/fct_usage_daily"]["dagster/row_count"].value == rows
    assert rebuilt["analytics/fct_usage_hourly"]["dagster/uri"].value.endswith(
        f"/{database}/analytics.fct_usage_hourly"
    )
