"""What BI tools rely on, against real Postgres: descriptions as comments, the read-only role,
and a build that fails when a mart's column type drifts from its contract."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from meterline.core.dbt_runner import (
    DBT_PROJECT_DIR,
    dbt_build,
    dbt_executable,
    dbt_process_environment,
    failed_nodes,
)
from meterline.core.settings import Settings
from meterline.core.tenants import create_tenant

MODELS_ONLY = ("--resource-type", "seed", "--resource-type", "model")


def documented_marts() -> dict[str, dict]:
    """Each mart's yml entry (description and columns), from the project's files."""
    marts = {}
    for path in (DBT_PROJECT_DIR / "models" / "marts").rglob("_*.yml"):
        for model in yaml.safe_load(path.read_text())["models"]:
            marts[model["name"]] = model
    return marts


def test_descriptions_reach_postgres_and_the_bi_role_reads_only_the_marts(db, tmp_path):
    url = db.url.render_as_string(hide_password=False)
    now = datetime.now(UTC)
    create_tenant(db, "acme", "starter", at=now - timedelta(days=40))
    dbt_build(url, "--full-refresh", *MODELS_ONLY, target_path=tmp_path)

    marts = documented_marts()
    assert len(marts) >= 10
    with db.connect() as conn:
        for name, model in marts.items():
            relation = f"analytics.{name}"
            comment = conn.execute(
                text("select obj_description(cast(:r as regclass), 'pg_class')"), {"r": relation}
            ).scalar_one()
            assert comment == model["description"], f"{relation} comment"
            columns = dict(
                conn.execute(
                    text(
                        "select attname, col_description(attrelid, attnum) from pg_attribute "
                        "where attrelid = cast(:r as regclass) and attnum > 0 "
                        "and not attisdropped"
                    ),
                    {"r": relation},
                ).all()
            )
            for column in model["columns"]:
                assert columns[column["name"]] == column["description"], (
                    f"{relation}.{column['name']} comment"
                )

    role = Settings.from_env().bi_role
    with db.connect() as conn:
        can_login = conn.execute(
            text("select rolcanlogin from pg_roles where rolname = :r"), {"r": role}
        ).scalar_one()
        assert can_login is False, "the BI role is created NOLOGIN"
        conn.execute(text(f"set role {role}"))
        tenants = conn.execute(text("select tenant_id from analytics.fct_tenant_overview"))
        assert [t for (t,) in tenants] == ["acme"]
        for name in marts:
            conn.execute(text(f"select * from analytics.{name} limit 1"))  # every mart
        conn.execute(text("reset role"))
        conn.commit()
        for forbidden in (
            "meterline.api_keys",
            "meterline.tenants",
            "raw.usage_events",
            "analytics_staging.stg_meterline__tenants",
            "analytics_intermediate.int_usage_months_rated",
        ):
            conn.execute(text(f"set role {role}"))
            with pytest.raises(ProgrammingError, match="permission denied"):
                conn.execute(text(f"select * from {forbidden} limit 1"))
            conn.rollback()


def copy_of_the_project(destination: Path) -> Path:
    project = destination / "dbt_project"
    shutil.copytree(
        DBT_PROJECT_DIR,
        project,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", ".user.yml"),
    )
    return project


def test_a_build_fails_when_a_mart_column_type_drifts_from_its_contract(db, tmp_path):
    url = db.url.render_as_string(hide_password=False)
    project = copy_of_the_project(tmp_path)
    model = project / "models" / "marts" / "billing" / "fct_invoices.sql"
    sql = model.read_text()
    typed = "coalesce(totals.line_count, 0)::integer as line_count"
    assert typed in sql
    model.write_text(sql.replace(typed, "coalesce(totals.line_count, 0) as line_count"))

    run = subprocess.run(
        [dbt_executable(), "build", "--select", "+fct_invoices", *MODELS_ONLY,
         "--project-dir", str(project),
         "--profiles-dir", str(project), "--target-path", str(tmp_path / "target")],
        env={**os.environ, **dbt_process_environment(url)},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode != 0, run.stdout[-2000:]
    # what `meterline pipeline run` and the Dagster step report (dbt's contract table, one line)
    [failure] = failed_nodes(tmp_path / "target")
    assert failure.startswith("model.meterline.fct_invoices: ")
    assert "enforced contract that failed" in failure
    # | column_name | definition_type | contract_type | mismatch_reason |: count(*) is a bigint
    assert "| line_count | LONGINTEGER | INTEGER | data type mismatch |" in failure, failure
    with db.connect() as conn:
        built = conn.execute(text("select to_regclass('analytics.fct_invoices')")).scalar()
        parent = conn.execute(text("select to_regclass('analytics.fct_invoice_lines')")).scalar()
    assert built is None, "the drifted mart must not be built"
    assert parent is not None, "its parents were built: the failure is the contract's"
