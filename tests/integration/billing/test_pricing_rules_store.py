"""The pricing rules are part of a plan version: they survive the round trip through Postgres
(what the portal's cost estimate and the dbt models read), a change of any rule writes a new
version, and the version a tenant already pays keeps its rules."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from billing.catalog import Catalog, Plan, load_catalog
from billing.catalog_store import read_catalog, read_plan_versions, save_catalog
from meterline.cli.app import app
from tests.pricing_cases import HAND_WORKED, PERCENTAGE_HAND_WORKED, PRORATED_HAND_WORKED

CATALOG = Path(__file__).parents[3] / "billing" / "catalog.yaml"
PRO_API_CALLS = 'api_calls:    {limit: 500000, included: 500000, pricing: graduated, tiers: [{up_to: null, unit_price: "0.001"}]}'


def test_every_pricing_rule_reads_back_as_saved(db):
    cases = HAND_WORKED + PRORATED_HAND_WORKED + PERCENTAGE_HAND_WORKED
    plans = {
        f"r{i}": Plan(f"r{i}", name, 0, "USD", meters={"api_calls": case[1]})
        for i, (name, *_) in enumerate(cases)
        for case in [cases[i]]
    }
    plans["limited"] = Plan(
        "limited",
        "Limited",
        0,
        "USD",
        minimum_commitment=Decimal("10.5"),
        maximum_spend=Decimal(99),
    )
    catalog = Catalog("USD", load_catalog().meters, plans)
    save_catalog(db, catalog)
    latest, versions = read_catalog(db), read_plan_versions(db)
    for plan_id, plan in plans.items():
        assert latest.plans[plan_id].meters == plan.meters, plan.name
        assert versions[(plan_id, 1)].meters == plan.meters, plan.name
    limited = latest.plans["limited"]
    assert (limited.minimum_commitment, limited.maximum_spend) == (Decimal("10.5"), 99)
    assert save_catalog(db, catalog).new_versions == {}  # read back equal: nothing changed


def test_a_changed_pricing_rule_writes_a_new_version_and_the_paid_version_keeps_its_rules(
    db, tmp_path
):
    source = CATALOG.read_text()
    assert source.count(PRO_API_CALLS) == 1 and source.count('base_fee: "99"') == 1
    changed = source.replace(
        PRO_API_CALLS,
        'api_calls:    {limit: 500000, included: 500000, pricing: graduated, min_amount: "5",'
        ' rounding: down, tiers: [{up_to: null, unit_price: "1", block_size: 1000}]}',
    ).replace('base_fee: "99"', 'base_fee: "99"\n    minimum_commitment: "150"')
    path = tmp_path / "catalog.yaml"
    path.write_text(changed)

    result = CliRunner().invoke(app, ["catalog", "load", str(path)])
    assert result.exit_code == 0, (result.output, result.exception)
    out = " ".join(result.output.split())
    assert "pro: minimum_commitment - -> 150" in out
    assert "pro: meters.api_calls.min_amount - -> 5" in out
    assert "pro: meters.api_calls.rounding 'up' -> 'down'" in out
    assert "pro: meters.api_calls.tiers [<=inf@0.001] -> [<=inf@1 per 1000]" in out
    assert "plan pro: version 2 written" in out and "payg" not in out

    versions = read_plan_versions(db)
    old, new = versions[("pro", 1)], versions[("pro", 2)]
    assert (old.minimum_commitment, old.meters["api_calls"].min_amount) == (None, None)
    assert old.meters["api_calls"].rounding == "up"
    assert old.meters["api_calls"].tiers[0].block_size is None
    assert (new.minimum_commitment, new.meters["api_calls"].min_amount) == (150, 5)
    assert new.meters["api_calls"].rounding == "down"
    assert new.meters["api_calls"].tiers[0].block_size == 1000
    assert read_catalog(db).plans["pro"] == new

    again = CliRunner().invoke(app, ["catalog", "load", str(path)])
    assert "no plan changed: no new plan version written" in again.output
