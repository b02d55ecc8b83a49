"""The one way dbt runs: its environment, and failures named from dbt's structured results
(no database needed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from meterline.core import clock
from meterline.core.dbt_runner import (
    dbt_process_environment,
    failed_nodes,
    failure_message,
    logged_errors,
)


def test_environment_carries_connection_clock_and_session_options(monkeypatch):
    monkeypatch.setenv("PGOPTIONS", "-c statement_timeout=0")
    monkeypatch.delenv("DBT_SEND_ANONYMOUS_USAGE_STATS", raising=False)
    with clock.frozen(datetime(2028, 2, 29, 23, 30, tzinfo=UTC)):
        env = dbt_process_environment("postgresql://u:secret@db.example:6543/metering")
    assert env["METERLINE_DB_HOST"] == "db.example"
    assert env["METERLINE_DB_PORT"] == "6543"
    assert env["METERLINE_DB_PASSWORD"] == "secret"
    assert env["METERLINE_DB_NAME"] == "metering"
    assert env["METERLINE_AS_OF"] == "2028-02-29T23:30:00Z"
    assert env["PGTZ"] == "UTC"
    assert env["PGOPTIONS"] == "-c statement_timeout=0 -c jit=off -c work_mem=256MB"
    assert env["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "false"


def test_a_command_without_a_database_gets_no_connection():
    env = dbt_process_environment(None)
    assert not any(name.startswith("METERLINE_DB_") for name in env)
    assert "METERLINE_AS_OF" not in env


def test_failures_come_from_run_results_and_name_each_failing_node(tmp_path):
    results = {
        "results": [
            {"unique_id": "model.meterline.fct_a", "status": "success", "message": "SELECT 3"},
            {"unique_id": "model.meterline.fct_b", "status": "error",
             "message": "Database Error in model fct_b\n  relation \"raw.x\" does not exist"},
            {"unique_id": "test.meterline.not_null_fct_c_id", "status": "fail",
             "message": "Got 2 results, configured to fail if != 0"},
            {"unique_id": "model.meterline.fct_d", "status": "skipped", "message": None},
        ]
    }  # fmt: skip
    (tmp_path / "run_results.json").write_text(json.dumps(results))
    failures = failed_nodes(tmp_path)
    assert failures == [
        'model.meterline.fct_b: Database Error in model fct_b relation "raw.x" does not exist',
        "test.meterline.not_null_fct_c_id: Got 2 results, configured to fail if != 0",
    ]
    message = failure_message("build", 1, failures, log=tmp_path / "dbt.log")
    assert "\n" not in message
    assert message.startswith("`dbt build` failed (exit 1): model.meterline.fct_b: ")
    assert message.endswith(f"(full log: {tmp_path / 'dbt.log'})")


CONTRACT_FAILURE = """Compilation Error in model fct_invoices (models/marts/billing/fct_invoices.sql)
  This model has an enforced contract that failed.
  Please ensure the name, data_type, and number of columns in your contract match the columns in your model's definition.

  | column_name | definition_type | contract_type | mismatch_reason    |
  | ----------- | --------------- | ------------- | ------------------ |
  | line_count  | LONGINTEGER     | INTEGER       | data type mismatch |


  > in macro assert_columns_equivalent (macros/relations/column/columns_spec_ddl.sql)
  > called by macro default__get_assert_columns_equivalent (macros/relations/column/columns_spec_ddl.sql)
  > called by model fct_invoices (models/marts/billing/fct_invoices.sql)"""


def test_a_contract_failure_names_the_drifted_column_within_the_limit(tmp_path):
    results = {"results": [{"unique_id": "model.meterline.fct_invoices", "status": "error",
                            "message": CONTRACT_FAILURE}]}  # fmt: skip
    (tmp_path / "run_results.json").write_text(json.dumps(results))
    [failure] = failed_nodes(tmp_path)
    assert "enforced contract that failed" in failure
    assert "| line_count | LONGINTEGER | INTEGER | data type mismatch |" in failure
    assert "called by" not in failure and "----" not in failure


def test_without_run_results_the_json_log_says_what_went_wrong(tmp_path):
    assert failed_nodes(tmp_path) == []
    lines = [
        {"info": {"level": "info", "msg": "Running with dbt=1.11"}},
        {"info": {"level": "error", "msg": "\x1b[31mCould not connect\x1b[0m to  the database"}},
    ]
    (tmp_path / "dbt.log").write_text(
        "\n".join(json.dumps(line) for line in lines) + "\nnot json\n"
    )
    assert logged_errors(tmp_path / "dbt.log") == ["Could not connect to the database"]
