"""What the test runs in a subprocess with docker-compose's exact environment: load the
Meterline code location as the Dagster webserver and daemon load it, materialize ingestion,
every dbt model, one billing month (invoices in Stripe, then their reconciliation) in one
run; evaluate the quota-threshold sensor and run what it requests; evaluate the run-failure
sensor on a run that failed.

Prints one JSON line (the last line of stdout) for the test to check. ``python -m
tests.integration.deploy.compose_location MONTH`` (``YYYY-MM-DD``, the month's first day).
"""

from __future__ import annotations

import json
import sys
import warnings


def main(month: str) -> dict:
    warnings.simplefilter("ignore")
    import dagster as dg

    from orchestration.definitions import defs

    definitions = defs()  # what `dagster-webserver -w workspace.yaml` loads
    # every asset in one run: a dbt subset fails on a fresh database (dbt's eager indirect
    # selection runs relationship tests whose other parent was not built)
    selection = dg.AssetSelection.all().materializable()
    job = dg.define_asset_job("compose_environment_check", selection=selection)
    definitions = dg.Definitions.merge(definitions, dg.Definitions(jobs=[job]))
    report: dict = {}
    with dg.DagsterInstance.get() as instance:
        result = definitions.resolve_job_def("compose_environment_check").execute_in_process(
            instance=instance, partition_key=month, raise_on_error=False
        )
        report["success"] = result.success
        report["failures"] = [
            f"{e.step_key}: {e.event_specific_data.error.message.strip()[:2000]}"
            for e in result.all_events
            if e.event_type_value == "STEP_FAILURE"
        ]
        report["materialized"] = sorted(
            e.event_specific_data.materialization.asset_key.to_user_string()
            for e in result.get_asset_materialization_events()
        )
        report["checks_failed"] = [
            e.check_name for e in result.get_asset_check_evaluations() if not e.passed
        ]

        sensor = definitions.get_sensor_def("quota_threshold_sensor")
        context = dg.build_sensor_context(
            instance=instance, resources=definitions.resources, sensor_name=sensor.name
        )
        requests = list(sensor.evaluate_tick(context).run_requests or [])
        report["run_keys"] = sorted(r.run_key for r in requests)
        notify = definitions.resolve_job_def("quota_notification_job")
        report["notified"] = [
            notify.execute_in_process(
                run_config=r.run_config, instance=instance, tags=r.tags, raise_on_error=False
            ).success
            for r in requests
        ]
        # a failed run reaches the admin through the run-failure sensor and its notifier
        failed = _failing_job().execute_in_process(instance=instance, raise_on_error=False)
        failure = dg.build_run_status_sensor_context(
            sensor_name="admin_run_failure_sensor",
            dagster_event=failed.get_run_failure_event(),
            dagster_instance=instance,
            dagster_run=failed.dagster_run,
            resources={"notifier": definitions.resources["notifier"]},
        ).for_run_failure()
        definitions.get_sensor_def("admin_run_failure_sensor")(failure)
        report["failed_run"] = failed.run_id
        report["sensors"] = sorted(s.name for s in definitions.get_repository_def().sensor_defs)
    return report


def _failing_job():
    import dagster as dg

    @dg.op
    def compose_check_fails():
        raise RuntimeError("a failure for the run-failure sensor")

    @dg.job(name="compose_failure_check")
    def job():
        compose_check_fails()

    return job


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
