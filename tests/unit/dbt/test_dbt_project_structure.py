"""Static checks of the dbt project from its parsed manifest (no database needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from meterline.core.dbt_runner import DBT_PROJECT_DIR, DbtError, dbt_build, dbt_command
from meterline.core.settings import Settings

UNREACHABLE = "postgresql://nobody@127.0.0.1:1/nothing"


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict:
    target = tmp_path_factory.mktemp("dbt_parse")
    dbt_command(UNREACHABLE, "parse", "--no-partial-parse", target_path=target)
    return json.loads((Path(target) / "manifest.json").read_text())


def models(manifest: dict) -> dict[str, dict]:
    return {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}


def test_project_is_standard_for_dagster_dbt():
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    assert project["name"] == "meterline" and project["profile"] == "meterline"
    assert project["vars"]["min_date"] is None and project["vars"]["max_date"] is None
    assert project["vars"]["lookback_days"] == 3
    profiles = (DBT_PROJECT_DIR / "profiles.yml").read_text()
    for name in ("METERLINE_DB_HOST", "METERLINE_DB_PORT", "METERLINE_DB_NAME"):
        assert f"env_var('{name}'" in profiles


def test_every_model_and_column_is_described_and_keyed(manifest):
    nodes = models(manifest)
    tests = [n for n in manifest["nodes"].values() if n["resource_type"] == "test"]
    keyed = {
        node_id
        for t in tests
        if (t.get("test_metadata") or {}).get("name") in ("unique", "unique_combination_of_columns")
        for node_id in t["depends_on"]["nodes"]
    }
    for name, node in nodes.items():
        assert node["description"].strip(), f"model {name} has no description"
        assert node["columns"], f"model {name} documents no columns"
        for column, spec in node["columns"].items():
            assert spec["description"].strip(), f"{name}.{column} has no description"
        assert node["unique_id"] in keyed, f"model {name} has no primary-key test"


def test_marts_land_in_the_contracted_schemas(manifest):
    nodes = models(manifest)
    for name in (
        "fct_usage_hourly",
        "fct_usage_daily",
        "fct_usage_monthly",
        "fct_quota_status",
        "fct_tenant_overview",
        "fct_invoice_lines",
        "fct_invoices",
        "fct_cost_allocation",
        "fct_mrr",
        "fct_mrr_summary",
    ):
        assert nodes[name]["schema"] == "analytics", name
    assert nodes["stg_raw__usage_events"]["schema"] == "analytics_staging"
    assert nodes["int_usage_months_rated"]["schema"] == "analytics_intermediate"
    for name in ("fct_usage_hourly", "fct_usage_daily", "fct_usage_monthly"):
        config = nodes[name]["config"]
        assert config["materialized"] == "incremental"
        assert config["incremental_strategy"] == "delete+insert"
        assert config["unique_key"]


def test_sources_carry_freshness_and_dagster_asset_keys(manifest):
    sources = {(s["source_name"], s["name"]): s for s in manifest["sources"].values()}
    events = sources[("raw", "usage_events")]
    assert events["loaded_at_field"] == "loaded_at"
    assert events["freshness"]["error_after"]["count"]
    assert events["meta"]["dagster"]["asset_key"] == ["raw", "usage_events"]
    assert sources[("raw", "counter_snapshots")]["meta"]["dagster"]["asset_key"] == [
        "raw",
        "counter_snapshots",
    ]
    for table in ("meters", "plans", "plan_meters", "price_tiers", "tenants", "subscriptions"):
        assert sources[("meterline", table)]["meta"]["dagster"]["asset_key"] == ["meterline", table]


def test_exposures_and_unit_tests_exist(manifest):
    exposures = {e["name"] for e in manifest["exposures"].values()}
    assert {"usage_dashboard", "stripe_invoices", "invoice_reconciliation"} <= exposures
    unit_tests = {u["name"]: u for u in manifest["unit_tests"].values()}
    assert {
        "test_rating_tier_boundaries_volume_vs_graduated",
        "test_mrr_categories_including_reactivation",
        "test_cost_allocation_largest_remainder",
    } <= set(unit_tests)
    singular = {
        n["name"]
        for n in manifest["nodes"].values()
        if n["resource_type"] == "test" and not n.get("test_metadata")
    }
    assert {
        "assert_usage_rollups_conserve_raw_totals",
        "assert_cost_allocation_sums_to_pool",
        "assert_mrr_bridge_closes",
        "assert_invoice_totals_match_independent_rating",
    } <= singular


def test_a_failed_build_raises_a_clear_error(tmp_path):
    with pytest.raises(DbtError, match=r"`dbt build --select stg_raw__usage_events` failed"):
        dbt_build(UNREACHABLE, "--select", "stg_raw__usage_events", target_path=tmp_path)


def test_marts_are_contracted_documented_in_postgres_and_granted_to_the_bi_role(manifest):
    marts = {name: n for name, n in models(manifest).items() if n["fqn"][1] == "marts"}
    assert len(marts) >= 10
    for name, node in marts.items():
        config = node["config"]
        assert config["contract"]["enforced"] is True, f"{name} has no enforced contract"
        untyped = [c for c, spec in node["columns"].items() if not spec.get("data_type")]
        assert not untyped, f"{name}: columns without data_type: {untyped}"
        assert config["persist_docs"] == {"relation": True, "columns": True}, name
        assert config["grants"] == {"select": [Settings.from_env().bi_role]}, name
        primary = [c for c in node["constraints"] if c["type"] == "primary_key"]
        assert len(primary) == 1 and primary[0]["columns"], f"{name} has no primary key"
    hooks = [n for n in manifest["nodes"].values() if n["resource_type"] == "operation"]
    assert any("ensure_bi_role" in h["raw_code"] for h in hooks)
    staging = models(manifest)["stg_raw__usage_events"]["config"]
    assert not staging["grants"], "only the marts are granted to the BI role"
