"""The pricing rules survive the round trip through Postgres (what the portal's cost estimate
and the dbt models read)."""

from __future__ import annotations

from decimal import Decimal

from billing.catalog import Catalog, Plan, load_catalog
from billing.catalog_store import read_catalog, save_catalog
from billing.pricing_rules_store import save_pricing_rules, with_pricing_rules
from tests.pricing_cases import HAND_WORKED, PERCENTAGE_HAND_WORKED, PRORATED_HAND_WORKED


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
    save_pricing_rules(db, catalog)
    read = with_pricing_rules(db, read_catalog(db))
    for plan_id, plan in plans.items():
        assert read.plans[plan_id].meters == plan.meters, plan.name
    limited = read.plans["limited"]
    assert (limited.minimum_commitment, limited.maximum_spend) == (Decimal("10.5"), 99)
