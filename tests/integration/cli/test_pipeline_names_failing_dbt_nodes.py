"""A dbt model that fails stops the job with one line naming it (read from dbt's
run_results.json, not from log text), and a dbt run leaves the process environment as it
found it (no connection or clock instant left behind)."""

import os

import pytest
from sqlalchemy import text


def test_failing_dbt_model_is_named_in_one_line_and_environment_is_untouched(db):
    from meterline.cli.pipeline import PipelineError, run_job

    before = dict(os.environ)
    with db.begin() as conn:  # the staging view over raw.infra_costs can no longer be built
        conn.execute(text("alter table raw.infra_costs rename to infra_costs_hidden"))
    try:
        with pytest.raises(PipelineError) as failure:
            run_job("dbt_hourly")
    finally:
        with db.begin() as conn:
            conn.execute(text("alter table raw.infra_costs_hidden rename to infra_costs"))
    message = str(failure.value)
    assert "\n" not in message
    assert "failed at step meterline_dbt_models: model.meterline.stg_raw__infra_costs: " in message
    assert "infra_costs" in message.split("stg_raw__infra_costs: ", 1)[1]
    assert dict(os.environ) == before
